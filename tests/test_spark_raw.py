"""The raw layer a Spark build reads (entitlements.transform.spark.export_raw, docs/engines.md): one
Parquet file per load, written once, so a day of usage exports one file and a reverted load's
file goes. No Spark here: the files are read back with DuckDB (test_spark builds on them)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from entitlements.ingest.land import ingest_exports, revert_load
from entitlements.transform.spark import export_raw
from tests.conftest import query_rows

pytestmark = pytest.mark.integration

USAGE = "raw/raw/usage_events"


def loads_in_files(folder: Path) -> dict[str, int]:
    """Rows per load id as the Parquet files hold them, and each file named by its load."""
    con = duckdb.connect()
    try:
        rows = con.execute(
            "select _load_id, count(*), list(distinct parse_filename(filename))"
            " from read_parquet(?, filename = true) group by all",
            [str(folder / "*.parquet")],
        ).fetchall()
    finally:
        con.close()
    for load_id, _, files in rows:
        assert len(files) == 1 and files[0].startswith(f"{load_id}."), (load_id, files)
    return {load_id: count for load_id, count, _ in rows}


def loads_in_table(warehouse: Path) -> dict[str, int]:
    return {
        r["_load_id"]: r["n"]
        for r in query_rows(warehouse, "select _load_id, count(*) as n from raw.usage_events group by all")
    }


def test_each_load_is_written_once_and_a_reverted_one_removed(demo_warehouse: Path, tmp_path: Path) -> None:
    warehouse, out = tmp_path / "warehouse.duckdb", tmp_path / "warehouse.spark"
    shutil.copy(demo_warehouse, warehouse)
    first = export_raw(warehouse)
    assert first.out == out
    assert loads_in_files(out / USAGE) == loads_in_table(warehouse)
    assert len(loads_in_table(warehouse)) > 10  # the demo's usage is a file a month

    every_table = sorted((out / "raw").glob("*/*"))
    assert every_table and all(any(folder.glob("*.parquet")) for folder in every_table)  # empty ones too
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        empty = [
            (schema, table)
            for schema, table in con.execute(
                "select schema_name, table_name from duckdb_tables() where schema_name = 'raw'"
            ).fetchall()
            if not con.execute(f'select count(*) from {schema}."{table}"').fetchall()[0][0]
        ]
    finally:
        con.close()
    assert empty, "the demo has an empty raw table (a kind of file it does not export)"
    for schema, table in empty:
        (file,) = (out / "raw" / schema / table).glob("*.parquet")
        assert file.name.startswith("empty."), file
        assert duckdb.sql(f"select count(*) from read_parquet('{file}')").fetchall() == [(0,)]

    again = export_raw(warehouse)  # nothing landed since: no raw file written or removed
    assert not [p for p in again.written + again.removed if "/raw/raw/" in p.as_posix()]
    assert {p.parent.parent.name for p in again.written} == {"audit"}  # the small audit tables, whole

    day = tmp_path / "day" / "usage" / "usage_2099-01-01.jsonl"
    day.parent.mkdir(parents=True)
    events = [
        {"event_id": f"day-{n}", "customer_id": "C00001", "meter_code": "API_CALLS", "quantity": n,
         "occurred_at": "2099-01-01T10:00:00Z", "sent_at": "2099-01-01T10:05:00Z"}
        for n in range(1, 4)
    ]  # fmt: skip
    day.write_text("".join(json.dumps(e) + "\n" for e in events))
    (landed,) = ingest_exports(warehouse, day.parent.parent, progress=False)
    assert landed.status == "landed" and landed.rows == 3
    added = export_raw(warehouse)
    raw_written = [p for p in added.written if "/raw/raw/" in p.as_posix()]
    assert [(p.parent.name, p.name.split(".")[0]) for p in raw_written] == [("usage_events", landed.load_id)]
    assert loads_in_files(out / USAGE) == loads_in_table(warehouse)
    assert loads_in_table(warehouse)[landed.load_id] == 3

    revert_load(warehouse, [landed.load_id], "test: the day is withdrawn")
    reverted = export_raw(warehouse)
    assert [p for p in reverted.written if "/raw/raw/" in p.as_posix()] == []
    assert [p.name.split(".")[0] for p in reverted.removed if "/raw/raw/" in p.as_posix()] == [landed.load_id]
    assert landed.load_id not in loads_in_files(out / USAGE)
    assert loads_in_files(out / USAGE) == loads_in_table(warehouse)


def test_a_table_whose_columns_changed_is_written_again(demo_warehouse: Path, tmp_path: Path) -> None:
    """A file holds the columns its table had when written: when they change (a newer version adds
    one), every file of that table is written again, so Spark reads one schema per folder."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(demo_warehouse, warehouse)
    before = sorted(p.name for p in (export_raw(warehouse).out / USAGE).iterdir())
    con = duckdb.connect(str(warehouse))
    try:
        con.execute("alter table raw.usage_events add column unit varchar")
    finally:
        con.close()
    after = export_raw(warehouse)
    rewritten = sorted(p.name for p in after.written if p.parent.name == "usage_events")
    assert len(rewritten) == len(before)
    assert {p.name for p in after.removed if p.parent.name == "usage_events"} == set(before)
    assert sorted(p.name for p in (after.out / USAGE).iterdir()) == rewritten
    assert loads_in_files(after.out / USAGE) == loads_in_table(warehouse)
