"""Finding the files of an export directory and checking their headers before anything lands.

Which files are read: every regular file under the export directory, walked recursively and
sorted by relative path, except

- hidden files and folders (name starts with "."), such as .DS_Store or editor swap files;
- any folder named ``ground_truth`` or ``legacy``, at any depth: the demo generator's answer key
  and archived exports, which must never reach the warehouse;
- ``export.json`` at the top level: the export's own metadata.

Every other file must match a layout in ingest/layouts.py, or the whole ingest is refused before
anything lands: a renamed or new export file is then noticed instead of silently ignored.

The pre-flight reads each file's header; a catalog file (layout crm_catalog) is also read whole
and checked by ingest/catalog.py (docs/catalog.md), as its mistakes would otherwise surface only
as entitlements silently missing from the dbt models.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ingest._sql import quote_ident, quote_literal, struct_literal
from ingest.catalog import CATALOG_LAYOUT, CatalogProblem, validate_catalog
from ingest.errors import IngestError, refused_read
from ingest.layouts import LAYOUTS, Layout, layout_for

IGNORED_DIRS = frozenset({"ground_truth", "legacy"})
EXPORT_METADATA = "export.json"


@dataclass(frozen=True)
class ExportFile:
    path: Path  # absolute
    relative: str  # posix path relative to the export directory
    layout: Layout
    size: int


# CSV dates and timestamps are read as ISO 8601, as read_json does. When DuckDB's sniffer finds
# another format in a CSV sample it would apply it (and pick %d/%m/%Y for 01/02/2024, silently);
# forcing ISO instead makes such a file fail on its first non-ISO value, with line and column.
ISO_FORMATS = (("dateformat", "%Y-%m-%d"), ("timestampformat", "%Y-%m-%d %H:%M:%S"))


@dataclass(frozen=True)
class FilePlan:
    """A file whose header passed the pre-flight, and how to read it."""

    file: ExportFile
    header: tuple[str, ...]  # columns (CSV) or sampled keys (JSONL), as DuckDB names them
    options: tuple[tuple[str, str], ...] = ()  # extra reader options, e.g. (("dateformat", "%Y-%m-%d"),)

    @property
    def extra_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.header if c not in self.file.layout.column_names)

    @property
    def absent_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.file.layout.column_names if c not in self.header)

    @property
    def read_types(self) -> dict[str, str]:
        """Explicit types for the reader, so DuckDB never guesses one.

        CSV: every header column (extras as VARCHAR, so a column we drop can't fail the load).
        JSONL: the layout's columns; read_json ignores other keys and gives NULL for absent ones.
        """
        types = {c.name: c.type for c in self.file.layout.columns}
        if self.file.layout.file_format == "csv":
            return {name: types.get(name, "VARCHAR") for name in self.header}
        return types

    @property
    def select_list(self) -> str:
        """The layout's columns in order; optional ones the reader doesn't produce land as NULL."""
        readable = self.read_types
        return ", ".join(
            quote_ident(c.name) if c.name in readable else f"CAST(NULL AS {c.type}) AS {quote_ident(c.name)}"
            for c in self.file.layout.columns
        )

    @property
    def reader(self) -> str:
        """The typed reader the file lands with."""
        return reader_sql(self.file, self.read_types, self.options)

    @property
    def notes(self) -> str:
        notes = []
        if self.extra_columns:
            notes.append("dropped columns not in the layout: " + ", ".join(self.extra_columns))
        if self.absent_columns:
            absent = ", ".join(self.absent_columns)
            if self.file.layout.file_format == "csv":
                notes.append(f"optional columns not in the file, landed as NULL: {absent}")
            else:
                notes.append(f"optional keys not in the sampled records, NULL where absent: {absent}")
        return "; ".join(notes)


def reader_sql(
    file: ExportFile, types: dict[str, str] | None = None, options: tuple[tuple[str, str], ...] = ()
) -> str:
    """DuckDB's own reader for a file: all text for a header check when types is None, else typed."""
    if file.layout.file_format == "csv":
        function = "read_csv"
        args = ["header=true", "all_varchar=true" if types is None else f"types={struct_literal(types)}"]
    elif file.layout.file_format == "jsonl":
        function = "read_json"
        args = ["format='newline_delimited'"]
        if types is not None:
            args.append(f"columns={struct_literal(types)}")
    else:
        raise ValueError(f"layout {file.layout.table}: unknown file format {file.layout.file_format!r}")
    args += [f"{name}={quote_literal(value)}" for name, value in options]
    return f"{function}({quote_literal(str(file.path))}, {', '.join(args)})"


def discover_exports(export_dir: Path) -> list[ExportFile]:
    """Every export file with its layout; refuses the export if any file matches no layout."""
    if not export_dir.is_dir():
        raise IngestError(
            f"{export_dir}: export directory not found."
            " Pass the folder that holds the crm/, billing/ and usage/ exports.",
            source_file=str(export_dir),
        )
    files, unknown = [], []
    for relative in _walk(export_dir):
        layout = layout_for(relative)
        if layout is None:
            unknown.append(relative)
        else:
            path = export_dir / relative
            files.append(ExportFile(path, relative, layout, path.stat().st_size))
    patterns = ", ".join(layout.pattern for layout in LAYOUTS)
    if unknown:
        raise IngestError(
            f"{', '.join(unknown)}: no layout matches {'this file' if len(unknown) == 1 else 'these files'},"
            f" so the export was refused and nothing was landed. Accepted patterns: {patterns}."
            " Rename or remove the file, or add a layout in ingest/layouts.py (hidden files,"
            f" {' and '.join(sorted(IGNORED_DIRS))} folders and a top-level {EXPORT_METADATA} are ignored).",
            source_file=unknown[0],
        )
    if not files:
        message = f"{export_dir}: no export files found. Accepted patterns: {patterns}."
        raise IngestError(message, source_file=str(export_dir))
    return files


def _walk(root: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in IGNORED_DIRS)
        for name in filenames:
            path = Path(dirpath, name)
            relative = path.relative_to(root).as_posix()
            if not name.startswith(".") and relative != EXPORT_METADATA and path.is_file():
                found.append(relative)
    return sorted(found)


def preflight(con: duckdb.DuckDBPyConnection, file: ExportFile) -> FilePlan:
    """Read only the header (CSV) or a sample of keys (JSONL) and check the required columns.

    A catalog file is first read whole and must pass validate_catalog (every problem is listed).
    """
    if _is_blank(file.path):
        expected = "a header line" if file.layout.file_format == "csv" else "one JSON object per line"
        raise IngestError(
            f"{file.relative}: the file is empty (expected {expected})."
            " Re-export it, or remove it from the export.",
            source_file=file.relative,
        )
    if file.layout.table == CATALOG_LAYOUT.table:
        # Before DuckDB's header read: a malformed row can throw its sniffer off the header,
        # while the catalog check names that row (and checks the header itself).
        problems = validate_catalog(file.path, name=file.relative)
        if problems:
            raise _invalid_catalog(file, problems)
    try:
        header = tuple(d[0] for d in con.execute(f"SELECT * FROM {reader_sql(file)} LIMIT 0").description)
    except duckdb.Error as exc:
        raise refused_read(exc, file) from exc
    missing = [c for c in file.layout.required_columns if c not in header]
    if missing:
        raise _missing_columns(file, header, missing)
    return FilePlan(file, header, _non_iso_overrides(con, file))


def _non_iso_overrides(con: duckdb.DuckDBPyConnection, file: ExportFile) -> tuple[tuple[str, str], ...]:
    """ISO date/timestamp formats for a CSV whose sample DuckDB would otherwise read another way."""
    if file.layout.file_format != "csv":
        return ()
    sniffed = con.execute(
        f"SELECT DateFormat, TimestampFormat FROM sniff_csv({quote_literal(str(file.path))}, header=true)"
    ).fetchone()
    formats = zip(ISO_FORMATS, sniffed, strict=True)
    return tuple((option, iso) for (option, iso), found in formats if found and found != iso)


def _missing_columns(file: ExportFile, header: tuple[str, ...], missing: list[str]) -> IngestError:
    layout, column = file.layout, missing[0]
    message = (
        f"{file.relative}: missing required column '{column}'"
        f" (layout {layout.table}; required: {', '.join(layout.required_columns)})."
    )
    if len(missing) > 1:
        message += " Also missing: " + ", ".join(f"'{c}'" for c in missing[1:]) + "."
    near = [h for h in header if h.strip().lower() == column.lower()]
    if near:
        message += f" The file has '{near[0]}': column names must match exactly."
    message += f" The file has: {', '.join(header)}. Add the column to the export or fix the header."
    return IngestError(message, source_file=file.relative, column=column)


def _invalid_catalog(file: ExportFile, problems: list[CatalogProblem]) -> IngestError:
    first = problems[0]
    count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
    message = (
        f"{file.relative}, line {first.line}: the catalog has {count}, so the export was refused and"
        " nothing was landed:\n"
        + "".join(f"  - {problem}\n" for problem in problems)
        + "Fix the catalog (docs/catalog.md describes the format; `entitlements check-catalog FILE`"
        " lists the problems without ingesting) and run the ingest again."
    )
    return IngestError(message, source_file=file.relative, column=first.column, line=first.line)


def _is_blank(path: Path) -> bool:
    """True if the file holds nothing but whitespace; stops at the first chunk with content."""
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 16):
            if chunk.strip():
                return False
    return True
