"""The audit schema: every table the application writes about what it did, declared once.

dbt reads some of them (models/staging/_audit__sources.yml); the steps write them through
`ensure`, which creates a missing table and adds columns a warehouse from an older version lacks,
so no module carries DDL of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the check command starts without the duckdb package (warehouse)
    import duckdb

SCHEMA = "audit"

TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    # One row per file per ingest (entitlements.ingest.land): every file accounted for.
    "ingest_manifest": (
        ("load_id", "VARCHAR"),
        ("source_file", "VARCHAR"),  # relative to export_dir, posix
        ("export_dir", "VARCHAR"),  # absolute
        ("table_name", "VARCHAR"),
        ("checksum", "VARCHAR"),
        ("row_count", "BIGINT"),  # rows landed
        ("status", "VARCHAR"),  # landed | validated | refused | skipped | reverted
        ("message", "VARCHAR"),
        ("loaded_at", "TIMESTAMP"),
        ("shape", "VARCHAR"),
        ("rows_in", "BIGINT"),  # rows read from the file (records; an invoice's lines count one each)
        ("rows_rejected", "BIGINT"),
        ("size_bytes", "BIGINT"),
        # The load of a corrected file (same name, new content) that replaced this one. Its rows move
        # from raw to raw_superseded (out of the marts), so reverting the correction brings them back.
        ("superseded_by", "VARCHAR"),
        # Rows a revert took back out of raw (row_count is then 0): rows_in = row_count + rows_rejected
        # + rows_reverted holds for every load, whatever happened to it.
        ("rows_reverted", "BIGINT"),
        # The file's modification time (ns) when read: a rerun skips a file of the same name, size and
        # time without reading it to checksum it again (entitlements/ingest/land.py, _unchanged).
        ("modified_ns", "BIGINT"),
    ),
    # Every row an ingest refused, with where it was and why.
    "rejected_rows": (
        ("load_id", "VARCHAR"),
        ("source_file", "VARCHAR"),
        ("table_name", "VARCHAR"),
        ("line", "BIGINT"),  # physical line (CSV: where the record starts); JSON document: record number
        ("column_name", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("reason_kind", "VARCHAR"),  # invalid | unmapped
        ("raw_content", "VARCHAR"),
        ("disposition", "VARCHAR"),  # rejected (the rest landed) | quarantined | refused (nothing landed)
        ("rejected_at", "TIMESTAMP"),
    ),
    # One row per check of a gate (GX expectations, the gate's own checks, dbt data tests).
    "dq_results": (
        ("run_id", "VARCHAR"),
        ("step", "VARCHAR"),
        ("suite", "VARCHAR"),
        ("table_name", "VARCHAR"),
        ("batch", "VARCHAR"),
        ("expectation", "VARCHAR"),
        ("column_name", "VARCHAR"),
        ("success", "BOOLEAN"),
        ("critical", "BOOLEAN"),
        ("observed_value", "VARCHAR"),
        ("unexpected_sample", "VARCHAR"),
        ("validated_at", "TIMESTAMP"),  # UTC
    ),
    # One row per step of a run; a build's row is written as it starts (status running), so a build
    # that never finished is seen by every reader (warehouse.require_complete_build).
    "pipeline_runs": (
        ("run_id", "VARCHAR"),
        ("step", "VARCHAR"),
        ("as_of_date", "DATE"),
        ("status", "VARCHAR"),
        ("detail", "VARCHAR"),
        ("finished_at", "TIMESTAMP"),
        ("started_at", "TIMESTAMP"),
    ),
    "migration_runs": (
        ("run_id", "VARCHAR"),
        ("phase", "VARCHAR"),
        ("as_of_date", "DATE"),
        ("legacy_dir", "VARCHAR"),
        ("max_fault_share", "DOUBLE"),
        ("started_at", "TIMESTAMP"),
        ("finished_at", "TIMESTAMP"),
        ("status", "VARCHAR"),
        ("stopped_at_step", "VARCHAR"),
        ("message", "VARCHAR"),
    ),
    "migration_phases": (
        ("phase", "VARCHAR"),
        ("position", "INTEGER"),
        ("description", "VARCHAR"),
        ("rule", "VARCHAR"),
        ("is_remainder", "BOOLEAN"),
        ("accounts", "INTEGER"),
    ),
    "migration_phase_accounts": (("phase", "VARCHAR"), ("customer_id", "VARCHAR")),
    # The migration run being validated, one row, replaced by each run before its models build: the
    # migration models read their phase, run id and date here, so dbt's parse stays the same
    # from run to run (vars would make every run parse the whole project again).
    "migration_current_run": (
        ("run_id", "VARCHAR"),
        ("phase", "VARCHAR"),
        ("is_remainder", "BOOLEAN"),
        ("as_of_date", "DATE"),
    ),
    # What the last successful build read (entitlements.runs.build_plan): its loads, replaced when a
    # build succeeds (the incremental usage models compare them with raw), and one row of its run
    # and fingerprint (as-of date, configuration, dbt project), so a rerun knows what changed;
    # marts_checked_by: the run whose mart checks passed on that build (none yet: null), so a rerun
    # that builds nothing checks the marts again until they have passed once.
    "built_loads": (("load_id", "VARCHAR"), ("table_name", "VARCHAR")),
    "build_state": (
        ("run_id", "VARCHAR"),
        ("fingerprint", "VARCHAR"),
        ("built_at", "TIMESTAMP"),
        ("marts_checked_by", "VARCHAR"),
    ),
    # Written by dbt: the keys an incremental model's last incremental build may have written (its
    # pre-hooks), so that build's primary-key test groups only those rows; a model built in full
    # keeps none (dbt_project/macros/incremental_keys.sql).
    "incremental_keys": (("model_name", "VARCHAR"), ("key_value", "VARCHAR"), ("invocation_id", "VARCHAR")),
    # The configuration each ingest used, when it changed; the last one is what dbt applies.
    "configuration": (
        ("recorded_at", "TIMESTAMP"),
        ("source_file", "VARCHAR"),
        ("fingerprint", "VARCHAR"),
        ("settings", "JSON"),
    ),
    # The analyses, compiled for the warehouse's build (entitlements.serve.queries).
    "compiled_queries": (("name", "VARCHAR PRIMARY KEY"), ("sql", "VARCHAR"), ("compiled_at", "TIMESTAMP")),
}


def table(name: str) -> str:
    """The qualified name of an audit table; a name not declared here is a programming error."""
    if name not in TABLES:
        raise KeyError(f"audit.{name} is not declared in entitlements/audit.py")
    return f"{SCHEMA}.{name}"


def ensure(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Create the audit tables named (and the schema) if missing; add columns an older one lacks."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    for name in names:
        defs = ", ".join(f"{column} {type_}" for column, type_ in TABLES[name])
        con.execute(f"CREATE TABLE IF NOT EXISTS {table(name)} ({defs})")
        present = {
            column
            for (column,) in con.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = ? AND table_name = ?",
                [SCHEMA, name],
            ).fetchall()
        }
        for column, type_ in TABLES[name]:
            if column not in present:
                con.execute(f"ALTER TABLE {table(name)} ADD COLUMN {column} {type_.split()[0]}")
