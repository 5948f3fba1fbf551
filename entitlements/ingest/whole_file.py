"""Reading a CSV file whole to check it before it lands: what entitlements/ingest/catalog.py and
entitlements/ingest/price_book.py share.

Those files are checked whole because their rows only mean something together (a catalog tree,
the tiers of a price): a row the landing rejected would silently change the meaning of the others.
So the check reports every problem, not only the first, each with the physical CSV line (header =
line 1), so that the file can be fixed in one pass; and it reports what the landing would reject
too. Values are judged as the ingest reads them (entitlements/ingest/checks.py): an empty field,
quoted or not, is NULL; ids, codes and typed values are read without surrounding spaces, other text exactly; a
typed value is parsed by the ingest's own parse for the layout's type (shapes.default_parse).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

import duckdb

from entitlements.ingest.checks import EARLIEST_DATE, LATEST_DATE, key_columns
from entitlements.ingest.layouts import Layout
from entitlements.ingest.readers import header_names
from entitlements.ingest.shapes import default_parse

__all__ = ["FileProblem", "Problems", "Row", "WholeFile", "check_values", "read_rows", "unknown_value"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # as the landing's id check (entitlements/ingest/checks.py)


@dataclass(frozen=True)
class FileProblem:
    """One problem in a file; str() names file, line, subject and column, then the problem."""

    file: str
    line: int  # physical line in the CSV, header = line 1
    subject: str | None  # the code naming the row (SUBJECT says what it is); None: the file
    column: str | None
    message: str

    SUBJECT: ClassVar[str] = "row"  # how str() names the subject, e.g. "node API_PRO"

    def __str__(self) -> str:
        where = [self.file, f"line {self.line}"]
        if self.subject is not None:
            where.append(f"{self.SUBJECT} {self.subject}")
        if self.column is not None:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.message}"


@dataclass(frozen=True)
class WholeFile:
    """What the shared reading and row rules need to know about one kind of file."""

    layout: Layout
    subject: str  # the column whose value names a row in problems, e.g. node_code
    row_noun: str  # what one data line is, in messages: "node", "price or tier"
    # A negative value's hint: what leaving the column empty means instead.
    empty_means: Mapping[str, str] = field(default_factory=dict)

    @property
    def trimmed(self) -> frozenset[str]:
        """Columns the ingest reads without surrounding spaces: ids, codes and typed values."""
        typed = (c.name for c in self.layout.columns if c.type.upper() != "VARCHAR")
        return frozenset((*key_columns(self.layout), *typed))


@dataclass
class Row:
    line: int
    values: dict[str, str | None]  # every layout column as text; None for empty or absent
    typed: dict[str, object] = field(default_factory=dict)  # non-text columns as the ingest parses them


P = TypeVar("P", bound=FileProblem)
R = TypeVar("R", bound=Row)


class Problems(list[P], Generic[P]):
    def __init__(self, file: str, kind: type[P]) -> None:
        super().__init__()
        self.file = file
        self.kind = kind

    def add(self, line: int, subject: str | None, column: str | None, message: str) -> None:
        self.append(self.kind(self.file, line, subject, column, message))

    def in_line_order(self, layout: Layout) -> list[P]:
        """Line order, then the layout's column order; problems of one cell keep the order found."""
        order = {name: i for i, name in enumerate(layout.column_names)}
        return sorted(self, key=lambda p: (p.line, order.get(p.column or "", -1)))


# ------------------------------------------------------------------------------------------- reading


