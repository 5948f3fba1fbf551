"""Land an export directory's files in the warehouse's raw schema, one transaction per file.

The steps, and why in this order:

1. Discover every file under the export directory, recursively, in sorted order. Ignored: hidden
   files and folders, any folder named ground_truth or legacy, and a top-level export.json (see
   ingest/exports.py). Any other file no layout matches refuses the whole ingest.
2. Pre-flight every file: read its header (CSV) or a sample of its keys (JSONL) and check the
   layout's required columns. Steps 1 and 2 run before the warehouse is even opened.
3. For each file: hash it (streaming); if a load of the same content into the same table is
   already 'landed' or 'validated' in audit.ingest_manifest, record a 'skipped' manifest row and
   move on. Otherwise read it with DuckDB's own reader, typed per the layout, insert it into its
   raw table with lineage columns (_load_id, _source_file, _loaded_at) and insert its manifest row,
   all in one transaction: a bad value rolls back the whole file and raises IngestError.

Files landed before a failing file stay landed (each is its own transaction); the next run skips
them by hash. Timestamps (_loaded_at, loaded_at) are UTC.
"""

from __future__ import annotations

import hashlib
import sys
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from tqdm import tqdm

from entitlements.warehouse import connect
from ingest._sql import quote_ident, quote_literal
from ingest.errors import IngestError, refused_read
from ingest.exports import ExportFile, FilePlan, discover_exports, preflight
from ingest.layouts import LAYOUTS

__all__ = ["FileResult", "IngestError", "ensure_warehouse", "ingest_exports", "revert_load"]

LINEAGE_COLUMNS = (("_load_id", "VARCHAR"), ("_source_file", "VARCHAR"), ("_loaded_at", "TIMESTAMP"))
MANIFEST = "audit.ingest_manifest"
MANIFEST_COLUMNS = (
    ("load_id", "VARCHAR"),
    ("source_file", "VARCHAR"),  # relative to export_dir, posix
    ("export_dir", "VARCHAR"),  # absolute
    ("table_name", "VARCHAR"),
    ("sha256", "VARCHAR"),
    ("row_count", "BIGINT"),
    ("status", "VARCHAR"),  # landed | validated | refused | skipped
    ("message", "VARCHAR"),
    ("loaded_at", "TIMESTAMP"),
)
# Loads whose content counts as in the warehouse: the same file again is skipped.
CURRENT_STATUSES = ("landed", "validated")


@dataclass(frozen=True)
class FileResult:
    source_file: str  # path relative to the export dir, posix, e.g. "crm/accounts.csv"
    table: str  # raw table name, e.g. "crm_accounts"
    sha256: str
    rows: int  # rows landed (0 when skipped)
    status: str  # "landed" | "skipped"
    load_id: str | None  # None when skipped
    message: str = ""


def ensure_warehouse(con: duckdb.DuckDBPyConnection) -> None:
    """Create schemas raw and audit, every raw table (empty) and the manifest; safe to repeat.

    Raw tables exist even before their first file lands, so dbt sources and checks always resolve.
    A column added to a layout since the table was created is added to it (NULL in earlier loads).
    """
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute("CREATE SCHEMA IF NOT EXISTS audit")
    for layout in LAYOUTS:
        table = f"raw.{quote_ident(layout.table)}"
        columns = [(c.name, c.type) for c in layout.columns] + list(LINEAGE_COLUMNS)
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({_column_defs(columns)})")
        info = f"SELECT name FROM pragma_table_info({quote_literal(table)})"
        existing = {name for (name,) in con.execute(info).fetchall()}
        for name, type_ in columns:
            if name not in existing:
                con.execute(f"ALTER TABLE {table} ADD COLUMN {quote_ident(name)} {type_}")
    con.execute(f"CREATE TABLE IF NOT EXISTS {MANIFEST} ({_column_defs(MANIFEST_COLUMNS)})")


def _column_defs(columns: Iterable[tuple[str, str]]) -> str:
    return ", ".join(f"{quote_ident(name)} {type_}" for name, type_ in columns)


def ingest_exports(warehouse: Path, export_dir: Path, *, progress: bool | None = None) -> list[FileResult]:
    """Land every file of an export directory; returns one result per file, in path order.

    Raises IngestError, naming the file, for an unknown file or a missing required column (before
    anything lands) and for a value DuckDB can't read as the layout's type (that file is rolled back).
    progress: a tqdm bar on stderr; None shows it only when stderr is a terminal.
    """
    export_dir = Path(export_dir).resolve()
    files = discover_exports(export_dir)
    with duckdb.connect() as scratch:  # pre-flight never opens, let alone creates, the warehouse
        plans = [preflight(scratch, file) for file in files]
    results = []
    with _open(warehouse) as con, _progress_bar(sum(f.size for f in files), progress) as bar:
        ensure_warehouse(con)
        for number, plan in enumerate(plans, 1):
            bar.set_description(f"ingest {number}/{len(plans)} {plan.file.relative}")
            results.append(_ingest_file(con, plan, export_dir))
            bar.update(plan.file.size)
    return results


