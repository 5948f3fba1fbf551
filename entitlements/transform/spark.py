"""The raw layer for a dbt build on Apache Spark (the `spark` target, docs/engines.md).

The ingest stays as it is: it checks and lands every file in the DuckDB warehouse (raw.*, the
manifest, rejected rows). Before a Spark build, `export_raw` writes what the dbt sources read as
Parquet, one folder per table and one file per load, in the warehouse's Spark folder
(`<warehouse>.spark/raw/<schema>/<table>/`), writing only the loads not written yet; the dbt
macro `register_spark_sources` (a run-operation before the build) registers each folder as an
external Spark table (`using parquet location ...`). Spark writes the staging, intermediate and
mart tables as Parquet under `<warehouse>.spark/warehouse/<schema>.db/<table>/`, which DuckDB
reads (`attach_spark_tables`), so the readers of the marts run unchanged.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import yaml

from entitlements import audit
from entitlements.ingest._sql import quote_ident, quote_literal
from entitlements.transform.dbt_runner import DbtResult, DbtSession, run_dbt_commands
from entitlements.warehouse import DBT_PROJECT_DIR, connect

SPARK_DIR_ENV = "ENTITLEMENTS_SPARK_DIR"  # profiles.yml's spark target reads it
LOAD_COLUMN = "_load_id"  # the raw tables' load id (entitlements.ingest.land): one file per load
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # Spark skips names starting with _ or .


def spark_dir(warehouse: Path) -> Path:
    """The Spark folder of a warehouse file: beside it, `<name>.spark`."""
    warehouse = Path(warehouse).resolve()
    return warehouse.parent / f"{warehouse.stem}.spark"


def source_tables() -> list[tuple[str, str]]:
    """(schema, table) of every dbt source the project declares, and audit.incremental_keys (the
    incremental models' key tests read it without a source: macros/incremental_keys.sql)."""
    tables = {("audit", "incremental_keys")}
    for path in sorted((DBT_PROJECT_DIR / "models").glob("**/_*__sources.yml")):
        for source in yaml.safe_load(path.read_text()).get("sources", ()):
            schema = source.get("schema", source["name"])
            for table in source.get("tables", ()):
                tables.add((schema, table.get("identifier", table["name"])))
    return sorted(tables)


@dataclass
class ExportedRaw:
    """What export_raw did: the Spark folder, and the Parquet files it wrote and removed."""

    out: Path
    written: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    # Tables ("schema.table") whose files now have other columns than before, or that had none:
    # Spark must register them (again); the others' registration still holds (its files are
    # listed when a query reads them).
    reshaped: list[str] = field(default_factory=list)


def export_raw(warehouse: Path, out: Path | None = None) -> ExportedRaw:
    """Write every table the dbt sources read from the warehouse as Parquet, one folder per table
    (`<out>/raw/<schema>/<table>/`), and say what changed.

    A table with a load id (every raw table) has one file per load, `<load id>.<columns>.parquet`
    (columns: a digest of its column names and types): a load's rows never change once landed
    (a revert or a supersession moves whole loads), so only the loads not yet written are
    written, and the files of loads the table no longer holds, or of an older set of columns,
    removed. A day of usage exports one file; a table with no load yet, an empty file (Spark takes
    a table's columns from its files). Another table (the audit tables) is one file,
    `data.<columns>.parquet`, written again each time (they are small). Each file is written
    under a temporary name and renamed, so a file of the final name is always whole.

    An audit table the warehouse does not have yet (the migration's, before any `migrate`) is
    written empty with its declared columns (entitlements.audit), so every source resolves on
    Spark as it does on DuckDB. Decimals, dates and timestamps keep their types in Parquet.
    """
    out = Path(out) if out is not None else spark_dir(warehouse)
    done = ExportedRaw(out)
    con = connect(warehouse, read_only=True)
    scratch = duckdb.connect()
    try:
        present = set(
            con.execute("select table_schema, table_name from information_schema.tables").fetchall()
        )
        for schema, table in source_tables():
            folder = out / "raw" / schema / table
            if (schema, table) in present:
                digest = _export_table(con, f"{quote_ident(schema)}.{quote_ident(table)}", folder, done)
            elif schema == audit.SCHEMA and table in audit.TABLES:
                audit.ensure(scratch, table)
                digest = _export_table(scratch, audit.table(table), folder, done)
            else:
                raise LookupError(f"{schema}.{table}: a dbt source the warehouse {warehouse} does not have")
            if digest is not None:
                done.reshaped.append(f"{schema}.{table}")
    finally:
        scratch.close()
        con.close()
    return done


def _export_table(
    con: duckdb.DuckDBPyConnection, relation: str, folder: Path, done: ExportedRaw
) -> str | None:
    """Bring a table's folder up to date; its columns' digest when no file had it before, else None."""
    columns = con.execute(f"select column_name, column_type from (describe {relation})").fetchall()
    digest = hashlib.sha256(json.dumps(columns).encode()).hexdigest()[:12]
    wanted: dict[str, str] = {}  # file name -> the query of its rows
    if any(name == LOAD_COLUMN for name, _ in columns):
        for (load_id,) in con.execute(f"select distinct {LOAD_COLUMN} from {relation}").fetchall():
            rows = "is null" if load_id is None else f"= {quote_literal(load_id)}"
            wanted[f"{_file_stem(load_id)}.{digest}.parquet"] = (
                f"select * from {relation} where {LOAD_COLUMN} {rows}"
            )
        if not wanted:  # no load yet: Spark infers a table's columns from a file, so an empty one
            wanted[f"empty.{digest}.parquet"] = f"select * from {relation} limit 0"
        fresh = set()  # a load's file, once written, holds its rows for good
    else:
        wanted[f"data.{digest}.parquet"] = f"select * from {relation}"
        fresh = set(wanted)  # written again every time
    folder.mkdir(parents=True, exist_ok=True)
    before = {path.name.split(".")[-2] for path in folder.glob("*.parquet")}  # <stem>.<digest>.parquet
    for path in sorted(folder.iterdir()):  # other loads, other columns, the last export's audit file
        if path.name not in wanted or path.name in fresh:
            path.unlink() if path.is_file() else shutil.rmtree(path)
            done.removed.append(path)
    for name, query in wanted.items():
        target = folder / name
        if target.exists():
            continue
        partial = folder / f".{name}.partial"  # Spark skips names starting with a dot
        con.execute(f"copy ({query}) to {quote_literal(str(partial))} (format parquet)")
        partial.replace(target)
        done.written.append(target)
    return None if before == {digest} else digest


def _file_stem(load_id: str | None) -> str:
    """A load's file name: its id when that is a plain name (the ingest's are), else a digest of it."""
    if load_id is None:
        return "no-load-id"
    if _SAFE_NAME.match(load_id) and load_id not in ("data", "empty"):
        return load_id
    return "load-" + hashlib.sha256(load_id.encode()).hexdigest()[:16]


def mart_folder(out: Path, schema: str, table: str) -> Path:
    """Where Spark keeps a table the dbt project built (its Parquet files)."""
    return out / "warehouse" / f"{schema}.db" / table


def attach_spark_tables(
    con: duckdb.DuckDBPyConnection, out: Path, schema: str = "marts", *, copy: bool = False
) -> list[str]:
    """Make each table Spark built in `schema` a DuckDB view of the same name over its Parquet
    files (replacing a table or view DuckDB had there), and return their names. copy: a table
    holding its rows instead (the seeds: dbt-duckdb refuses to seed over a view)."""
    folder = out / "warehouse" / f"{schema}.db"
    con.execute(f"create schema if not exists {quote_ident(schema)}")
    kinds = dict(
        con.execute(
            "select table_name, table_type from information_schema.tables where table_schema = ?", [schema]
        ).fetchall()
    )
    names = []
    for table in sorted(path for path in folder.iterdir() if path.is_dir()) if folder.is_dir() else ():
        source = _parquet_source(table)
        if source is None:
            continue
        kind = {"BASE TABLE": "table", "VIEW": "view"}.get(kinds.get(table.name, ""))
        if kind is not None:
            con.execute(f"drop {kind} {quote_ident(schema)}.{quote_ident(table.name)}")
        con.execute(
            f"create {'table' if copy else 'view'} {quote_ident(schema)}.{quote_ident(table.name)}"
            f" as select * from {source}"
        )
        names.append(table.name)
    return names


def _parquet_source(table: Path) -> str | None:
    """DuckDB's read of a table folder Spark wrote: its Parquet files, or for a table partitioned by
    columns (`<column>=<value>/` folders: the migration marts, by phase) every partition's, the
    partition columns read as text (a phase named 2027 stays '2027') and placed last, as in
    Spark's own schema. None: no data file (a partitioned table no partition of which has rows).
    """
    if any(table.glob("*.parquet")):
        files, options = table / "*.parquet", ""
    elif any(table.glob("*=*/**/*.parquet")):
        files, options = table / "**" / "*.parquet", ", hive_partitioning = true, hive_types_autocast = false"
    else:
        return None
    quoted = str(files).replace("'", "''")
    return f"read_parquet('{quoted}'{options})"


# The schemas whose tables Spark builds and DuckDB then reads (staging: its seeds, copied; its models
# are views, which the DuckDB compile after a Spark build makes in the warehouse).
PUBLISHED_SCHEMAS = ("staging", "intermediate", "marts")


def build_on_spark(
    warehouse: Path,
    as_of: date | None,
    build: Sequence[str],
    *,
    dbt_vars: dict | None = None,
    session: DbtSession | None = None,
) -> DbtResult:
    """Build the dbt project on a local Spark from the warehouse's raw layer: export it as Parquet,
    register it (`run-operation register_spark_sources`) and run `build` (a dbt command, e.g.
    ["build", "--exclude", "tag:migration"]) with the `spark` target, in one dbt child. When the
    build succeeds, the warehouse's intermediate and mart relations become views over the Parquet
    tables Spark wrote, so every reader (check, reports, the mart gates) reads the Spark-built
    marts unchanged. The result's run_results are the registration's, then the build's. session: a
    dbt child started ahead (run_dbt_commands uses it when it parsed for the spark target)."""
    reshaped = export_raw(warehouse).reshaped
    register = ["run-operation", "register_spark_sources", "--args", json.dumps({"replace": reshaped})]
    commands = [register, list(build)]
    result = run_dbt_commands(commands, warehouse, as_of, dbt_vars=dbt_vars, session=session, target="spark")
    if result.ok:
        publish_spark_tables(warehouse)
    return result


def publish_spark_tables(warehouse: Path) -> dict[str, list[str]]:
    """Point the warehouse's intermediate and mart relations at the Parquet tables Spark built."""
    out = spark_dir(warehouse)
    con = connect(warehouse)
    try:
        return {
            schema: attach_spark_tables(con, out, schema, copy=schema == "staging")
            for schema in PUBLISHED_SCHEMAS
        }
    finally:
        con.close()
