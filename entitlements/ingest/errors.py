"""The error the ingest raises for a file it refuses, and turning DuckDB's reader errors into one.

DuckDB's messages carry the position of a bad value, but not always exactly:

- CSV: "CSV Error on Line: N" counts records plus the header, so it is the physical line unless an
  earlier field holds a quoted line break; conversion errors also name the column.
- JSONL: "in line N" counts non-blank lines, is one too high for malformed JSON and, for date and
  timestamp casts, points at the start of the 2048-row batch; the column is never named. So the
  lines around N are re-checked with the same JSON transform to find the exact line and column.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import duckdb

from entitlements.ingest._sql import quote_literal

if TYPE_CHECKING:
    from pathlib import Path

    from entitlements.ingest.layouts import Layout
    from entitlements.ingest.plans import ExportFile


class IngestError(Exception):
    """A file the ingest refuses; str() is the message for the user, the attributes say where."""

    def __init__(
        self, message: str, *, source_file: str, column: str | None = None, line: int | None = None
    ) -> None:
        super().__init__(message)
        self.source_file = source_file
        self.column = column
        self.line = line


_ERROR_PREFIX = re.compile(r"^[A-Za-z ]*Error: ")
_LINE = re.compile(r"CSV Error on Line: (\d+)|in line (\d+)")
_CSV_COLUMN = re.compile(r'Error when converting column "([^"]+)"\.\s*')
_JSON_DETAIL = re.compile(r'in file ".*?", (?:at byte \d+ )?in line \d+: (.*)')
# DuckDB's JSON reader processes 2048 rows at a time and may report the first row of the batch.
_JSON_WINDOW = 4096
_MAX_QUOTED = 200


def refused_read(exc: duckdb.Error, file: ExportFile) -> IngestError:
    """An IngestError naming the file, line and column of a DuckDB read error, and what to do."""
    text = str(exc)
    line, column, approximate = _position(text), _CSV_COLUMN.search(text), False
    column_name = column.group(1) if column else None
    if file.layout.file_format == "jsonl" and line is not None:
        located = locate_json_error(file.path, file.layout, line)
        if located:
            line, column_name = located
        else:
            approximate = True
    where = ""
    if line is not None:
        where += f", {'around line' if approximate else 'line'} {line}"
    if column_name is not None:
        types = {c.name: c.type for c in file.layout.columns}
        where += f", column '{column_name}'" + (f" ({types[column_name]})" if column_name in types else "")
    message = (
        f"{file.relative}{where}: {_detail(text)}. Nothing from this file was landed: fix the file"
        " (or the column's type in entitlements/ingest/layouts.py, if the layout is wrong) and run the"
        " ingest again."
    )
    return IngestError(message, source_file=file.relative, column=column_name, line=line)


def _position(text: str) -> int | None:
    match = _LINE.search(text)
    return int(match.group(1) or match.group(2)) if match else None


def _detail(text: str) -> str:
    """The part of DuckDB's message that says what is wrong, without its hints and settings dump."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = _ERROR_PREFIX.sub("", lines[0]) if lines else text
    if json_detail := _JSON_DETAIL.search(first):
        return json_detail.group(1).rstrip(". ")
    if first.startswith("CSV Error on Line"):
        original = next((x for x in lines if x.startswith("Original Line:")), None)
        reason = next((x for x in lines[1:] if not x.startswith("Original Line:")), "unreadable line")
        reason = _CSV_COLUMN.sub("", reason)  # the column is named in the message's position part
        if original:
            reason += f" ({_shorten(original)})"
        return reason.rstrip(". ")
    return first.rstrip(". ")


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_QUOTED else text[:_MAX_QUOTED] + "..."


def locate_json_error(path: Path, layout: Layout, reported: int) -> tuple[int, str | None] | None:
    """The physical line and column of the first bad record near DuckDB's reported one, if found.

    Re-checks a window of lines with json_transform_strict, the transform read_json applies, so a
    value is judged exactly as in the load. Column is None for a line that is not a JSON object.
    """
    numbers, texts = _json_window(path, first_record=max(reported - 1, 1))
    if not texts:
        return None
    failures = ", ".join(
        f"CASE WHEN doc->>{quote_literal(c.name)} IS NOT NULL AND try(json_transform_strict(doc,"
        f" {quote_literal(json.dumps({c.name: c.type}))})) IS NULL THEN {quote_literal(c.name)} END"
        for c in layout.columns
    )
    query = f"""
        WITH lines AS (SELECT unnest($numbers) AS n, unnest($texts) AS text),
        parsed AS (SELECT n, try(text::JSON) AS doc FROM lines),
        checked AS (SELECT n, doc, coalesce({failures}) AS bad_column FROM parsed)
        SELECT n, CASE WHEN coalesce(json_type(doc), '') = 'OBJECT' THEN bad_column END
        FROM checked
        WHERE coalesce(json_type(doc), '') <> 'OBJECT' OR bad_column IS NOT NULL
        ORDER BY n LIMIT 1
    """
    with duckdb.connect() as con:
        row = con.execute(query, {"numbers": numbers, "texts": texts}).fetchone()
    return (row[0], row[1]) if row else None


def _json_window(path: Path, first_record: int) -> tuple[list[int], list[str]]:
    """Physical line numbers and texts of records first_record.. (blank lines are not records)."""
    numbers: list[int] = []
    texts: list[str] = []
    record = 0
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            record += 1
            if record >= first_record:
                numbers.append(number)
                texts.append(raw.decode("utf-8", errors="replace"))
                if len(texts) >= _JSON_WINDOW:
                    break
    return numbers, texts
