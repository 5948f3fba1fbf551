"""What a build has to do: nothing, apply new usage loads, or build everything again.

A successful build records what it was built from: the loads (audit.built_loads) and a
fingerprint of the as-of date, the configuration's dbt vars, the engine and the dbt project's files
(audit.build_state). The next build compares the warehouse with that record:

- nothing changed: the build is skipped, and the run says so;
- only loads of an append-only source changed (usage: a new file, a corrected one, a late event,
  a reverted load): an incremental build. The incremental usage models redo the events those
  loads touch (dbt_project/macros/incremental_usage.sql), and only the models downstream of
  usage are built again;
- anything else (a CRM or billing load, the configuration, the as-of date, the engine, a change
  to the project, a build that did not finish, or --full-refresh): everything is built again, the
  incremental models from scratch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Literal

import duckdb

from entitlements import audit
from entitlements.warehouse import DBT_PROJECT_DIR, last_build, table_exists

# The raw tables whose loads flow through incremental models (dbt_project/models/intermediate/usage).
INCREMENTAL_TABLES = frozenset({"usage_events"})
# dbt builds these and what depends on them when only INCREMENTAL_TABLES' loads changed.
INCREMENTAL_SELECTION = ("--select", "stg_usage__events+")
# What decides a model's SQL: the project's own files (not target/, logs/ or dbt's packages).
PROJECT_FILES = (
    "dbt_project.yml",
    "profiles.yml",
    "models",
    "macros",
    "seeds",
    "snapshots",
    "analyses",
    "tests",
)

Mode = Literal["skip", "incremental", "full"]


@dataclass(frozen=True)
class BuildPlan:
    mode: Mode
    reason: str  # in words, for the run's output and audit.pipeline_runs
    last_build: str | None = None  # the run id of the build the marts now reflect
    # The run whose mart checks passed on that build's marts (record_marts_checked), if one has.
    marts_checked_by: str | None = None
    # The build's data tests that warned (severity warn), one line each, as the run prints them.
    warnings: tuple[str, ...] = ()


def project_digest() -> str:
    """A hash of the dbt project's files: a change to any of them rebuilds everything."""
    digest = hashlib.sha256()
    for name in PROJECT_FILES:
        path = DBT_PROJECT_DIR / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            digest.update(file.relative_to(DBT_PROJECT_DIR).as_posix().encode())
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def fingerprint(as_of: date, dbt_vars: dict, engine: str = "duckdb") -> str:
    """What, besides the loads, a build's result depends on. The engine too: after a Spark build
    the warehouse's marts are views over Spark's Parquet, which a DuckDB build must replace."""
    key = json.dumps([as_of.isoformat(), dbt_vars, project_digest(), engine], sort_keys=True, default=str)
    return hashlib.sha256(key.encode()).hexdigest()


def current_loads(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """{load id: raw table} of every load whose rows are in raw now (validated, not superseded)."""
    if not table_exists(con, "audit", "ingest_manifest"):
        return {}
    rows = con.execute(
        f"select load_id, table_name from {audit.table('ingest_manifest')}"
        " where status = 'validated' and superseded_by is null and load_id is not null"
    ).fetchall()
    return {load_id: table for load_id, table in rows}


def plan_build(
    con: duckdb.DuckDBPyConnection, build_fingerprint: str, *, full_refresh: bool = False
) -> BuildPlan:
    """Compare the warehouse with its last recorded build (see the module's docstring)."""
    if full_refresh:
        return BuildPlan("full", "full refresh asked for")
    state: list[dict] = []
    if table_exists(con, "audit", "build_state"):  # select *: an older warehouse's lacks marts_checked_by
        cursor = con.execute(f"select * from {audit.table('build_state')}")
        names = [column[0] for column in cursor.description]
        state = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    if not state:
        return BuildPlan("full", "no build recorded")
    run_id, recorded = state[0]["run_id"], state[0]["fingerprint"]
    latest = last_build(con)
    if latest is None or latest[0] != run_id or latest[1] != "ok":
        return BuildPlan("full", "the last build did not finish")
    if recorded != build_fingerprint:
        return BuildPlan(
            "full", "the as-of date, the configuration, the engine or the dbt project changed", run_id
        )
    built = dict(con.execute(f"select load_id, table_name from {audit.table('built_loads')}").fetchall())
    now = current_loads(con)
    changed = {load: table for load, table in (now.items() ^ built.items())}
    if not changed:
        checked = state[0].get("marts_checked_by")
        return BuildPlan("skip", f"nothing changed since build {run_id}", run_id, checked)
    new = sum(load not in built for load in changed)
    gone = sum(load not in now for load in changed)
    what = f"{new} new and {gone} removed load(s)"
    others = sorted(set(changed.values()) - INCREMENTAL_TABLES)
    if others:
        return BuildPlan("full", f"{what}, of {', '.join(others)}", run_id)
    return BuildPlan("incremental", f"{what} of {', '.join(sorted(set(changed.values())))}", run_id)


def record_build(con: duckdb.DuckDBPyConnection, run_id: str, build_fingerprint: str) -> None:
    """What a successful build was built from; in the caller's transaction (the build's closing)."""
    audit.ensure(con, "built_loads", "build_state")
    con.execute(f"delete from {audit.table('built_loads')}")
    loads = sorted(current_loads(con).items())
    if loads:
        con.executemany(
            f"insert into {audit.table('built_loads')} (load_id, table_name) values (?, ?)", loads
        )
    con.execute(f"delete from {audit.table('build_state')}")
    con.execute(
        f"insert into {audit.table('build_state')} (run_id, fingerprint, built_at)"
        " values (?, ?, current_timestamp::timestamp)",
        [run_id, build_fingerprint],
    )


def record_marts_checked(con: duckdb.DuckDBPyConnection, run_id: str | None) -> None:
    """The mart checks of run_id passed (no critical failure) on the marts the last build left;
    None: they failed, so they are not passed (until a run's pass or a new build)."""
    audit.ensure(con, "build_state")  # also adds the column to an older warehouse's table
    con.execute(f"update {audit.table('build_state')} set marts_checked_by = ?", [run_id])
