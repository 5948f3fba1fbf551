"""Land an export directory's files in the warehouse's raw schema, one transaction per file.

The steps, and why in this order:

1. Discover every file under the export directory and recognise each one's shape (name, format,
   header or keys; entitlements/ingest/exports.py), and read the mapping file
   (entitlements/ingest/mapping.py). Any problem refuses the whole ingest before the warehouse is even opened.
2. For each file, hash it (streaming). A file whose content is already in the warehouse (a load
   'landed' or 'validated' into the same table) is skipped. A file with the same name as a landed
   one but new content is a correction: it replaces that file's rows, in the same transaction.
3. Fast read: DuckDB's own reader feeds the checking query (entitlements/ingest/checks.py) straight into the
   raw table; the first row with a problem aborts it. It only asks whether a row has a problem, not
   which (the exact read says).
4. Exact read, for a file the fast read refused (or a JSON document, or Parquet): records are read
   with their line numbers and raw text, every row is checked, rows with a problem go to
   audit.rejected_rows with file, line, column, reason and raw content, the others land. The file
   is read and checked in chunks of records (one at a time in memory, however long the file), in
   one transaction. If the rejected share exceeds the threshold (default 1 %), or an id is missing
   from the mapping file, the file is refused whole: nothing of it lands, its rejected rows are kept
   for the record, and IngestError says why. Per file, rows in = rows landed + rows rejected.

Files landed before a failing file stay landed (each is its own transaction); the next run skips
them by hash. Timestamps (_loaded_at, loaded_at, rejected_at) are UTC.

raw.<table> holds the rows of current loads only: status landed or validated, not superseded (CURRENT).
dbt's staging models read it and nothing else. Rows move, each move in one transaction with the
manifest change that causes it, so a killed process leaves one state or the other:

- a correction moves the rows of the load(s) it supersedes from raw.<table> to
  raw_superseded.<table> (SUPERSEDED_SCHEMA: same table names and columns, created on demand), in
  its landing transaction;
- revert_load deletes the reverted loads' rows (from raw, or from raw_superseded for a superseded
  one) and moves the rows of the loads they had superseded back to raw, exactly as they were;
- a refused load lands nothing, and a reverted one keeps no rows anywhere.

A warehouse landed before raw_superseded existed (superseded rows kept in raw) is brought to this
layout by ensure_warehouse, once.
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import xxhash
from tqdm import tqdm

from entitlements import audit
from entitlements.config import Config, find_config, load_config, record_config
from entitlements.ingest._sql import quote_ident
from entitlements.ingest.adapters import all_shapes
from entitlements.ingest.checks import UNMAPPED, checked_sql, control_chars_condition, valid_rows_sql
from entitlements.ingest.configured import METER_EVENT_KIND, configured_shapes, meter_rows
from entitlements.ingest.errors import IngestError
from entitlements.ingest.exports import (
    MAPPING_FILE,
    UnrecognisedFile,
    discover_exports,
    ignored_by,
    preflight,
)
from entitlements.ingest.layouts import LAYOUTS
from entitlements.ingest.mapping import Mapping, load_mapping
from entitlements.ingest.plans import FilePlan
from entitlements.ingest.readers import CHUNK, EXACT_CHUNK_ROWS, READ_ERRORS, exact_chunks, fast_source_sql
from entitlements.ingest.shapes import SLASH, SPACE, Lookup
from entitlements.warehouse import connect, memory_limit

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "DEFAULT_MAX_REJECTED_SHARE",
    "SUPERSEDED_SCHEMA",
    "FileResult",
    "IngestError",
    "ensure_warehouse",
    "ingest_exports",
    "revert_load",
]

DEFAULT_MAX_REJECTED_SHARE = 0.01
INGEST_CHECKPOINT_THRESHOLD = "64MB"  # _open
LINEAGE_COLUMNS = (
    ("_load_id", "VARCHAR"),
    ("_source_file", "VARCHAR"),
    ("_loaded_at", "TIMESTAMP"),
    ("_extra", "JSON"),  # source fields the shape does not read: kept, so nothing is lost
)
MANIFEST = audit.table("ingest_manifest")
MANIFEST_COLUMNS = audit.TABLES["ingest_manifest"]
RECORDED = tuple(name for name, _ in MANIFEST_COLUMNS if name != "superseded_by")  # set by a correction
REJECTED = audit.table("rejected_rows")
REJECTED_COLUMNS = audit.TABLES["rejected_rows"]
# Loads whose content counts as in the warehouse: the same file again is skipped.
CURRENT_STATUSES = ("landed", "validated")
CURRENT_STATUS = "list_contains(['landed', 'validated'], status)"  # CURRENT_STATUSES, in SQL
# A current load (a manifest condition): its rows, and only those, are in raw.<table>.
CURRENT = f"{CURRENT_STATUS} AND superseded_by IS NULL"
RAW_SCHEMA = "raw"
# Where a superseded load's rows wait, same table names and columns as raw, until a revert of the
# correction that superseded it moves them back (or forever: they are the file's history).
SUPERSEDED_SCHEMA = "raw_superseded"
_SHOWN_PROBLEMS = 5
EXACT_MEMORY_LIMIT = "128MB"  # DuckDB's, while a file is read exactly (Load.exact)
_BAR = "{desc} {percentage:3.0f}%|{bar}| {elapsed}"


@dataclass(frozen=True)
class FileResult:
    source_file: str  # path relative to the export dir, posix, e.g. "crm/accounts.csv"
    table: str  # raw table name, e.g. "crm_accounts"
    checksum: str
    rows: int  # rows landed (0 when skipped)
    status: str  # "landed" | "skipped" | "ignored" (entitlements.yml ignore: not read)
    load_id: str | None  # None when skipped
    message: str = ""
    shape: str = ""
    rows_in: int = 0
    rows_rejected: int = 0


@dataclass(frozen=True)
class IngestOptions:
    export_dir: Path
    mapping: Mapping
    max_rejected_share: float = DEFAULT_MAX_REJECTED_SHARE
    quarantine_unmapped: bool = False
    chunk_rows: int = EXACT_CHUNK_ROWS
    rehash: bool = False  # checksum every file, even one unchanged by name, size and time (_unchanged)


def ensure_warehouse(con: duckdb.DuckDBPyConnection) -> None:
    """Create schemas raw and audit, every raw table (empty), the manifest and rejected rows; safe to repeat.

    Raw tables exist even before their first file lands, so dbt sources and checks always resolve.
    A column added to a layout (or the audit tables) since the table was created is added to it
    (and to its raw_superseded table, if there is one). A warehouse that kept superseded rows in raw
    (before raw_superseded) has them moved aside, in one transaction.
    """
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
    audit.ensure(con, "ingest_manifest", "rejected_rows")
    tables = [
        (
            f"raw.{quote_ident(layout.table)}",
            [(c.name, c.type) for c in layout.columns] + list(LINEAGE_COLUMNS),
        )
        for layout in LAYOUTS
    ]
    for table, columns in tables:
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({_column_defs(columns)})")
        _add_missing_columns(con, table, columns)
    for layout in LAYOUTS:
        if _table_exists(con, SUPERSEDED_SCHEMA, layout.table):
            _superseded_table(con, layout.table)
    _set_aside_superseded_rows(con)


def _add_missing_columns(
    con: duckdb.DuckDBPyConnection, table: str, columns: Iterable[tuple[str, str]]
) -> None:
    info = f"SELECT name FROM pragma_table_info('{table}')"
    existing = {name for (name,) in con.execute(info).fetchall()}
    for name, type_ in columns:
        if name not in existing:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {quote_ident(name)} {type_}")


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    [(count,)] = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database()"
        " AND schema_name = $schema AND table_name = $table",
        {"schema": schema, "table": table},
    ).fetchall()
    return count > 0


def _superseded_table(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """raw_superseded.<table>, created on demand with raw.<table>'s columns (and any it gained since)."""
    raw, aside = f"{RAW_SCHEMA}.{quote_ident(table)}", f"{SUPERSEDED_SCHEMA}.{quote_ident(table)}"
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SUPERSEDED_SCHEMA}")
    con.execute(f"CREATE TABLE IF NOT EXISTS {aside} AS SELECT * FROM {raw} LIMIT 0")
    columns = con.execute(f"SELECT name, type FROM pragma_table_info('{raw}') ORDER BY cid").fetchall()
    _add_missing_columns(con, aside, columns)
    return aside


