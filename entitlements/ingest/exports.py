"""Finding the files of an export directory, recognising each one's shape, checking its header.

Which files are read: every regular file under the export directory, walked recursively and
sorted by relative path, except

- hidden files and folders (name starts with "."), such as .DS_Store or editor swap files;
- any folder named ``ground_truth`` or ``legacy``, at any depth: the demo generator's answer key
  and archived exports, which must never reach the warehouse;
- ``export.json`` (the export's own metadata), ``mapping.csv`` (mapping.py), ``entitlements.yml``
  (the configuration, entitlements/config.py) and ``phases.yml`` (a legacy export's migration
  plan, docs/migration.md) at the top.

Every other file must be recognised as one shape (entitlements/ingest/shapes.py): its name and format match
the shape's and its header (CSV, Parquet) or keys (JSON) hold the shape's signature. A file no
shape or more than one shape takes refuses the whole ingest before anything lands, so a renamed
or new export file is noticed instead of silently ignored. A canonical catalog or price book file
is also read whole and checked (entitlements/ingest/catalog.py, docs/catalog.md;
entitlements/ingest/price_book.py, docs/pricing.md): any problem in it refuses the export.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

import duckdb

from entitlements.ingest._sql import quote_literal
from entitlements.ingest.adapters import all_shapes
from entitlements.ingest.catalog import CATALOG_LAYOUT, validate_catalog
from entitlements.ingest.errors import IngestError
from entitlements.ingest.plans import CsvDialect, ExportFile, FilePlan
from entitlements.ingest.price_book import PRICE_BOOK_LAYOUT, validate_price_book
from entitlements.ingest.readers import READ_ERRORS, csv_dialect, header_names, json_keys
from entitlements.ingest.shapes import Shape, split_name
from entitlements.ingest.whole_file import FileProblem

IGNORED_DIRS = frozenset({"ground_truth", "legacy"})
EXPORT_METADATA = "export.json"
MAPPING_FILE = "mapping.csv"
MIGRATION_PLAN = "phases.yml"
CONFIG_FILE = "entitlements.yml"
TOP_LEVEL_IGNORED = frozenset({EXPORT_METADATA, MAPPING_FILE, MIGRATION_PLAN, CONFIG_FILE})


@dataclass(frozen=True)
class WholeFileCheck:
    """A raw table whose CSV files are checked whole in the pre-flight: its rows only mean something
    together, so a file with any problem refuses the export rather than landing in part."""

    validate: Callable[..., Sequence[FileProblem]]  # (path, *, name) -> every problem, in line order
    what: str  # the file, as the refusal names it
    docs: str
    command: str  # the CLI command that lists the problems without ingesting


WHOLE_FILE_CHECKS: dict[str, WholeFileCheck] = {
    CATALOG_LAYOUT.table: WholeFileCheck(validate_catalog, "catalog", "docs/catalog.md", "check-catalog"),
    PRICE_BOOK_LAYOUT.table: WholeFileCheck(
        validate_price_book, "price book", "docs/pricing.md", "check-price-book"
    ),
}


def ignored_by(relative: str, patterns: Sequence[str]) -> str | None:
    """The first of entitlements.yml's `ignore` patterns the file matches: a pattern with a '/' against
    its path in the export, one without against its name (`Opportunity*`, `crm/Product2.csv`)."""
    name = PurePosixPath(relative).name
    return next((p for p in patterns if fnmatchcase(relative if "/" in p else name, p)), None)


def discover_exports(export_dir: Path, ignore: Sequence[str] = ()) -> tuple[list[ExportFile], list[str]]:
    """Every export file with a readable format, and the files `ignore` leaves out (relative paths);
    refuses the export for a file of unknown format (unless ignored)."""
    if not export_dir.is_dir():
        raise IngestError(
            f"{export_dir}: export directory not found."
            " Pass the folder that holds the crm/, billing/ and usage/ exports.",
            source_file=str(export_dir),
        )
    files, unknown, ignored = [], [], []
    for relative in _walk(export_dir):
        if ignored_by(relative, ignore):
            ignored.append(relative)
            continue
        parts = split_name(relative)
        if parts is None:
            unknown.append(relative)
            continue
        stem, file_format, _ = parts
        path = export_dir / relative
        stat = path.stat()
        files.append(ExportFile(path, relative, stem, file_format, stat.st_size, stat.st_mtime_ns))
    if unknown:
        raise IngestError(
            f"{', '.join(unknown)}: not a format the ingest reads (.csv, .jsonl, .ndjson, .json, .parquet,"
            " the first four optionally .gz), so the export was refused and nothing was landed."
            f" Rename or remove {'the file' if len(unknown) == 1 else 'these files'} (hidden files,"
            f" {' and '.join(sorted(IGNORED_DIRS))} folders and a top-level {EXPORT_METADATA},"
            f" {MAPPING_FILE}, {CONFIG_FILE} and {MIGRATION_PLAN} are ignored).",
            source_file=unknown[0],
        )
    if not files:
        raise IngestError(f"{export_dir}: no export files found.", source_file=str(export_dir))
    return files, ignored


def _walk(root: Path) -> list[str]:
    """Relative paths of the files to read. Links are followed (a linked folder is read like any
    other); a link that leads nowhere, or back into a folder already being read (a loop), and
    anything that is not a regular file (a pipe, a socket) refuses the export, naming it, rather
    than being skipped unseen."""
    found, problems = [], []
    seen = {root.resolve()}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        kept = []
        for name in sorted(dirnames):
            if name.startswith(".") or name in IGNORED_DIRS:
                continue
            path = Path(dirpath, name)
            real = path.resolve()
            if real in seen:
                problems.append(
                    f"{path.relative_to(root).as_posix()}: a link to a folder already read (a loop, or a"
                    " second copy)"
                )
                continue
            seen.add(real)
            kept.append(name)
        dirnames[:] = kept
        for name in filenames:
            path = Path(dirpath, name)
            relative = path.relative_to(root).as_posix()
            if name.startswith(".") or relative in TOP_LEVEL_IGNORED:
                continue
            if path.is_symlink() and not path.exists():
                problems.append(f"{relative}: a link to {os.readlink(path)}, which does not exist")
            elif not path.is_file():
                problems.append(f"{relative}: not a regular file")
            else:
                found.append(relative)
    if problems:
        raise IngestError(
            "the export has entries that cannot be read, so it was refused and nothing was landed:\n"
            + "".join(f"  - {p}\n" for p in problems)
            + "Remove them, or make each link point to the file it stands for, and run again.",
            source_file=problems[0].split(":", 1)[0],
        )
    return sorted(found)


def preflight(
    con: duckdb.DuckDBPyConnection,
    file: ExportFile,
    family: str | None = None,
    encoding: str | None = None,
    shapes: tuple[Shape, ...] | None = None,
) -> list[FilePlan]:
    """Recognise the file's shapes from its name and header (or keys); check a catalog or price book
    whole.

    Usually one shape reads a file; a document holding two kinds of record (a Stripe invoice and
    its lines) is read by one shape per raw table, of one family.
    """
    try:  # a damaged .gz (or an unreadable file) is named, not a traceback
        if _is_blank(file.path):
            raise IngestError(
                f"{file.relative}: the file is empty (expected a header line, or records)."
                " Re-export it, or remove it from the export.",
                source_file=file.relative,
            )
        candidates = [s for s in (shapes or all_shapes()) if family in (None, s.family)]
        by_name = [s for s in candidates if s.matches_name(file.stem, file.file_format)]
        if not by_name:
            raise _unrecognised(file, candidates, family)
        dialect, header = _header(con, file, by_name, encoding)
    except READ_ERRORS as exc:
        raise _unreadable(file, exc) from exc
    fits = [s for s in by_name if set(s.signature) <= set(s.header_fields(tuple(header)))]
    tables = [s.layout.table for s in fits]
    if len({s.family for s in fits}) > 1 or len(set(tables)) < len(tables):
        names = ", ".join(s.name for s in fits)
        raise IngestError(
            f"{file.relative}: the file could be read as any of {names}; pass --format"
            f" ({', '.join(sorted({s.family for s in fits}))}) to choose.",
            source_file=file.relative,
        )
    if not fits:
        raise _missing_columns(file, header, by_name)
    if file.file_format == "csv":
        # The checks read the layout's own columns: canonical files only.
        canonical = [s.layout.table for s in fits if s.family == "canonical"]
        for check in (WHOLE_FILE_CHECKS[t] for t in canonical if t in WHOLE_FILE_CHECKS):
            # A malformed row can throw the header read off; the whole-file check names that row.
            problems = check.validate(file.path, name=file.relative)
            if problems:
                raise _invalid_whole_file(file, check, problems)
    return [_plan(file, shape, header, dialect) for shape in fits]


def _plan(file: ExportFile, shape: Shape, header: list[str], dialect: CsvDialect | None) -> FilePlan:
    notes = []
    if file.file_format == "csv":
        # Unnamed and repeated header cells get names (readers.header_names), so their values are kept.
        cells, header = header, header_names(header)
        renamed = [
            f"{cell or '(empty)'} -> {name}" for cell, name in zip(cells, header, strict=True) if cell != name
        ]
        if renamed:
            notes.append("unnamed or repeated header columns renamed: " + ", ".join(renamed))
    field_source = shape.header_fields(tuple(header))
    used = set(field_source.values())
    extras = tuple(h for h in header if h not in used)
    if dialect and dialect.delimiter != ",":
        notes.append(f"read with delimiter {dialect.delimiter!r}")
    if dialect and dialect.encoding_note:
        notes.append(dialect.encoding_note)
    if extras:
        notes.append("columns kept in _extra: " + ", ".join(extras))
    absent = [c for c in shape.fields if c not in field_source]
    if absent and shape.family == "canonical":
        notes.append("optional columns not in the file, landed as NULL: " + ", ".join(absent))
    return FilePlan(file, shape, tuple(header), field_source, extras, dialect, tuple(notes))


def _header(
    con: duckdb.DuckDBPyConnection, file: ExportFile, shapes: list[Shape], encoding: str | None
) -> tuple[CsvDialect | None, list[str]]:
    if file.file_format == "csv":
        return csv_dialect(file.path, encoding)
    if file.file_format == "parquet":
        query = f"SELECT * FROM read_parquet({quote_literal(str(file.path))}) LIMIT 0"
        return None, [d[0] for d in con.execute(query).description]
    keys = tuple(dict.fromkeys(s.records_key for s in shapes if s.records_key))
    return None, json_keys(file.path, file.file_format, keys)


class UnrecognisedFile(IngestError):
    """A file no shape reads. `short` names it; `advice` (the names each shape reads) is the same for
    every such file, so a refusal listing several says it once (land._refused_export)."""

    def __init__(self, short: str, advice: str, *, source_file: str) -> None:
        super().__init__(
            f"{short}, so the export was refused and nothing was landed. {advice}", source_file=source_file
        )
        self.short, self.advice = short, advice


def _unrecognised(file: ExportFile, shapes: list[Shape], family: str | None) -> IngestError:
    patterns = "; ".join(
        f"{fam}: " + ", ".join(dict.fromkeys(p for s in shapes if s.family == fam for p in s.names))
        for fam in dict.fromkeys(s.family for s in shapes)
    )
    scope = f" of format {family}" if family else ""
    return UnrecognisedFile(
        f"{file.relative}: no shape{scope} reads a {file.file_format} file named like this",
        f"File names (without extension) each shape reads: {patterns}."
        " Rename or remove the file, leave it out with `ignore` in entitlements.yml"
        " (docs/configuration.md), or pass --format (docs/ingest.md).",
        source_file=file.relative,
    )


def _missing_columns(file: ExportFile, header: list[str], shapes: list[Shape]) -> IngestError:
    shape = min(shapes, key=lambda s: len(set(s.signature) - set(s.header_fields(tuple(header)))))
    missing = [c for c in shape.signature if c not in shape.header_fields(tuple(header))]
    column = missing[0]
    message = (
        f"{file.relative}: missing required column '{column}'"
        f" (shape {shape.name}; required: {', '.join(shape.signature)})."
    )
    if len(missing) > 1:
        message += " Also missing: " + ", ".join(f"'{c}'" for c in missing[1:]) + "."
    near = [h for h in header if h.strip().casefold() == column.casefold()]  # case alone never misses
    if near:
        message += f" The file has '{near[0]}': column names must match, spaces included."
    if len(header) == 1 and len(shape.signature) > 1:
        message += (
            " The header is a single column: is the delimiter right? (The ingest reads comma, semicolon,"
            " tab and pipe delimited files.)"
        )
    message += f" The file has: {', '.join(header)}. Add the column to the export or fix the header."
    return IngestError(message, source_file=file.relative, column=column, line=1)


def _unreadable(file: ExportFile, exc: BaseException) -> IngestError:
    hint = (
        " A .gz file must hold complete gzip data: compress or download it again."
        if file.path.name.endswith(".gz")
        else ""
    )
    return IngestError(
        f"{file.relative}: the file could not be read ({exc}), so the export was refused and nothing"
        f" was landed.{hint}",
        source_file=file.relative,
    )


def _invalid_whole_file(
    file: ExportFile, check: WholeFileCheck, problems: Sequence[FileProblem]
) -> IngestError:
    first = problems[0]
    count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
    message = (
        f"{file.relative}, line {first.line}: the {check.what} has {count}, so the export was refused and"
        " nothing was landed:\n"
        + "".join(f"  - {problem}\n" for problem in problems)
        + f"Fix the {check.what} ({check.docs} describes the format; `entitlements {check.command} FILE`"
        " lists the problems without ingesting) and run the ingest again."
    )
    return IngestError(message, source_file=file.relative, column=first.column, line=first.line)


def _is_blank(path: Path) -> bool:
    """True if the file holds nothing but whitespace; stops at the first chunk with content."""
    from entitlements.ingest.readers import open_binary

    with open_binary(path) as fh:
        while chunk := fh.read(1 << 16):
            if chunk.strip():
                return False
    return True
