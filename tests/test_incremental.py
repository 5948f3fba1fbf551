"""Incremental builds (entitlements.runs.build_plan): a rerun with nothing new builds nothing, and
new, corrected or late usage gives every model exactly what a full refresh of the same
warehouse gives.

One warehouse goes through the steps a metering feed produces, in order: a day of new usage
(with an event delivered again), a corrected monthly file (an event gone, a reading changed),
a late event for a month long closed, then nothing new. After each step a copy of it is built
again from scratch (--full-refresh) and every staging, intermediate and mart relation of the two
must hold the same rows. The export is the vendor-shape demo (CloudEvents usage) with one meter
taken at its peak (aggregation: max), so the incremental models' path for meters not summed is
exercised as well as the summed one.
"""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
import yaml

from entitlements.demo import generate_demo
from entitlements.runs.build_plan import BuildPlan
from entitlements.runs.pipeline import PipelineError, build_step, run_pipeline
from entitlements.transform.dbt_runner import target_dir

pytestmark = pytest.mark.e2e

AS_OF = date(2026, 10, 31)
PEAK_METER = "DATA_GB"


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("incremental") / "export"
    generate_demo(out, seed=7, customers=12, usage_events=3000, shape="vendor", as_of=AS_OF)
    config_file = out / "entitlements.yml"
    config = yaml.safe_load(config_file.read_text())
    config["meters"][PEAK_METER]["aggregation"] = "max"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write(path: Path, events: list[dict]) -> None:
    path.write_text("".join(json.dumps(event) + "\n" for event in events))


def _event_id(event: dict) -> str:
    """The warehouse's event id of a CloudEvent: its source and id (the pair is what is unique)."""
    return f"{event['source']}|{event['id']}"


def _run(export: Path, warehouse: Path, lines: list[str] | None = None) -> BuildPlan:
    result = run_pipeline(
        export, warehouse, None, AS_OF, echo=(lines if lines is not None else []).append, progress=False
    )
    assert result.build is not None
    return result.build


def _relations(con: duckdb.DuckDBPyConnection, database: str) -> list[str]:
    rows = con.execute(
        "select schema_name || '.' || table_name from duckdb_tables() where database_name = ?"
        " and schema_name in ('staging', 'intermediate', 'marts')"
        " union all select schema_name || '.' || view_name from duckdb_views() where database_name = ?"
        " and schema_name in ('staging', 'intermediate', 'marts')",
        [database, database],
    ).fetchall()
    return sorted(name for (name,) in rows)


def _differences(incremental: Path, full: Path) -> dict[str, tuple[int, int]]:
    """{relation: (rows only the incremental build has, rows only the full refresh has)}."""
    con = duckdb.connect()
    try:
        con.execute(f"attach '{incremental}' as inc (read_only)")
        con.execute(f"attach '{full}' as ful (read_only)")
        relations = _relations(con, "inc")
        assert relations == _relations(con, "ful")
        differ = {}
        for name in relations:
            only = [
                con.execute(
                    f"select count(*) from (select * from {a}.{name} except all select * from {b}.{name})"
                ).fetchall()[0][0]
                for a, b in (("inc", "ful"), ("ful", "inc"))
            ]
            if any(only):
                differ[name] = (only[0], only[1])
        return differ
    finally:
        con.close()


def _assert_same_as_full_refresh(warehouse: Path, scratch: Path) -> None:
    # Same file name in its own folder: dbt's saved parse is kept per warehouse name.
    full = scratch / uuid.uuid4().hex[:8] / warehouse.name
    full.parent.mkdir(parents=True)
    shutil.copyfile(warehouse, full)
    assert build_step(full, uuid.uuid4().hex[:12], AS_OF, full_refresh=True).mode == "full"
    assert _differences(warehouse, full) == {}
    assert _incremental_keys(full) == {}  # built in full: the key tests grouped every row