def _move_rows(con: duckdb.DuckDBPyConnection, table: str, load_ids: list[str], *, aside: bool) -> None:
    """Move the loads' rows of one table, columns by name: raw to raw_superseded (aside), or back.
    Inside the caller's transaction, with the manifest change that moves them."""
    raw = f"{RAW_SCHEMA}.{quote_ident(table)}"
    if aside:
        source, target = raw, _superseded_table(con, table)
    elif _table_exists(con, SUPERSEDED_SCHEMA, table):
        source, target = f"{SUPERSEDED_SCHEMA}.{quote_ident(table)}", raw
    else:
        return  # nothing was ever set aside from this table
    ids = {"ids": list(load_ids)}
    con.execute(
        f"INSERT INTO {target} BY NAME SELECT * FROM {source} WHERE list_contains($ids, _load_id)", ids
    )
    con.execute(f"DELETE FROM {source} WHERE list_contains($ids, _load_id)", ids)


def _set_aside_superseded_rows(con: duckdb.DuckDBPyConnection) -> None:
    """Once, for a warehouse landed before raw_superseded existed: superseded loads' rows leave raw."""
    if con.execute(
        "SELECT count(*) FROM duckdb_schemas() WHERE database_name = current_database()"
        " AND schema_name = $schema",
        {"schema": SUPERSEDED_SCHEMA},
    ).fetchall()[0][0]:
        return  # this warehouse already sets superseded rows aside as it lands
    superseded = con.execute(
        f"SELECT table_name, list(load_id ORDER BY load_id) FROM {MANIFEST}"
        f" WHERE {CURRENT_STATUS} AND superseded_by IS NOT NULL"
        " GROUP BY ALL ORDER BY 1"
    ).fetchall()
    if not superseded:
        return
    with _transaction(con):
        for table, load_ids in superseded:
            if _table_exists(con, RAW_SCHEMA, table):
                _move_rows(con, table, load_ids, aside=True)


def _column_defs(columns: Iterable[tuple[str, str]]) -> str:
    return ", ".join(f"{quote_ident(name)} {type_}" for name, type_ in columns)


