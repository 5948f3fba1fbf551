"""What a build does (entitlements.runs.build_plan), decided from a warehouse's audit tables.

The audit tables are the real ones (entitlements.audit) in a real DuckDB file; no dbt runs here
(tests/test_incremental.py runs the builds the plans lead to).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from entitlements import audit
from entitlements.runs.build_plan import plan_build, record_build

pytestmark = pytest.mark.unit

FINGERPRINT = "f" * 64


def _load(con: duckdb.DuckDBPyConnection, load_id: str, table: str, **columns: object) -> None:
    values = {"load_id": load_id, "table_name": table, "status": "validated"} | columns
    names = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    con.execute(
        f"insert into {audit.table('ingest_manifest')} ({names}) values ({marks})", list(values.values())
    )


def _build(con: duckdb.DuckDBPyConnection, run_id: str, status: str) -> None:
    con.execute(
        f"insert into {audit.table('pipeline_runs')} (run_id, step, status, started_at)"
        " values (?, 'build', ?, current_timestamp::timestamp)",
        [run_id, status],
    )


@pytest.fixture
def con(tmp_path: Path):
    """A warehouse whose last build (b1, ok) read one CRM load and two usage loads."""
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    audit.ensure(con, "ingest_manifest", "pipeline_runs")
    _load(con, "crm-1", "crm_accounts")
    _load(con, "use-1", "usage_events")
    _load(con, "use-2", "usage_events")
    _build(con, "b1", "ok")
    record_build(con, "b1", FINGERPRINT)
    yield con
    con.close()


def test_a_warehouse_never_built_is_built_whole(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    audit.ensure(con, "ingest_manifest", "pipeline_runs", "built_loads", "build_state")
    plan = plan_build(con, FINGERPRINT)
    assert (plan.mode, plan.reason) == ("full", "no build recorded")


def test_nothing_changed_skips_the_build(con: duckdb.DuckDBPyConnection) -> None:
    plan = plan_build(con, FINGERPRINT)
    assert (plan.mode, plan.reason, plan.last_build) == ("skip", "nothing changed since build b1", "b1")


def test_new_and_superseded_usage_loads_build_incrementally(con: duckdb.DuckDBPyConnection) -> None:
    _load(con, "use-3", "usage_events")
    con.execute(
        f"update {audit.table('ingest_manifest')} set superseded_by = 'use-3' where load_id = 'use-1'"
    )
    plan = plan_build(con, FINGERPRINT)
    assert (plan.mode, plan.reason) == ("incremental", "1 new and 1 removed load(s) of usage_events")


def test_a_reverted_usage_load_builds_incrementally(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"update {audit.table('ingest_manifest')} set status = 'reverted' where load_id = 'use-2'")
    plan = plan_build(con, FINGERPRINT)
    assert (plan.mode, plan.reason) == ("incremental", "0 new and 1 removed load(s) of usage_events")


def test_a_load_not_yet_validated_is_not_built(con: duckdb.DuckDBPyConnection) -> None:
    _load(con, "use-3", "usage_events", status="landed")
    assert plan_build(con, FINGERPRINT).mode == "skip"


def test_a_crm_load_rebuilds_everything(con: duckdb.DuckDBPyConnection) -> None:
    _load(con, "use-3", "usage_events")
    _load(con, "crm-2", "crm_accounts")
    plan = plan_build(con, FINGERPRINT)
    assert (plan.mode, plan.reason) == ("full", "2 new and 0 removed load(s), of crm_accounts")


def test_another_fingerprint_rebuilds_everything(con: duckdb.DuckDBPyConnection) -> None:
    plan = plan_build(con, "0" * 64)
    assert (plan.mode, plan.reason) == (
        "full",
        "the as-of date, the configuration, the engine or the dbt project changed",
    )


@pytest.mark.parametrize("status", ["running", "failed"])
def test_a_build_that_did_not_finish_is_followed_by_a_whole_one(
    con: duckdb.DuckDBPyConnection, status: str
) -> None:
    _build(con, "b2", status)
    assert plan_build(con, FINGERPRINT).mode == "full"


def test_full_refresh_rebuilds_everything(con: duckdb.DuckDBPyConnection) -> None:
    plan = plan_build(con, FINGERPRINT, full_refresh=True)
    assert (plan.mode, plan.reason) == ("full", "full refresh asked for")


def test_a_recorded_build_replaces_the_last_record(con: duckdb.DuckDBPyConnection) -> None:
    _load(con, "use-3", "usage_events")
    _build(con, "b2", "ok")
    record_build(con, "b2", FINGERPRINT)
    assert con.execute(f"select run_id from {audit.table('build_state')}").fetchall() == [("b2",)]
    built = con.execute(f"select load_id from {audit.table('built_loads')} order by load_id").fetchall()
    assert built == [("crm-1",), ("use-1",), ("use-2",), ("use-3",)]
    assert plan_build(con, FINGERPRINT).mode == "skip"