def _incremental_keys(warehouse: Path) -> dict[str, int]:
    """{model: keys its last build recorded for its key test} (macros/incremental_keys.sql)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute("select model_name, count(*) from audit.incremental_keys group by 1").fetchall()
        return dict(rows)
    finally:
        con.close()


def _one(warehouse: Path, sql: str, params: list | None = None) -> tuple:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()[0]
    finally:
        con.close()


def test_incremental_builds_give_what_a_full_refresh_gives(export: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "incremental" / "warehouse.duckdb"
    assert _run(export, warehouse).mode == "full"
    (events_before,) = _one(warehouse, "select count(*) from intermediate.int_usage_events_deduplicated")

    # A day of new usage, on the as-of date: 20 new events of both meters, and one event of
    # March 2025 delivered again (later than the first time: the first delivery stays).
    october = _events(export / "usage" / "usage_2026-10.jsonl")
    day = []
    for n, event in enumerate(october[:20]):
        hour = f"2026-10-31T{8 + n % 10:02d}"
        day.append(event | {"id": f"day-{n:03d}", "time": f"{hour}:00:00Z", "recordedtime": f"{hour}:05:00Z"})
    assert {e["type"] for e in day} >= {"com.demo.api_calls", "com.demo.data_gb"}
    again = _events(export / "usage" / "usage_2025-03.jsonl")[0] | {"recordedtime": "2026-10-31T12:00:00Z"}
    _write(export / "usage" / "usage_2026-10-31.jsonl", [*day, again])
    stored = _compiled_queries(warehouse)
    plan = _run(export, warehouse)
    assert (plan.mode, plan.reason) == ("incremental", "1 new and 0 removed load(s) of usage_events")
    # Same project, vars and as-of date: the analyses the full build compiled are kept, not redone.
    assert _compiled_queries(warehouse) == stored and len(stored) >= 4
    (events_after,) = _one(warehouse, "select count(*) from intermediate.int_usage_events_deduplicated")
    assert events_after == events_before + 20
    # The key tests grouped only the event ids the build redid: the new load's 21 (the one
    # delivered again too) and, for the peak meter, every event of each touched customer's meter.
    keys = _incremental_keys(warehouse)
    assert keys["int_usage_events_deduplicated"] == 21
    assert 20 <= keys["int_usage_events_attributed"] < events_after
    _assert_same_as_full_refresh(warehouse, tmp_path)

    # A corrected September file: its first event is gone, and a peak-meter reading is higher.
    september = export / "usage" / "usage_2026-09.jsonl"
    events = _events(september)
    gone = _event_id(events.pop(0))
    changed = next(e for e in events if e["type"] == "com.demo.data_gb")
    changed["data"]["units"] += 5000
    _write(september, events)
    plan = _run(export, warehouse)
    assert (plan.mode, plan.reason) == ("incremental", "1 new and 1 removed load(s) of usage_events")
    assert _one(
        warehouse,
        "select count(*) from intermediate.int_usage_events_deduplicated where event_id = ?",
        [gone],
    ) == (0,)
    (reading,) = _one(
        warehouse,
        "select reading from intermediate.int_usage_events_attributed where event_id = ?",
        [_event_id(changed)],
    )
    assert reading == changed["data"]["units"]
    _assert_same_as_full_refresh(warehouse, tmp_path)

    # A late event: it occurred in May 2025 and arrives now, in a file of its own.
    late = _events(export / "usage" / "usage_2025-05.jsonl")[0] | {
        "id": "late-001",
        "recordedtime": "2026-10-31T13:00:00Z",
    }
    _write(export / "usage" / "late.jsonl", [late])
    assert _run(export, warehouse).mode == "incremental"
    assert _one(
        warehouse,
        "select occurred_on from intermediate.int_usage_events_attributed where event_id = ?",
        [_event_id(late)],
    ) == (date(2025, 5, int(late["time"][8:10])),)
    _assert_same_as_full_refresh(warehouse, tmp_path)

    # Nothing new: no build, and the run says so.
    lines: list[str] = []
    plan = _run(export, warehouse, lines)
    assert plan.mode == "skip"
    assert any(line.startswith("dbt build: skipped, nothing changed since build") for line in lines)

    # A changed configuration changes what every model means: everything is built again.
    config_file = export / "entitlements.yml"
    config = yaml.safe_load(config_file.read_text())
    config["meters"][PEAK_METER]["aggregation"] = "latest"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    plan = _run(export, warehouse)
    assert (plan.mode, plan.reason) == (
        "full",
        "the as-of date, the configuration, the engine or the dbt project changed",
    )
    recompiled = _compiled_queries(warehouse)
    assert recompiled.keys() == stored.keys()
    assert all(recompiled[name][1] > stored[name][1] for name in stored)  # compiled again


def _compiled_queries(warehouse: Path) -> dict[str, tuple[str, datetime]]:
    """audit.compiled_queries: name -> (sql, compiled_at)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute("select name, sql, compiled_at from audit.compiled_queries").fetchall()
    finally:
        con.close()
    return {name: (sql, compiled_at) for name, sql, compiled_at in rows}