def read_rows(path: Path, spec: WholeFile, problems: Problems[P], row_type: type[R]) -> list[R] | None:
    """The data rows with their physical lines; None if the file is unreadable or its header lacks a
    required column (the row rules cannot be applied then; the problem is reported)."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problems.add(
            line, None, None, f"not UTF-8 text (byte {data[exc.start]:#04x}): save the file as UTF-8"
        )
        return None
    if not text.strip():
        problems.add(
            1, None, None, f"the file is empty (expected a header line, then one {spec.row_noun} per line)"
        )
        return None
    reader = csv.reader(io.StringIO(text, newline=""))
    trimmed = spec.trimmed
    rows: list[R] = []
    header: list[str] | None = None
    end_of_previous = 0
    try:
        for fields in reader:
            start, end_of_previous = end_of_previous + 1, reader.line_num
            if not fields:  # a blank line: DuckDB's reader skips it too
                continue
            if header is None:
                header = header_names(fields)  # trimmed, a repeated name renamed: as the ingest names them
                if not _check_header(header, start, spec, problems):
                    return None
                continue
            rows.append(_row(header, fields, start, spec, trimmed, problems, row_type))
    except csv.Error as exc:
        problems.add(reader.line_num, None, None, f"unreadable CSV: {exc}")
        return None
    return rows


def _check_header(header: list[str], line: int, spec: WholeFile, problems: Problems[P]) -> bool:
    required = spec.layout.required_columns
    missing = [c for c in required if c not in header]
    for column in missing:
        problems.add(
            line, None, column, f"missing required column '{column}' (required: {', '.join(required)})"
        )
    return not missing


def _row(
    header: list[str],
    fields: list[str],
    line: int,
    spec: WholeFile,
    trimmed: frozenset[str],
    problems: Problems[P],
    row_type: type[R],
) -> R:
    by_name = dict(zip(header, fields, strict=False))
    values: dict[str, str | None] = {}
    for column in spec.layout.column_names:
        text = by_name.get(column)
        if text is not None and column in trimmed:
            text = text.strip(" ")  # trim() in SQL: spaces only, a tab or line break stays
        values[column] = text or None
    if len(fields) != len(header):
        problems.add(
            line,
            values[spec.subject],
            None,
            f"{len(fields)} fields where the header has {len(header)}"
            " (a missing or extra comma, or an unquoted comma in a value)",
        )
    return row_type(line, values)


# --------------------------------------------------------------------------------------- row rules


def check_values(rows: list[R], spec: WholeFile, problems: Problems[P]) -> None:
    """What the landing would reject a row for: required values present, ids without control
    characters, enumerations known, typed values readable, exact and plausible, numbers not negative.
    Fills each row's typed values."""
    layout = spec.layout
    for column in layout.required_columns:
        for row in rows:
            if row.values[column] is None:
                problems.add(
                    row.line,
                    row.values[spec.subject],
                    column,
                    f"{column} is empty: every {spec.row_noun} needs one",
                )
    for column in key_columns(layout):
        for row in rows:
            value = row.values[column]
            if value is not None and _CONTROL.search(value):
                problems.add(
                    row.line,
                    None if column == spec.subject else row.values[spec.subject],
                    column,
                    f"{value!r} holds a control character (NUL, tab or line break): ids and codes must be"
                    " plain text",
                )
    for column, allowed in layout.enums.items():
        for row in rows:
            value = row.values[column]
            if value is not None and value not in allowed:
                message = unknown_value(column, value, allowed)
                problems.add(row.line, row.values[spec.subject], column, message)
    typed = [c for c in layout.columns if c.type.upper() != "VARCHAR"]
    with duckdb.connect() as con:
        for column in typed:
            texts = [row.values[column.name] for row in rows]
            parse = default_parse(column.type).replace("{}", "x")
            (parsed, exact) = con.execute(
                f"SELECT [{parse} FOR x IN $texts::VARCHAR[]], [TRY_CAST(x AS DECIMAL(38, 18)) FOR x IN"
                " $texts::VARCHAR[]]",
                {"texts": texts},
            ).fetchone()
            for row, text, value, exact_value in zip(rows, texts, parsed, exact, strict=True):
                row.typed[column.name] = value
                if text is not None:
                    message = _typed_problem(spec, column.name, column.type, text, value, exact_value)
                    if message:
                        problems.add(row.line, row.values[spec.subject], column.name, message)


def _typed_problem(
    spec: WholeFile, column: str, type_: str, text: str, value: object, exact: Decimal | None
) -> str | None:
    if value is None:
        return _not_a(type_, text)
    if isinstance(value, Decimal) and exact is not None and value != exact:
        scale = type_.split(",")[-1].rstrip(") ")
        return (
            f"{text!r} has more decimals than {column} holds ({scale}): send the exact value"
            " (nothing is rounded)"
        )
    if isinstance(value, date | datetime):
        day = value.date() if isinstance(value, datetime) else value
        if not date.fromisoformat(EARLIEST_DATE) <= day <= date.fromisoformat(LATEST_DATE):
            return f"date {text} is outside {EARLIEST_DATE} to {LATEST_DATE}: not a plausible date"
    if column in spec.layout.non_negative and isinstance(value, int | Decimal) and value < 0:
        meaning = spec.empty_means.get(column)
        return f"negative {column} {text}: it must be 0 or more" + (
            f" (leave it empty for {meaning})" if meaning else ""
        )
    return None


def _not_a(type_: str, text: str) -> str:
    if type_.upper().startswith("DECIMAL"):
        return f"{text!r} is not a number ({type_})"
    if type_.upper() == "BOOLEAN":
        return f"{text!r} is not a BOOLEAN (use true or false)"
    if type_.upper() == "DATE":
        return f"{text!r} is not a valid DATE (write YYYY-MM-DD)"
    return f"{text!r} is not a valid {type_}"


def unknown_value(column: str, value: str, allowed: tuple[str, ...]) -> str:
    listed = (
        f"allowed: {', '.join(allowed)}" if len(allowed) <= 12 else f"not one of the {len(allowed)} allowed"
    )
    message = f"unknown {column} {value!r} ({listed})"
    if value.strip() in allowed:
        message += ": remove the spaces around it"
    elif value.strip().lower() in allowed:
        message += ": values are lower case"
    elif value.strip().upper() in allowed:
        message += ": values are upper case"
    return message