def _progress_bar(total_bytes: int, progress: bool | None) -> tqdm:
    show = sys.stderr.isatty() if progress is None else progress
    return tqdm(
        total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, disable=not show, file=sys.stderr
    )


def _ingest_file(con: duckdb.DuckDBPyConnection, plan: FilePlan, export_dir: Path) -> FileResult:
    file = plan.file
    sha256 = _sha256(file.path)
    previous = con.execute(
        f"SELECT load_id, source_file, status FROM {MANIFEST}"
        " WHERE sha256 = $sha256 AND table_name = $table AND list_contains($statuses, status)"
        " ORDER BY loaded_at LIMIT 1",
        {"sha256": sha256, "table": file.layout.table, "statuses": list(CURRENT_STATUSES)},
    ).fetchone()
    if previous:
        load_id, source_file, status = previous
        message = f"same content as load {load_id} of {source_file} ({status})"
        _record(con, file, export_dir, sha256, load_id=None, rows=0, status="skipped", message=message)
        return FileResult(file.relative, file.layout.table, sha256, 0, "skipped", None, message)
    return _land(con, plan, export_dir, sha256)


def _land(con: duckdb.DuckDBPyConnection, plan: FilePlan, export_dir: Path, sha256: str) -> FileResult:
    """Rows and manifest row in one transaction, so a file is in the warehouse whole or not at all."""
    file, layout = plan.file, plan.file.layout
    load_id = str(uuid.uuid4())
    loaded_at = _utc_now()
    target = ", ".join(quote_ident(name) for name in (*layout.column_names, *(n for n, _ in LINEAGE_COLUMNS)))
    insert = (
        f"INSERT INTO raw.{quote_ident(layout.table)} ({target})"
        f" SELECT {plan.select_list}, $load_id, $source_file, $loaded_at"
        f" FROM {plan.reader}"
    )
    try:
        with _transaction(con):
            params = {"load_id": load_id, "source_file": file.relative, "loaded_at": loaded_at}
            (rows,) = con.execute(insert, params).fetchone()
            _record(
                con,
                file,
                export_dir,
                sha256,
                load_id=load_id,
                rows=rows,
                status="landed",
                message=plan.notes,
                loaded_at=loaded_at,
            )
    except duckdb.Error as exc:
        raise refused_read(exc, file) from exc
    return FileResult(file.relative, layout.table, sha256, rows, "landed", load_id, plan.notes)


def _record(
    con: duckdb.DuckDBPyConnection,
    file: ExportFile,
    export_dir: Path,
    sha256: str,
    *,
    load_id: str | None,
    rows: int,
    status: str,
    message: str,
    loaded_at: datetime | None = None,
) -> None:
    con.execute(
        f"INSERT INTO {MANIFEST} VALUES ($load_id, $source_file, $export_dir, $table, $sha256, $rows,"
        " $status, $message, $loaded_at)",
        {
            "load_id": load_id,
            "source_file": file.relative,
            "export_dir": str(export_dir),
            "table": file.layout.table,
            "sha256": sha256,
            "rows": rows,
            "status": status,
            "message": message,
            "loaded_at": loaded_at or _utc_now(),
        },
    )


def revert_load(warehouse: Path, load_ids: list[str], reason: str) -> None:
    """Take loads back out of raw and mark them 'refused' with the reason, in one transaction.

    For loads the landing checks reject: either the raw tables and the manifest both show the
    revert, or neither does. Raises ValueError, changing nothing, for an id the manifest lacks.
    """
    if not load_ids:
        return
    if not Path(warehouse).exists():
        raise FileNotFoundError(f"warehouse {warehouse} does not exist")
    with _open(warehouse) as con, _transaction(con):
        ids = {"ids": list(load_ids)}
        loads = con.execute(
            f"SELECT DISTINCT load_id, table_name FROM {MANIFEST} WHERE list_contains($ids, load_id)", ids
        ).fetchall()
        unknown = sorted(set(load_ids) - {load_id for load_id, _ in loads})
        if unknown:
            raise ValueError(f"no such load in {MANIFEST}: {', '.join(unknown)}")
        for table in sorted({table for _, table in loads}):
            con.execute(f"DELETE FROM raw.{quote_ident(table)} WHERE list_contains($ids, _load_id)", ids)
        con.execute(
            f"UPDATE {MANIFEST} SET status = 'refused', message = $reason WHERE list_contains($ids, load_id)",
            {**ids, "reason": reason},
        )


def _open(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """The warehouse, without DuckDB's own progress bar: it prints to stdout even when not a terminal."""
    con = connect(warehouse)
    con.execute("SET enable_progress_bar = false")
    return con


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.begin()
    try:
        yield
    except BaseException:
        con.rollback()
        raise
    con.commit()


def _sha256(path: Path) -> str:
    """Streamed in chunks: usage exports can be gigabytes."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