def test_an_incremental_builds_key_test_catches_a_duplicate_it_wrote(tmp_path: Path) -> None:
    """The key test of an incremental build groups only the event ids the build redid; a duplicate
    the build writes is among them. The bug planted: a customer's identity twice (a fan-out the
    de-duplication's join would repeat every event of that customer with)."""
    export = tmp_path / "export"
    generate_demo(export, seed=11, customers=10, usage_events=1000, as_of=AS_OF)
    warehouse = tmp_path / "warehouse" / "warehouse.duckdb"
    assert _run(export, warehouse).mode == "full"
    assert _incremental_keys(warehouse) == {}

    # A day of usage: 5 events of one customer, 3 of another; the first one's identity doubled.
    october = _events(export / "usage" / "usage_2026-10.jsonl")
    customers = list(dict.fromkeys(e["customer_id"] for e in october))[:2]
    day = [
        next(e for e in october if e["customer_id"] == customer)
        | {"event_id": f"day-{customer}-{n}", "occurred_at": f"2026-10-31T0{n}:00:00Z"}
        | {"sent_at": f"2026-10-31T0{n}:30:00Z"}
        for customer, count in zip(customers, (5, 3), strict=True)
        for n in range(count)
    ]
    _write(export / "usage" / "usage_2026-10-31.jsonl", day)
    con = duckdb.connect(str(warehouse))
    try:
        (identities,) = con.execute(
            "select count(*) from intermediate.int_customer_identities where source_id = ?", [customers[0]]
        ).fetchall()[0]
        assert identities == 1
        con.execute(
            "insert into intermediate.int_customer_identities"
            " select * from intermediate.int_customer_identities where source_id = ?",
            [customers[0]],
        )
    finally:
        con.close()

    with pytest.raises(PipelineError, match="primary_key_int_usage_events_deduplicated_event_id"):
        _run(export, warehouse)
    results = json.loads((target_dir(warehouse) / "run_results.0.json").read_text())
    assert not results["args"].get("full_refresh")  # built incrementally
    key_test = next(
        r
        for r in results["results"]
        if ".primary_key_int_usage_events_deduplicated_event_id." in r["unique_id"]
    )
    assert (key_test["status"], key_test["failures"]) == ("fail", 5)  # the first customer's 5 events
    assert "incremental_keys" in key_test["compiled_code"]
    assert _incremental_keys(warehouse) == {"int_usage_events_deduplicated": 8}  # the day's events only

    # The failed build makes the next one full (int_customer_identities built again, the planted
    # row gone), and its key tests group every row again.
    assert _run(export, warehouse).mode == "full"
    assert _incremental_keys(warehouse) == {}
