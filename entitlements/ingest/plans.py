"""What the ingest knows of a file before it reads it: where it is, which shape it is, how to read it.

Shared by the discovery (exports.py), the readers (readers.py) and the error messages (errors.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from entitlements.ingest._sql import quote_ident
from entitlements.ingest.shapes import Shape


@dataclass(frozen=True)
class CsvDialect:
    delimiter: str = ","
    encoding: str = "utf-8"  # "utf-8" (a BOM is skipped), "latin-1" or a declared Python codec name
    encoding_note: str | None = None  # why the file is read in another encoding than UTF-8

    @property
    def python_encoding(self) -> str:
        return "utf-8-sig" if self.encoding == "utf-8" else self.encoding

    @property
    def duckdb_encoding(self) -> str | None:
        """The encoding as DuckDB's CSV reader names it; None where only the exact read decodes it."""
        return {"utf-8": "utf-8", "latin-1": "latin-1"}.get(self.encoding)


@dataclass(frozen=True)
class ExportFile:
    path: Path  # absolute
    relative: str  # posix path relative to the export directory
    stem: str  # relative without its format suffixes, e.g. "usage/events_2024-07"
    file_format: str  # csv, jsonl, json or parquet
    size: int
    modified_ns: int = 0  # st_mtime_ns when the export was discovered


@dataclass(frozen=True)
class FilePlan:
    """A file recognised as a shape, and how to read it."""

    file: ExportFile
    shape: Shape
    header: tuple[str, ...]  # CSV/Parquet columns or sampled JSON keys, as the file names them
    field_source: dict[str, str]  # shape field -> the header name it is read from
    extras: tuple[str, ...]  # header names the shape does not read: kept in raw._extra as JSON
    dialect: CsvDialect | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def layout(self):
        return self.shape.layout

    def file_columns(self, column: str) -> tuple[str, ...]:
        """The file's own names (header names) of the fields raw `column` is read from, as the shape's
        SQL for it quotes them, in the order it does (the field read first, then its fallbacks): a
        message about valid_from names StartDate, the column the user has."""
        expr = self.shape.text_expr(column)
        text = expr if isinstance(expr, str) else getattr(expr, "source", None)
        if not text:
            return ()
        found = {header: text.find(quote_ident(name)) for name, header in self.field_source.items()}
        return tuple(sorted((h for h, at in found.items() if at >= 0), key=lambda h: found[h]))
