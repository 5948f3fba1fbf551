"""Reading export files: their header, their dialect, and their records as text.

Two ways to read a file, giving the same columns (the shape's fields as text or JSON):

- fast: DuckDB's own reader (read_csv, read_json), streaming and parallel; no line numbers;
- exact: Python reads the file record by record, keeping each record's physical line number, its
  raw text and any structural problem (wrong field count, invalid JSON, undecodable bytes), and
  hands them to DuckDB in chunks of records (an Arrow table, one chunk at a time), so memory
  stays flat however long the file. Parquet is read by DuckDB with its row numbers, in the same
  chunks. Used for JSON documents and for any file the fast read or the checks refuse, so every
  rejected row can be named by line.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import zlib
from collections import deque
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import IO, Any

import duckdb

from entitlements.ingest._sql import quote_ident, quote_literal, struct_literal
from entitlements.ingest.plans import CsvDialect, FilePlan

SAMPLE_RECORDS = 1000
DELIMITERS = (",", ";", "\t", "|")
# What reading a file can raise besides DuckDB's errors: a truncated or corrupt .gz (EOFError,
# zlib.error, gzip.BadGzipFile, an OSError) and the file system's own errors.
READ_ERRORS = (OSError, EOFError, zlib.error)
csv.field_size_limit(1 << 30)


def open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")


def is_utf8(path: Path) -> bool:
    """Whether the whole file is valid UTF-8 (streamed, at the decoder's speed)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open_binary(path) as fh:
            while chunk := fh.read(1 << 16):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def file_encoding(path: Path, declared: str | None = None) -> tuple[str, str | None]:
    """The encoding a CSV file is read in, for the whole file, and a note when it is not UTF-8.

    Never a guess from a sample: a declared encoding (--encoding) is used as declared; otherwise
    the file is UTF-8 unless no line of it is valid UTF-8 beyond ASCII while some line is not,
    which is a file written in another (single-byte) encoding: read as latin-1, and noted. A file
    with both valid UTF-8 lines and invalid ones is UTF-8 with damaged records: each record that is
    not valid UTF-8 is rejected with its line (entitlements/ingest/readers.py, exact read).
    """
    if declared:
        return declared, f"read as {declared} (declared with --encoding)"
    if is_utf8(path):
        return "utf-8", None
    utf8_lines = other_lines = 0
    with open_binary(path) as fh:
        for raw in fh:
            if raw.isascii():
                continue
            try:
                raw.decode("utf-8")
                utf8_lines += 1
            except UnicodeDecodeError:
                other_lines += 1
    if utf8_lines:
        return "utf-8", None
    return "latin-1", (
        f"read as latin-1: none of its {other_lines} line(s) with non-ASCII bytes is valid UTF-8"
        " (declare --encoding if the file is in another encoding)"
    )


def csv_dialect(path: Path, declared_encoding: str | None = None) -> tuple[CsvDialect, list[str]]:
    """The encoding and delimiter of a CSV file, and its header row."""
    encoding, note = file_encoding(path, declared_encoding)
    python_encoding = CsvDialect(encoding=encoding).python_encoding
    with open_binary(path) as raw:
        text = io.TextIOWrapper(raw, encoding=python_encoding, errors="replace", newline="")
        first = text.readline()
        while first and not first.strip():
            first = text.readline()
    # The delimiter that splits the header into the most fields (ties: the comma).
    counts = {d: len(next(csv.reader([first], delimiter=d), [])) for d in DELIMITERS}
    delimiter = max(DELIMITERS, key=lambda d: (counts[d], d == ","))
    header = next(csv.reader([first], delimiter=delimiter), [])
    return CsvDialect(delimiter, encoding, note), [h.strip() for h in header]


def header_names(cells: list[str]) -> list[str]:
    """CSV header cells as column names, named as DuckDB's read_csv names them (the fast read is
    given these names, so both reads agree): trimmed; an empty cell (a trailing delimiter) is
    ``column<i>`` (0-based position); a repeated name gets ``_1``, ``_2``... (repeated ignoring case,
    as SQL names are: ``Name`` and ``name`` are one column to DuckDB). So no value is lost to an
    unnamed or repeated column: the shape reads the first, the others are kept in _extra."""
    names: list[str] = []
    for position, cell in enumerate(cells):
        name = cell.strip() or f"column{position}"
        base, suffix = name, 0
        while name.lower() in (n.lower() for n in names):
            suffix += 1
            name = f"{base}_{suffix}"
        names.append(name)
    return names


def json_keys(path: Path, file_format: str, records_keys: tuple[str, ...]) -> list[str]:
    """Top-level keys of the first records of a JSON lines file or a JSON document, in first-seen order."""
    keys: dict[str, None] = {}
    for number, (_, _, record, _) in enumerate(json_records(path, file_format, records_keys)):
        if isinstance(record, dict):
            keys.update(dict.fromkeys(record))
        if number >= SAMPLE_RECORDS:
            break
    return list(keys)


def json_records(
    path: Path, file_format: str, records_keys: tuple[str, ...]
) -> Iterator[tuple[int, str, Any, str | None]]:
    """(line, raw text, parsed record or None, problem) per record.

    JSON lines: line = the physical line. A JSON document: a list of records, or an object holding
    it under one of records_keys (Stripe's "data"), or else one record; line = the record's
    position in the list (1-based).
    """
    if file_format == "json":
        with open_binary(path) as fh:
            data = fh.read()
        try:
            doc = json.loads(data.decode("utf-8-sig"))
        except RecursionError:
            yield 1, data[:2000].decode("utf-8", "replace"), None, _TOO_DEEP
            return
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if isinstance(exc, json.JSONDecodeError) and exc.msg == "Extra data":
                yield from json_records(path, "jsonl", records_keys)  # JSON lines saved as .json
                return
            yield 1, data[:2000].decode("utf-8", "replace"), None, f"not a valid JSON document ({exc})"
            return
        if isinstance(doc, dict):
            key = next((k for k in records_keys if isinstance(doc.get(k), list)), None)
            doc = doc[key] if key else [doc]
        for number, record in enumerate(doc if isinstance(doc, list) else [doc], 1):
            problem = None if isinstance(record, dict) else "the record is not a JSON object"
            yield number, json.dumps(record), record, problem
        return
    with open_binary(path) as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                yield number, raw.decode("latin-1").rstrip("\r\n"), None, f"not valid UTF-8 ({exc.reason})"
                continue
            try:
                record = json.loads(text)
            except RecursionError:
                yield number, text, None, _TOO_DEEP
                continue
            except json.JSONDecodeError as exc:
                # Some of json's messages end in " at" ("Unterminated string starting at").
                reason = exc.msg.removesuffix(" at")
                yield number, text, None, f"not valid JSON: {reason} at character {exc.pos + 1}"
                continue
            problem = None if isinstance(record, dict) else "the line is not a JSON object"
            yield number, text, record, problem


_TOO_DEEP = "the JSON is nested too deeply to read (more than about 1,000 levels)"


def _as_text(value: Any, type_: str) -> str | None:
    """A JSON value as DuckDB's read_json gives it for a VARCHAR or JSON column."""
    if value is None:
        return None
    if type_ == "JSON" or isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------------------------------- fast


def fast_source_sql(plan: FilePlan) -> str | None:
    """DuckDB's reader for the file, giving the shape's fields; None when only the exact read applies."""
    path_sql = quote_literal(str(plan.file.path))
    numbers: frozenset[str] = frozenset()
    if plan.file.file_format == "csv":
        dialect = plan.dialect or CsvDialect()
        encoding = dialect.duckdb_encoding
        if encoding is None:
            return None
        names = "[" + ", ".join(quote_literal(h) for h in plan.header) + "]"
        reader = (
            f"read_csv({path_sql}, header=true, all_varchar=true, delim={quote_literal(dialect.delimiter)},"
            f" quote='\"', escape='\"', encoding={quote_literal(encoding)}, names={names})"
        )
    elif plan.file.file_format == "jsonl":
        numbers = _numbers_read_as_json(plan)
        types = {
            plan.field_source[f]: "JSON" if f in numbers else t
            for f, t in plan.shape.fields.items()
            if f in plan.field_source
        }
        types |= dict.fromkeys(plan.extras, "JSON")
        if not types:
            return None
        reader = f"read_json({path_sql}, format='newline_delimited', columns={struct_literal(types)})"
    else:
        return None
    lineage = (
        "NULL::BIGINT AS _line, NULL::VARCHAR AS _raw, NULL::VARCHAR AS _problem,"
        " NULL::VARCHAR AS _problem_column"
    )
    return f"SELECT {_source_select(plan, numbers_as_json=numbers)}, {lineage} FROM {reader}"


def _numbers_read_as_json(plan: FilePlan) -> frozenset[str]:
    """Fields of a JSON lines file that the fast read takes as JSON, not text: those landing as they
    are in a DECIMAL column. DuckDB writes a number it reads as text in its own way (a third of the
    time of reading a usage file's quantity), as JSON in another (the same digits, 1e-05 written
    0.00001): the same value either way, and so the same checks' outcome. A string is taken out of
    its quotes, as read as text."""
    sources = list(plan.field_source.values())
    return frozenset(
        name
        for name, column in plan.field_source.items()
        if plan.shape.fields.get(name) == "VARCHAR"
        and sources.count(column) == 1
        and plan.shape.text_expr(name) == quote_ident(name)
        and any(c.name == name and c.type.upper().startswith("DECIMAL") for c in plan.layout.columns)
    )


def _source_select(
    plan: FilePlan, cast_from_text: bool = False, numbers_as_json: frozenset[str] = frozenset()
) -> str:
    """The shape's fields (NULL when the file lacks one) and the extras as one JSON object."""
    items = []
    for name, type_ in plan.shape.fields.items():
        if name in plan.field_source:
            column = quote_ident(plan.field_source[name])
            if cast_from_text:
                items.append(f"TRY_CAST({column} AS {type_}) AS {quote_ident(name)}")
            elif name in numbers_as_json:
                items.append(
                    f"CASE WHEN starts_with({column}, '\"') THEN {column} ->> '$'"
                    f" ELSE CAST({column} AS VARCHAR) END AS {quote_ident(name)}"
                )
            else:
                items.append(f"{column} AS {quote_ident(name)}")
        else:
            items.append(f"NULL::{type_} AS {quote_ident(name)}")
    if plan.extras:
        # The exact read of JSON holds each extra as JSON text: cast, or it would nest as a string.
        as_json = cast_from_text and plan.file.file_format in ("json", "jsonl")
        value = "CAST({} AS JSON)" if as_json else "{}"
        pairs = ", ".join(f"{quote_literal(e)}, {value.format(quote_ident(e))}" for e in plan.extras)
        items.append(f"json_object({pairs}) AS _extra")
    else:
        items.append("NULL::JSON AS _extra")
    return ", ".join(items)


# --------------------------------------------------------------------------------------- exact


# Records per chunk of the exact read: all it holds at once, in Python and in DuckDB, however long
# the file (a chunk of usage events is some 40 MB in Python).
EXACT_CHUNK_ROWS = 50_000
# The name a chunk's SQL reads it by: the caller's local variable holding the chunk (an Arrow table),
# found by DuckDB's replacement scan. Not a registered view: a view dropped inside a transaction keeps
# its table alive until the commit, so a file's chunks would pile up in memory.
CHUNK = "_exact_chunk"


def exact_chunks(plan: FilePlan, chunk_rows: int = EXACT_CHUNK_ROWS) -> Iterator[tuple[str, Any]]:
    """The file read record by record, in chunks of chunk_rows records, in file order: for each chunk,
    the SQL selecting its fields with _line, _raw, _problem and _problem_column, and the Arrow table
    the SQL reads as CHUNK (None for Parquet, which DuckDB reads itself). A file with no records
    gives no chunk."""
    columns = list(dict.fromkeys([*plan.field_source.values(), *plan.extras]))
    seen: set[str] = set()
    for column in columns:  # JSON keys differing in case only: one column to SQL, so which is which?
        if column.lower() in seen:
            raise duckdb.CatalogException(f'Catalog Error: Column with name "{column}" already exists!')
        seen.add(column.lower())
    fields = _source_select(plan, cast_from_text=True)
    if plan.file.file_format == "parquet":
        yield from _parquet_chunks(plan, columns, fields, chunk_rows)
        return
    import pyarrow as pa  # only the exact read needs it: an ingest whose fast reads succeed never loads it

    field_types = {plan.field_source[f]: t for f, t in plan.shape.fields.items() if f in plan.field_source}
    records = (
        _csv_rows(plan, columns) if plan.file.file_format == "csv" else _json_rows(plan, columns, field_types)
    )
    # _problem_column: the file's column a structural problem starts at (the first a short record lacks).
    names = [*columns, "_line", "_raw", "_problem", "_problem_column"]
    types = [pa.int64() if name == "_line" else pa.string() for name in names]
    select = f"SELECT {fields}, _line, _raw, _problem, _problem_column FROM {CHUNK}"
    while batch := list(islice(records, chunk_rows)):
        arrays = [pa.array(values, type=t) for values, t in zip(zip(*batch, strict=True), types, strict=True)]
        del batch  # the Arrow table holds the chunk now
        yield select, pa.Table.from_arrays(arrays, names=names)


def _parquet_chunks(
    plan: FilePlan, columns: list[str], fields: str, chunk_rows: int
) -> Iterator[tuple[str, None]]:
    """Parquet read by DuckDB with its row numbers; the filter on them skips the other row groups."""
    path_sql = quote_literal(str(plan.file.path))
    row = ", ".join(f"{quote_ident(c)} := {quote_ident(c)}" for c in columns)
    raw = f"to_json(struct_pack({row}))" if columns else "NULL::VARCHAR"
    rows = _parquet_rows(plan.file.path)
    for start in range(0, rows, chunk_rows):
        yield (
            f"SELECT {fields}, _line, _raw, _problem, _problem_column FROM"
            f" (SELECT * EXCLUDE (file_row_number), file_row_number + 1 AS _line, {raw} AS _raw,"
            " NULL::VARCHAR AS _problem, NULL::VARCHAR AS _problem_column"
            f" FROM read_parquet({path_sql}, file_row_number=true)"
            f" WHERE file_row_number >= {start} AND file_row_number < {start + chunk_rows})",
            None,
        )


def _parquet_rows(path: Path) -> int:
    """A Parquet file's row count, from its footer."""
    with duckdb.connect() as con:
        [(rows,)] = con.execute(
            f"SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata({quote_literal(str(path))})"
        ).fetchall()
    return int(rows)


def _csv_rows(plan: FilePlan, columns: list[str]) -> Iterator[tuple[Any, ...]]:
    dialect = plan.dialect or CsvDialect()
    with open_binary(plan.file.path) as raw:
        consumed: list[str] = []  # the physical lines of the record being read
        undecodable: list[str] = []  # why lines of the record being read could not be decoded
        again: deque[str] = deque()  # lines to read again after an unreadable record
        physical = _decoded_lines(raw, dialect.python_encoding)

        def lines() -> Iterator[str]:
            while True:
                if again:
                    line = again.popleft()
                else:
                    line, problem = next(physical, ("", None))
                    if not line:
                        return
                    if problem:
                        undecodable.append(problem)
                consumed.append(line)
                yield line

        def reader() -> Iterator[list[str]]:
            return csv.reader(lines(), delimiter=dialect.delimiter, strict=True)

        records = reader()
        header: list[str] | None = None
        position = {}
        start = 1  # the physical line the next record starts on
        while True:
            consumed.clear()
            undecodable.clear()
            try:
                values = next(records)
            except StopIteration:
                return
            except csv.Error as exc:
                # Reject the record's first line alone and read on from the line after it: a stray quote
                # would otherwise swallow the rest of the file into one record, or end the read there.
                first = consumed[0].rstrip("\r\n") if consumed else ""
                again.extendleft(reversed(consumed[1:]))
                if len(consumed) > 1 or "unexpected end of data" in str(exc):
                    reason = (
                        "a quote opened on this line is never closed (a stray quote, or a truncated file?)"
                    )
                else:
                    reason = f"{exc} (a quoted value must be quoted whole, with any quote inside it doubled)"
                reason = f"unreadable CSV record: {reason}"
                field = _quote_field(first, dialect.delimiter)
                column = header[field] if header and field is not None and field < len(header) else None
                yield (*([None] * len(columns)), start, first, reason, column)
                start += 1
                records = reader()
                continue
            raw_text = "".join(consumed).rstrip("\r\n")
            first_line = start
            start += len(consumed)
            if not values or (len(values) == 1 and not values[0].strip()):
                continue  # a blank line is not a record
            if header is None:
                header = header_names(values)
                position = {name: header.index(name) for name in columns if name in header}
                continue
            problem, problem_column = None, None
            if undecodable:
                problem = f"not valid {dialect.encoding}: {undecodable[0]}"
            elif len(values) != len(header):
                problem = _field_count_problem(values, header, raw_text, dialect.delimiter)
                # A short record: the first column it has no value for (where a truncated line stops).
                problem_column = header[len(values)] if len(values) < len(header) else None
            cells = [(values[position[c]] if position[c] < len(values) else None) for c in columns]
            yield (*[(v if v != "" else None) for v in cells], first_line, raw_text, problem, problem_column)


def _decoded_lines(raw: IO[bytes], encoding: str) -> Iterator[tuple[str, str | None]]:
    """Each physical line decoded on its own, and why it could not be, if so (then it is given with
    the bad bytes written as \\xNN, for the rejected row's raw content): an encoding is decided per
    record, so one damaged record never changes how the others are read."""
    first = True
    for line in raw:
        codec = "utf-8-sig" if first and encoding in ("utf-8", "utf-8-sig") else encoding
        first = False
        try:
            yield line.decode(codec), None
        except UnicodeDecodeError as exc:
            bad = line[exc.start : exc.end].hex(" ")
            yield line.decode(codec, "backslashreplace"), f"byte(s) {bad} at byte {exc.start + 1} of the line"


def _quote_field(line: str, delimiter: str) -> int | None:
    """The 0-based field of a line where a quoted value goes wrong: text after its closing quote, or no
    closing quote on the line; None if every quoted value is well formed."""
    field, quoted, at_start, i = 0, False, True, 0
    while i < len(line):
        char = line[i]
        if quoted and char == '"':
            if line[i + 1 : i + 2] == '"':  # an escaped quote
                i += 1
            else:
                quoted = False
                if line[i + 1 : i + 2] not in ("", delimiter):
                    return field
        elif not quoted and char == delimiter:
            field, at_start = field + 1, True
            i += 1
            continue
        elif at_start and char == '"':
            quoted = True
        at_start = False
        i += 1
    return field if quoted else None


def _field_count_problem(values: list[str], header: list[str], raw_text: str, delimiter: str) -> str:
    problem = (
        f"the record has {len(values)} field{'s' if len(values) != 1 else ''}, the header has {len(header)}"
    )
    fields = {d: len(next(csv.reader(io.StringIO(raw_text), delimiter=d), [])) for d in DELIMITERS}
    other = next((d for d in DELIMITERS if d != delimiter and fields[d] == len(header)), None)
    if other:
        return problem + f": the record is {other!r}-delimited, the header {delimiter!r}-delimited"
    if len(values) < len(header):
        return problem + (
            f" (no value from column '{header[len(values)]}' on: a truncated line, or a field with an"
            " unquoted line break?)"
        )
    return problem + " (a value with an unquoted delimiter?)"


def _json_rows(plan: FilePlan, columns: list[str], field_types: dict[str, str]) -> Iterator[tuple[Any, ...]]:
    records = json_records(
        plan.file.path, plan.file.file_format, (plan.shape.records_key,) if plan.shape.records_key else ()
    )
    for line, raw_text, record, problem in records:
        if record is None or not isinstance(record, dict):
            yield (*([None] * len(columns)), line, raw_text, problem, None)
            continue
        cells = [_as_text(record.get(c), field_types.get(c, "JSON")) for c in columns]
        yield (*cells, line, raw_text, problem, None)