def lookup_kinds() -> frozenset[str]:
    """The kinds a mapping file may hold (the meters' event types come from the configuration)."""
    return frozenset(
        expr.kind for shape in all_shapes() for expr in shape.columns.values() if isinstance(expr, Lookup)
    ) - {METER_EVENT_KIND}


def ingest_exports(
    warehouse: Path,
    export_dir: Path,
    *,
    file_format: str | None = None,
    mapping: Path | None = None,
    max_rejected_share: float = DEFAULT_MAX_REJECTED_SHARE,
    quarantine_unmapped: bool = False,
    encoding: str | None = None,
    config: Config | None = None,
    progress: bool | None = None,
    on_file: Callable[[str], None] | None = None,
    chunk_rows: int = EXACT_CHUNK_ROWS,
    rehash: bool = False,
) -> list[FileResult]:
    """Land every file of an export directory; returns one result per file, in path order.

    Raises IngestError, naming the file (and line and column where there is one): before anything
    lands for an unrecognised file, a missing required column or a bad mapping file; for a file
    refused whole (too many rejected rows, or unmapped ids), after the files before it landed.
    file_format: restrict recognition to one family of shapes (canonical, salesforce, stripe, ...).
    mapping: the mapping file; default mapping.csv at the export's top level, if there is one.
    encoding: the CSV files' encoding, declared; default UTF-8, or latin-1 for a file no line of
    which is valid UTF-8 (readers.file_encoding).
    config: the user's configuration: how vendor fields are read (entitlements/ingest/configured.py); default
    the export's entitlements.yml, if any. A file landed under other reading rules lands again, as
    a correction. Recorded in the warehouse for dbt (not by a legacy export's ingest, which the
    configuration does not describe). Raises ConfigError (entitlements/config.py) for an invalid file.
    progress: a tqdm bar on stderr; None shows it only when stderr is a terminal.
    on_file: called with each file's relative path as its landing starts (not for a file skipped
    unread: the same name, size and modification time as one landed).
    chunk_rows: records per chunk of a file's exact read (what it holds in memory at once).
    rehash: read every file to checksum it; by default a file whose name, size and modification time
    are those of a file whose content is landed is skipped unread (docs/ingest.md).

    Any other error while reading or landing a file (a bug, an exhausted resource) is an
    IngestError naming the file too: a user never gets a traceback for what a file holds.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, not {chunk_rows}")
    export_dir = Path(export_dir).resolve()
    if config is None:
        config = load_config(find_config(export_dir, None))
    files, ignored = discover_exports(export_dir, config.ignore)
    default_mapping = export_dir / MAPPING_FILE
    mapping_path = mapping or (default_mapping if default_mapping.is_file() else None)
    mapping_rows = load_mapping(mapping_path, lookup_kinds())
    mapping_rows = Mapping(mapping_rows.path, mapping_rows.rows + meter_rows(config))
    options = IngestOptions(
        export_dir, mapping_rows, max_rejected_share, quarantine_unmapped, chunk_rows, rehash
    )
    shapes = configured_shapes(config)
    with duckdb.connect() as scratch:  # pre-flight never opens, let alone creates, the warehouse
        plans, refused = [], []
        for file in files:
            try:
                with _refusing_unexpected(file.relative, "read"):
                    plans += preflight(scratch, file, file_format, encoding, shapes)
            except IngestError as exc:  # every file refused is named at once, not one per attempt
                refused.append(exc)
    if refused:
        raise _refused_export(refused)
    results = []
    show = sys.stderr.isatty() if progress is None else progress
    with _open(warehouse) as con:
        ensure_warehouse(con)
        if file_format != "legacy":  # a legacy export (migration) is not what the configuration describes
            record_config(con, config)  # every later dbt command on this warehouse applies it
        options.mapping.install(con)
        for statement in dict.fromkeys(s for plan in plans for s in plan.shape.setup):
            con.execute(statement)
        for number, plan in enumerate(plans, 1):
            with (
                _refusing_unexpected(plan.file.relative, "landed"),
                _file_progress(con, f"{number}/{len(plans)} {plan.file.relative}", show),
            ):
                results.append(_ingest_file(con, plan, options, on_file or (lambda _: None)))
    # Not read, by the user's word: listed, so a file left out is never a file lost unseen.
    results += [
        FileResult(
            relative,
            "",
            "",
            0,
            "ignored",
            None,
            f"entitlements.yml ignore: {ignored_by(relative, config.ignore)}",
        )
        for relative in ignored
    ]
    return results


def _refused_export(refused: list[IngestError]) -> IngestError:
    """The pre-flight's refusals as one error: the first as it is, several listed (a Data Export holds
    every object of an org; a user fixes them all in one go)."""
    first = refused[0]
    if len(refused) == 1:
        return first
    listed = "\n".join(f"  - {exc.short if isinstance(exc, UnrecognisedFile) else exc}" for exc in refused)
    advice = next((f"\n{exc.advice}" for exc in refused if isinstance(exc, UnrecognisedFile)), "")
    return IngestError(
        f"{len(refused)} files of this export cannot be read, so the export was refused and nothing"
        f" was landed:\n{listed}{advice}",
        source_file=first.source_file,
        column=first.column,
        line=first.line,
    )


@contextmanager
def _refusing_unexpected(relative: str, doing: str) -> Iterator[None]:
    """An error no check foresaw becomes a refusal of the file, named, instead of a traceback."""
    try:
        yield
    except IngestError:
        raise
    except Exception as exc:
        detail = (str(exc).strip().splitlines() or [""])[0][:300]
        raise IngestError(
            f"{relative}: the file could not be {doing} ({type(exc).__name__}: {detail})."
            " Nothing from this file was landed. Check that it is a complete export in a format"
            " docs/ingest.md lists; if it is, report this message with the file's shape.",
            source_file=relative,
        ) from exc


@contextmanager
def _file_progress(con: duckdb.DuckDBPyConnection, label: str, show: bool) -> Iterator[None]:
    """A bar per file on stderr, moved by DuckDB's progress of the running statement; nothing when hidden."""
    if not show:
        yield
        return
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")  # DuckDB's own bar would print to stdout
    done = threading.Event()
    with tqdm(total=100, desc=label, unit="%", file=sys.stderr, leave=True, bar_format=_BAR) as bar:

        def poll() -> None:
            while not done.wait(0.25):
                percent = con.query_progress()
                if percent > bar.n:
                    bar.update(percent - bar.n)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        try:
            yield
        finally:
            done.set()
            poller.join()
        bar.update(100 - bar.n)


def _ingest_file(
    con: duckdb.DuckDBPyConnection, plan: FilePlan, options: IngestOptions, on_file: Callable[[str], None]
) -> FileResult:
    if not options.rehash and (previous := _unchanged(con, plan, options.export_dir)):
        load_id, source_file, status, checksum = previous
        known: Future[_Digest] = Future()
        known.set_result(_Digest(checksum, frozenset()))
        return _Load(con, plan, options, known).skip(
            (load_id, source_file, status), "same name, size and modification time as"
        )
    on_file(plan.file.relative)  # a file read, not one known unchanged: a rerun names only what it reads
    # The hash runs beside the load: it only decides anything when the content is already landed,
    # which a file can't be when no current load of its table has its size.
    with ThreadPoolExecutor(max_workers=1) as pool:
        load = _Load(con, plan, options, pool.submit(_digest, plan.file.path))
        if load.same_size_landed() and (previous := load.already_landed()):
            return load.skip(previous)
        fast = fast_source_sql(plan)
        try:
            if fast is not None:
                try:
                    return load.fast(fast)
                except (*_FAST_READ_REFUSED, _ReadExactly):
                    pass  # a row the checks refuse (error()), or a file DuckDB can't parse: read it exactly
            return load.exact()
        except _AlreadyLanded as landed:
            return load.skip(landed.previous)


def _unchanged(
    con: duckdb.DuckDBPyConnection, plan: FilePlan, export_dir: Path
) -> tuple[str, str, str, str] | None:
    """The current load holding this file's content, known without reading the file: when this
    export folder's file of this name, size and modification time was read before (landed, or
    skipped as a re-sent file), as the same shape, and the content it had then is still current.
    Returns (load_id, source_file, status, checksum). As make and rsync do: a rerun of a 100M-event
    export would otherwise read 15 GB to checksum what it landed already. A file rewritten keeps
    neither its time nor, mostly, its size; one given back its old time (touch -d) with new content
    of the same size would be skipped: `--rehash` reads every file again."""
    if plan.file.modified_ns <= 0:
        return None
    rows = con.execute(
        f"SELECT cur.load_id, cur.source_file, cur.status, cur.checksum FROM {MANIFEST} AS seen"
        f" JOIN (SELECT * FROM {MANIFEST} WHERE {CURRENT}) AS cur"
        " ON cur.checksum = seen.checksum AND cur.table_name = seen.table_name AND cur.shape = seen.shape"
        " WHERE seen.source_file = $name AND seen.export_dir = $dir AND seen.size_bytes = $size"
        " AND seen.modified_ns = $mtime AND seen.table_name = $table AND seen.shape = $shape"
        " AND list_contains(['landed', 'validated', 'skipped'], seen.status)"
        " ORDER BY cur.loaded_at LIMIT 1",
        {
            "name": plan.file.relative,
            "dir": str(export_dir),
            "size": plan.file.size,
            "mtime": plan.file.modified_ns,
            "table": plan.layout.table,
            "shape": plan.shape.name,
        },
    ).fetchall()
    return rows[0] if rows else None


# A row the fast read's checks refuse (error()), or a file DuckDB's reader can't parse.
_FAST_READ_REFUSED = (
    duckdb.InvalidInputException,
    duckdb.ConversionException,
    duckdb.IOException,
    duckdb.BinderException,
)


class _AlreadyLanded(Exception):
    def __init__(self, previous: tuple[str, str, str]) -> None:
        self.previous = previous


class _ReadExactly(Exception):
    """The fast read landed a row with a problem its own query did not look for: undo it, read exactly."""


class _NotAbsent(Exception):
    """The fast read left out the tests for characters its file's first MiB lacks, and the file holds
    one (or an escape) further on: undo, read again with them."""


@dataclass(frozen=True)
class _Digest:
    checksum: str
    found: frozenset[bytes]  # which of _LOOKED_FOR the file holds


class _Load:
    """One file's landing: the fast attempt, the exact one, and their manifest rows."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, plan: FilePlan, options: IngestOptions, hashing: Future[_Digest]
    ) -> None:
        self.con, self.plan, self.options, self.hashing = con, plan, options, hashing
        self.layout = plan.layout
        self.load_id = str(uuid.uuid4())
        self.loaded_at = _utc_now()
        self.raw = f"{RAW_SCHEMA}.{quote_ident(self.layout.table)}"

    @property
    def checksum(self) -> str:
        return self.hashing.result().checksum

    def same_size_landed(self) -> bool:
        [(count,)] = self.con.execute(
            f"SELECT count(*) FROM {MANIFEST} WHERE table_name = $table AND size_bytes = $size AND {CURRENT}",
            {"table": self.layout.table, "size": self.plan.file.size},
        ).fetchall()
        return count > 0

    def already_landed(self) -> tuple[str, str, str] | None:
        """The current load of the same content into the same table, if any: a re-sent file."""
        rows = self.con.execute(
            f"SELECT load_id, source_file, status FROM {MANIFEST}"
            f" WHERE checksum = $checksum AND table_name = $table AND shape = $shape AND {CURRENT}"
            " ORDER BY loaded_at LIMIT 1",
            {"checksum": self.checksum, "table": self.layout.table, "shape": self.plan.shape.name},
        ).fetchall()
        return rows[0] if rows else None

    def skip(self, previous: tuple[str, str, str], why: str = "same content as") -> FileResult:
        load_id, source_file, status = previous
        message = f"{why} load {load_id} of {source_file} ({status})"
        self.record(load_id=None, rows=0, status="skipped", message=message)
        return self.result(None, "skipped", 0, 0, 0, message)

    def _insert(self, select: str, chunk: object = None) -> int:
        """Insert the select's rows into raw; the select may read a chunk of the exact read as CHUNK."""
        target = ", ".join(
            quote_ident(n) for n in (*self.layout.column_names, *(n for n, _ in LINEAGE_COLUMNS))
        )
        columns = ", ".join(quote_ident(n) for n in self.layout.column_names)
        return _count(
            _over_chunk(
                self.con,
                f"INSERT INTO {self.raw} ({target})"
                f" SELECT {columns}, $load_id, $source_file, $loaded_at, _extra FROM ({select})",
                {
                    "load_id": self.load_id,
                    "source_file": self.plan.file.relative,
                    "loaded_at": self.loaded_at,
                },
                chunk,
            )
        )

    def fast(self, source_sql: str) -> FileResult:
        """The fast read. For JSON lines (as stored: the digest reads the bytes, not a .gz's content)
        it leaves out what the file's bytes prove, the dearest checks on a usage file. A value can only
        hold a character through the character itself or an escape (a backslash): DuckDB's reader
        refuses a control character written raw, so the ids' control-character check runs on the
        landed rows, and only if the digest finds a backslash or a DEL. And when the file's first MiB
        holds no backslash, and no space (or no '/'), the query leaves out the tests for it (the
        trimming; a timestamp's forms); the load is undone and read again with them if the digest
        finds one further on."""
        file = self.plan.file
        plain_jsonl = file.file_format == "jsonl" and file.path.suffix != ".gz"
        control = control_chars_condition(self.plan.shape) if plain_jsonl else None
        absent = _absent_from_head(file.path) if plain_jsonl else frozenset()
        if absent:
            try:
                return self._fast(source_sql, control, absent)
            except _NotAbsent:
                pass
            except _FAST_READ_REFUSED:
                if not _holds(self.hashing.result(), absent):
                    raise  # a row with a problem, whatever the tests left out
        return self._fast(source_sql, control, frozenset())

    def _fast(self, source_sql: str, control: str | None, absent: frozenset[str]) -> FileResult:
        select = valid_rows_sql(
            self.plan.shape,
            source_sql,
            self.plan.file.relative,
            self.options.mapping.name,
            control_chars=control is None,
            absent=absent,
        )
        # Rows land in no particular order (a table's rows have none): DuckDB then appends from both
        # threads at once instead of restoring the file's order, a third less time on a usage file.
        self.con.execute("SET preserve_insertion_order = false")
        try:
            with _transaction(self.con):
                replaced = self._replace_previous()
                rows = self._insert(select)
                digest = self.hashing.result()
                if absent and _holds(digest, absent):
                    raise _NotAbsent  # rolls the insert back
                if control and digest.found & {b"\\", b"\x7f"} and self._landed_where(control):
                    raise _ReadExactly  # rolls the insert back
                if previous := self.already_landed():
                    raise _AlreadyLanded(previous)  # rolls the insert back
                message = self._message(rows, 0, replaced)
                self.record(load_id=self.load_id, rows=rows, status="landed", message=message, rows_in=rows)
        finally:
            self.con.execute("RESET preserve_insertion_order")
        return self.result(self.load_id, "landed", rows, rows, 0, message)

    def _landed_where(self, condition: str) -> bool:
        [(found,)] = self.con.execute(
            f"SELECT EXISTS (SELECT 1 FROM {self.raw} WHERE _load_id = $load_id AND {condition})",
            {"load_id": self.load_id},
        ).fetchall()
        return bool(found)

    def exact(self) -> FileResult:
        """Every row checked, chunk by chunk, in one transaction: valid rows go to raw and rejected ones
        to audit.rejected_rows as each chunk is checked, so memory stays flat however long the file.
        A refusal, known only at the end, takes this load's rows back out of raw and marks its rejected
        rows refused, in the same transaction."""
        if previous := self.already_landed():
            raise _AlreadyLanded(previous)
        # DuckDB keeps the blocks it writes cached up to its memory limit: bounded here, the exact
        # read's memory is one chunk and this, however long the file. Then the warehouse's limit
        # again (RESET would give DuckDB's default, most of the machine's memory).
        self.con.execute(f"SET memory_limit = '{EXACT_MEMORY_LIMIT}'")
        try:
            return self._exact()
        finally:
            self.con.execute(f"SET memory_limit = '{memory_limit()}'")

    def _exact(self) -> FileResult:
        with _transaction(self.con):
            try:
                rows, rows_in, invalid, unmapped = self._check_chunks()
            except (duckdb.Error, *READ_ERRORS) as exc:
                raise IngestError(
                    f"{self.plan.file.relative}: the file could not be read ({str(exc).splitlines()[0]})."
                    " Nothing from this file was landed: fix or re-export it and run the ingest again.",
                    source_file=self.plan.file.relative,
                ) from exc
            refusal = self._refusal(rows_in, invalid, unmapped)
            if refusal:
                self._refuse()
                self.record(
                    load_id=self.load_id,
                    rows=0,
                    status="refused",
                    message=refusal,
                    rows_in=rows_in,
                    rows_rejected=invalid + unmapped,
                )
                first = self._problems(1)
            else:
                replaced = self._replace_previous()
                message = self._message(rows, invalid + unmapped, replaced)
                self.record(
                    load_id=self.load_id,
                    rows=rows,
                    status="landed",
                    message=message,
                    rows_in=rows_in,
                    rows_rejected=invalid + unmapped,
                )
        self.con.execute("DROP TABLE IF EXISTS _seen")
        if refusal:
            raise IngestError(
                refusal,
                source_file=self.plan.file.relative,
                line=first[0][0] if first else None,
                column=first[0][1] if first else None,
            )
        return self.result(self.load_id, "landed", rows, rows_in, invalid + unmapped, message)

    def _check_chunks(self) -> tuple[int, int, int, int]:
        """Check the file's chunks in order, landing each one's valid rows and recording its rejected
        rows (rejected, or quarantined for an unmapped id, until a refusal says otherwise); returns
        (rows landed, rows in, invalid, unmapped)."""
        seen = None
        if self.layout.unique_key:
            # The keys of the chunks checked so far, each with its first line: a key may repeat in a
            # later chunk. Keys only, not rows: the file's rows are never held together.
            seen = "_seen"
            keys = {c.name: c.type for c in self.layout.columns if c.name in self.layout.primary_key}
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE {seen}"
                f" ({_column_defs([*keys.items(), ('_first_line', 'BIGINT')])})"
            )
        shape, file = self.plan.shape, self.plan.file
        rows = rows_in = invalid = unmapped = 0
        for source_sql, chunk in exact_chunks(self.plan, self.options.chunk_rows):
            checked = checked_sql(shape, source_sql, file.relative, self.options.mapping.name, seen=seen)
            # The chunk's checked rows, computed once for the statements below, held by Python (not a
            # temporary table, which would keep every chunk's rows until the commit).
            rows_checked = _checked_rows(self.con, checked, chunk)
            del chunk
            chunk_in, chunk_invalid, chunk_unmapped = _over_chunk(
                self.con,
                f"SELECT count(*), count(*) FILTER (_reason_kind = 'invalid'),"
                f" count(*) FILTER (_reason_kind = $unmapped) FROM {CHUNK}",
                {"unmapped": UNMAPPED},
                rows_checked,
            ).fetchall()[0]
            rows += self._insert(f"SELECT * FROM {CHUNK} WHERE _reason IS NULL", rows_checked)
            if chunk_invalid or chunk_unmapped:
                self._reject(rows_checked)
            if seen:
                key_cols = ", ".join(quote_ident(k) for k in self.layout.primary_key)
                _over_chunk(
                    self.con,
                    f"INSERT INTO {seen} SELECT {key_cols}, _line FROM {CHUNK} WHERE _new_key",
                    {},
                    rows_checked,
                )
            rows_in, invalid, unmapped = (
                rows_in + chunk_in,
                invalid + chunk_invalid,
                unmapped + chunk_unmapped,
            )
        return rows, rows_in, invalid, unmapped

    def _refuse(self) -> None:
        """Nothing of a refused file lands: its rows leave raw, and its rejected rows (of either kind)
        are recorded as refused. Inside the exact read's transaction."""
        ids = {"load_id": self.load_id}
        self.con.execute(f"DELETE FROM {self.raw} WHERE _load_id = $load_id", ids)
        # Copied, not updated: an update of millions of rows is held in memory until the commit. In the
        # order they were inserted (line order), so without a sort.
        self.con.execute(
            f"INSERT INTO {REJECTED} SELECT * REPLACE ('refused' AS disposition) FROM {REJECTED}"
            " WHERE load_id = $load_id",
            ids,
        )
        self.con.execute(f"DELETE FROM {REJECTED} WHERE load_id = $load_id AND disposition <> 'refused'", ids)

    def _refusal(self, rows_in: int, invalid: int, unmapped: int) -> str | None:
        name = self.plan.file.relative
        if unmapped and not self.options.quarantine_unmapped:
            ids = self.con.execute(
                f"SELECT DISTINCT reason FROM {REJECTED} WHERE load_id = $load_id AND reason_kind = $k"
                " ORDER BY 1 LIMIT 10",
                {"load_id": self.load_id, "k": UNMAPPED},
            ).fetchall()
            return (
                f"{name}: {unmapped} row(s) carry ids the mapping file ({self.options.mapping.name}) lacks,"
                " so the file was refused and nothing of it landed:\n"
                + "".join(f"  - {reason}\n" for (reason,) in ids)
                + self._problem_lines(kinds=(UNMAPPED,))
                + "Add the ids to the mapping file (docs/ingest.md), or pass --quarantine-unmapped to land"
                " the"
                " rest and keep those rows in audit.rejected_rows."
            )
        share = invalid / rows_in if rows_in else 0.0
        if invalid and share > self.options.max_rejected_share:
            return (
                f"{name}: {invalid} of {rows_in} rows ({share:.1%}) have problems, more than the"
                f" {self.options.max_rejected_share:.1%} allowed, so the file was refused whole and"
                " nothing of"
                f" it landed. First problems:\n{self._problem_lines(kinds=('invalid',))}"
                f"Every rejected row is in {REJECTED} (load_id {self.load_id})."
                " Fix the file and run the ingest"
                " again (or raise --max-rejected-share)."
            )
        return None

    def _problems(
        self, limit: int, kinds: tuple[str, ...] | None = None
    ) -> list[tuple[int, str | None, str]]:
        return self.con.execute(
            f"SELECT line, column_name, reason FROM {REJECTED} WHERE load_id = $load_id"
            " AND ($kinds IS NULL OR list_contains($kinds, reason_kind)) ORDER BY line LIMIT $limit",
            {"load_id": self.load_id, "kinds": list(kinds) if kinds else None, "limit": limit},
        ).fetchall()

    def _problem_lines(self, kinds: tuple[str, ...]) -> str:
        return "".join(
            f"  - {self._where(line, column)}: {reason}\n"
            for line, column, reason in self._problems(_SHOWN_PROBLEMS, kinds)
        )

    def _where(self, line: int | None, column: str | None) -> str:
        unit = "record" if self.plan.file.file_format in ("json", "parquet") else "line"
        where = f"{self.plan.file.relative}, {unit} {line}"
        if not column:
            return where
        # Named when the column is read from one or two of the file's (a value derived from many, as a
        # Stripe line's type, names none: the list would say nothing).
        read_from = [c for c in self.plan.file_columns(column) if c != column]
        named = f" (the file's {' and '.join(read_from)})" if 0 < len(read_from) <= 2 else ""
        return where + f", column '{column}'" + named

    def _reject(self, rows_checked: object) -> None:
        """Record a chunk's rejected rows: rejected, or quarantined for an unmapped id."""
        _over_chunk(
            self.con,
            f"INSERT INTO {REJECTED} SELECT $load_id, $source_file, $table, _line, _reason_column, _reason,"
            f" _reason_kind, _raw, CASE _reason_kind WHEN $unmapped THEN 'quarantined' ELSE 'rejected' END,"
            f" $at FROM {CHUNK} WHERE _reason IS NOT NULL ORDER BY _line",
            {
                "load_id": self.load_id,
                "source_file": self.plan.file.relative,
                "table": self.layout.table,
                "unmapped": UNMAPPED,
                "at": self.loaded_at,
            },
            rows_checked,
        )

    def _replace_previous(self) -> list[tuple[str, int]]:
        """A correction: earlier current loads of the same file name are superseded by this one, and
        their rows move from raw to raw_superseded (in the caller's transaction: the landing's)."""
        previous = self.con.execute(
            f"SELECT load_id, row_count FROM {MANIFEST} WHERE source_file = $file AND table_name = $table"
            f" AND {CURRENT} ORDER BY loaded_at",
            {"file": self.plan.file.relative, "table": self.layout.table},
        ).fetchall()
        if previous:
            self.con.execute(
                f"UPDATE {MANIFEST} SET superseded_by = $load_id WHERE list_contains($ids, load_id)",
                {"ids": [load_id for load_id, _ in previous], "load_id": self.load_id},
            )
            _move_rows(self.con, self.layout.table, [load_id for load_id, _ in previous], aside=True)
        return previous

    def _message(self, rows: int, rejected: int, replaced: list[tuple[str, int]]) -> str:
        notes = list(self.plan.notes)
        if self.plan.shape.family != "canonical":
            notes.insert(0, f"read as {self.plan.shape.name}")
        if rejected:
            notes.append(f"{rejected} row(s) rejected, see {REJECTED} (load_id {self.load_id})")
        if replaced:
            notes.append(
                "corrected file: replaces "
                + ", ".join(f"load {load_id} ({count} rows)" for load_id, count in replaced)
            )
        if rows == 0 and not rejected:
            notes.append("no data rows")
        return "; ".join(notes)

    def record(
        self,
        *,
        load_id: str | None,
        rows: int,
        status: str,
        message: str,
        rows_in: int = 0,
        rows_rejected: int = 0,
    ) -> None:
        file = self.plan.file
        self.con.execute(
            f"INSERT INTO {MANIFEST} ({', '.join(RECORDED)}) VALUES ($load_id, $source_file, $export_dir,"
            " $table, $checksum, $rows, $status, $message, $loaded_at, $shape, $rows_in,"
            " $rows_rejected, $size, 0, $modified_ns)",
            {
                "load_id": load_id,
                "source_file": file.relative,
                "export_dir": str(self.options.export_dir),
                "table": self.layout.table,
                "checksum": self.checksum,
                "rows": rows,
                "status": status,
                "message": message,
                "loaded_at": self.loaded_at if load_id else _utc_now(),
                "shape": self.plan.shape.name,
                "rows_in": rows_in,
                "rows_rejected": rows_rejected,
                "size": file.size,
                "modified_ns": file.modified_ns or None,
            },
        )

    def result(
        self, load_id: str | None, status: str, rows: int, rows_in: int, rejected: int, message: str
    ) -> FileResult:
        return FileResult(
            self.plan.file.relative,
            self.layout.table,
            self.checksum,
            rows,
            status,
            load_id,
            message,
            self.plan.shape.name,
            rows_in,
            rejected,
        )


def revert_load(warehouse: Path, load_ids: list[str], reason: str) -> None:
    """Take loads back out of raw and mark them 'reverted' with the reason, in one transaction: their
    landed rows move to rows_reverted, so each load's counts still add up.

    The loads a reverted correction had superseded count again: their rows move from raw_superseded
    back to raw, as they were. A reverted load keeps no rows (neither in raw nor in raw_superseded).
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
            schemas = [RAW_SCHEMA]
            if _table_exists(con, SUPERSEDED_SCHEMA, table):  # where a superseded load's rows are
                schemas.append(SUPERSEDED_SCHEMA)
            for schema in schemas:
                con.execute(
                    f"DELETE FROM {schema}.{quote_ident(table)} WHERE list_contains($ids, _load_id)", ids
                )
        restored = con.execute(
            f"SELECT table_name, list(load_id ORDER BY load_id) FROM {MANIFEST}"
            " WHERE list_contains($ids, superseded_by) AND NOT list_contains($ids, load_id)"
            f" AND {CURRENT_STATUS} GROUP BY ALL ORDER BY 1",
            ids,
        ).fetchall()
        for table, restored_ids in restored:
            _move_rows(con, table, restored_ids, aside=False)
        con.execute(
            f"UPDATE {MANIFEST} SET status = 'reverted', message = $reason,"
            " rows_reverted = coalesce(rows_reverted, 0) + row_count, row_count = 0"
            " WHERE list_contains($ids, load_id)",
            {**ids, "reason": reason},
        )
        # The loads a reverted correction had replaced count again.
        con.execute(
            f"UPDATE {MANIFEST} SET superseded_by = NULL WHERE list_contains($ids, superseded_by)", ids
        )


def _open(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """The warehouse, without DuckDB's own progress bar: it prints to stdout even when not a terminal."""
    con = connect(warehouse)
    con.execute("SET enable_progress_bar = false")
    con.execute("SET TimeZone = 'UTC'")  # timestamps with an offset land as UTC
    # A file under a row group (122,880 rows) commits through the write-ahead log, and at DuckDB's
    # default 16MB threshold it checkpoints every few such files, rewriting the tables' last row
    # groups each time: a sixth of a 1M-event export's ingest (47 files, 2.5 -> 2.1 s). The log
    # stays bounded; larger files are written to the database directly, as before.
    con.execute(f"SET checkpoint_threshold = '{INGEST_CHECKPOINT_THRESHOLD}'")
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


# Bytes the digest looks for: a JSON lines value can only hold a control character through a
# backslash (an escape) or a DEL, and a space or a '/' through itself or an escape.
_LOOKED_FOR = (b"\\", b"\x7f", SPACE.encode(), SLASH.encode())


def _digest(path: Path) -> _Digest:
    """xxh3-128 of the file, streamed: usage exports are gigabytes, and SHA-256 (1.4 s for 10M events
    on two cores, beside the load) would cost a fifth of the ingest. It finds re-sent files; it is
    not a defence against forged ones. On the same pass, which of _LOOKED_FOR the file holds (byte
    searches, at memory speed)."""
    digest = xxhash.xxh3_128()
    found: set[bytes] = set()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
            found.update(b for b in _LOOKED_FOR if b not in found and b in chunk)
    return _Digest(f"xxh3_128:{digest.hexdigest()}", frozenset(found))


def _absent_from_head(path: Path, size: int = 1 << 20) -> frozenset[str]:
    """Which of SPACE and SLASH the file's first `size` bytes lack, if they hold no escape either."""
    with path.open("rb") as fh:
        head = fh.read(size)
    if b"\\" in head:
        return frozenset()
    return frozenset(char for char in (SPACE, SLASH) if char.encode() not in head)


def _holds(digest: _Digest, absent: frozenset[str]) -> bool:
    """Whether the file holds one of the characters, or an escape that could give one."""
    return bool(digest.found & {b"\\", *(char.encode() for char in absent)})


assert CHUNK == "_exact_chunk", "the name _over_chunk's and _checked_rows's parameter has"


def _over_chunk(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object], _exact_chunk: object
) -> duckdb.DuckDBPyConnection:
    """Run sql, which may read a chunk of the exact read by the name readers.CHUNK: DuckDB finds this
    function's parameter of that name (a replacement scan of the calling frame)."""
    return con.execute(sql, params)


def _checked_rows(con: duckdb.DuckDBPyConnection, sql: str, _exact_chunk: object) -> pa.Table:
    """sql's rows as an Arrow table, sql reading the chunk as _over_chunk's does."""
    return con.sql(sql).to_arrow_table()


def _count(cursor: duckdb.DuckDBPyConnection) -> int:
    [(count,)] = cursor.fetchall()
    return count


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
