"""The landing gate's native DuckDB engine and the GX engine's bounds (entitlements/quality/gates.py).

The landing suites are judged in DuckDB, without GX and without reading a landed row into Python;
these tests hold that engine to GX's own verdicts on the same rows, to the suite (a check it cannot
make fails, it is never skipped), to bounded memory, and the GX engine of the marts to one context
per process and one mart's rows at a time.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import shutil
import subprocess
import sys
import tracemalloc
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from entitlements.ingest.land import ensure_warehouse, ingest_exports
from entitlements.ingest.layouts import LAYOUTS
from entitlements.quality import gates
from entitlements.quality.gates import GateFailure, build_data_docs, validate_landing, validate_marts
from entitlements.runs.steps import StepError
from entitlements.warehouse import connect
from tests.test_gates import (
    ACCOUNTS_OK,
    COLUMNS,
    DISTINCT_SHARE,
    MANIFEST_FIELDS,
    NOT_EMPTY,
    ROW_COUNT,
    build_marts,
    land,
    query,
    statuses,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]

USAGE_REPEATS = """
    ('EV3', 'C1', 'API_CALLS', 1, timestamp '2024-06-02 10:00', null, null),
    ('EV3', 'C1', 'API_CALLS', 1, timestamp '2024-06-02 10:00', null, null),
    (null, 'C1', 'API_CALLS', 1, timestamp '2024-06-02 10:00', null, null),
    ('EV4', 'C1', 'API_CALLS', 1, timestamp '2024-06-02 11:00', null, null),
    ('EV4', 'C1', 'API_CALLS', 1, timestamp '2024-06-02 11:00', null, null)"""


@pytest.fixture(autouse=True)
def _gx_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep validation results of the tests out of the repository."""
    monkeypatch.setenv(gates.RESULTS_DIR_ENV, str(tmp_path / "gx_results"))


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    """An ingest-shaped warehouse: empty raw tables for every layout, the manifest, schema marts."""
    path = tmp_path / "warehouse.duckdb"
    con = connect(path)
    ensure_warehouse(con)
    con.execute("create schema marts")
    con.close()
    return path


@pytest.fixture
def suites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the committed suites the gate reads instead, for a test to hand-edit."""
    copy = tmp_path / "expectations"
    shutil.copytree(gates.SUITES_DIR, copy)
    monkeypatch.setattr(gates, "SUITES_DIR", copy)
    return copy


def edit_suite(name: str, change: Callable[[list[dict[str, Any]]], None]) -> None:
    """Hand-edit a suite's expectations in the suites the gate reads."""
    path = gates.suite_path(name)
    suite = json.loads(path.read_text())
    change(suite["expectations"])
    path.write_text(json.dumps(suite, indent=2))


def execute(warehouse: Path, *statements: str) -> None:
    con = connect(warehouse)
    try:
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()


def stored_result(load_id: str) -> dict[str, Any]:
    """The one GX validation result kept for a load (every test has its own results directory)."""
    (path,) = Path(os.environ[gates.RESULTS_DIR_ENV]).rglob(f"{load_id}.json")
    return json.loads(path.read_text())


# --------------------------------------------------------------------------- the same verdicts as GX


def _exception_message(info: Any) -> str | None:
    if isinstance(info, dict):
        if info.get("raised_exception"):
            return info.get("exception_message")
        return next((m for v in info.values() if (m := _exception_message(v))), None)
    return None


def gx_verdicts(warehouse: Path, table: str, load_id: str) -> list[tuple[Any, ...]]:
    """What GX itself says of the load's rows (read as a DataFrame, as the gate did before it judged
    them in DuckDB), per expectation in suite order: type, success, result, error message."""
    import great_expectations as gx
    from great_expectations.core import ExpectationSuite

    con = connect(warehouse, read_only=True)
    try:
        frame = con.execute(f"select * from {table} where _load_id = ?", [load_id]).df()
        (count,) = con.execute(
            "select row_count from audit.ingest_manifest where load_id = ?", [load_id]
        ).fetchone()
    finally:
        con.close()
    suite = ExpectationSuite(**json.loads(gates.suite_path(f"landing.{table.split('.')[1]}").read_text()))
    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_pandas("reference")
    batch = (
        source.add_dataframe_asset("load")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    result = batch.validate(suite, expectation_parameters={"manifest_row_count": count}).to_json_dict()
    by_type = {r["expectation_config"]["type"]: r for r in result["results"]}
    return [
        (
            e.configuration.type,
            by_type[e.configuration.type]["success"],
            by_type[e.configuration.type]["result"],
            _exception_message(by_type[e.configuration.type]["exception_info"]),
        )
        for e in suite.expectations
    ]


def native_verdicts(load_id: str) -> list[tuple[Any, ...]]:
    stored = stored_result(load_id)
    return [
        (r["expectation_config"]["type"], r["success"], r["result"], _exception_message(r["exception_info"]))
        for r in stored["results"]
    ]


def _drift(warehouse: Path) -> None:
    execute(
        warehouse,
        "alter table raw.usage_events drop column event_id",
        "alter table raw.usage_events add column region VARCHAR",
    )


def _not_exact(suites_dir: Path) -> None:
    """The column set as a subset (exact_match false): an added column passes, a missing one fails."""

    def change(exps: list[dict[str, Any]]) -> None:
        exps[1]["kwargs"]["exact_match"] = False

    edit_suite("landing.usage_events", change)


def _strict_bounds(suites_dir: Path) -> None:
    """Bounds GX compares strictly: a share of exactly 0.5 is not above a strict 0.5."""

    def change(exps: list[dict[str, Any]]) -> None:
        exps[2]["kwargs"] |= {"max_value": 5, "strict_max": True}
        exps[3]["kwargs"] |= {"strict_min": True, "max_value": 0.9}

    edit_suite("landing.usage_events", change)


SCENARIOS = {
    # name: (table, rows landed, after landing, suite edit)
    "clean": ("crm_accounts", ACCOUNTS_OK, None, None),
    "a row lost": (
        "crm_accounts",
        ACCOUNTS_OK,
        lambda w: execute(w, "delete from raw.crm_accounts where customer_id = 'C2'"),
        None,
    ),
    "repeated and null keys": ("usage_events", USAGE_REPEATS, None, None),
    "an empty file": ("usage_events", None, None, None),
    "every key null": (
        "usage_events",
        "(null, 'C1', 'API_CALLS', 1, timestamp '2024-06-02 10:00', null, null)",
        None,
        None,
    ),
    "a column dropped, one added": ("usage_events", USAGE_REPEATS, _drift, None),
    "columns as a subset, one added": (
        "usage_events",
        USAGE_REPEATS,
        lambda w: execute(w, "alter table raw.usage_events add column region VARCHAR"),
        _not_exact,
    ),
    "columns as a subset, one missing": ("usage_events", USAGE_REPEATS, _drift, _not_exact),
    "strict bounds": ("usage_events", USAGE_REPEATS, None, _strict_bounds),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_native_landing_verdicts_are_gx_s_verdicts_on_the_same_rows(
    warehouse: Path, suites: Path, scenario: str
) -> None:
    table, rows, after, edit = SCENARIOS[scenario]
    land(warehouse, table, "L1", rows)
    if after:
        after(warehouse)
    if edit:
        edit(suites)

    with contextlib.suppress(GateFailure):  # the verdicts are the point here, whichever they are
        validate_landing(warehouse, run_id="run-native")

    assert native_verdicts("L1") == gx_verdicts(warehouse, f"raw.{table}", "L1")


def test_verdicts_for_the_audit_trail_and_data_docs(warehouse: Path) -> None:
    """Row counts, column drift and the distinct-key share, as audit.dq_results and GX hold them."""
    land(warehouse, "crm_accounts", "L-lost", ACCOUNTS_OK)
    execute(warehouse, "delete from raw.crm_accounts where customer_id = 'C3'")
    land(warehouse, "usage_events", "L-repeats", USAGE_REPEATS)

    with pytest.raises(GateFailure) as caught:
        validate_landing(warehouse, run_id="run-v")

    assert query(
        warehouse,
        "select batch, expectation, column_name, success, critical, observed_value, unexpected_sample"
        " from audit.dq_results order by batch desc, expectation",
    ) == [
        ("L-repeats", DISTINCT_SHARE, "event_id", True, False, "0.5", None),  # 2 distinct of 4 non-null
        ("L-repeats", COLUMNS, None, True, True, "all expected columns present", None),
        ("L-repeats", NOT_EMPTY, None, True, False, "5 row(s)", None),
        (
            "L-repeats",
            ROW_COUNT,
            None,
            True,
            True,
            "5 row(s) of load L-repeats in raw.usage_events; audit.ingest_manifest.row_count says 5 landed",
            None,
        ),
        ("L-lost", COLUMNS, None, True, True, "all expected columns present", None),
        ("L-lost", NOT_EMPTY, None, True, False, "2 row(s)", None),
        (
            "L-lost",
            ROW_COUNT,
            None,
            False,
            True,
            "2 row(s) of load L-lost in raw.crm_accounts; audit.ingest_manifest.row_count says 3 landed",
            None,
        ),
    ]
    assert "(manifest_row_count: 3)" in str(caught.value)
    assert statuses(warehouse) == {"L-lost": "landed", "L-repeats": "validated"}

    # Kept as GX's results store keeps a validation result: GX reads it back and writes it unchanged.
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema

    path = next(Path(gates.results_dir(warehouse)).rglob("L-lost.json"))
    assert path.relative_to(gates.results_dir(warehouse)).parts[:3] == ("landing", "crm_accounts", "run-v")
    schema = ExpectationSuiteValidationResultSchema()
    loaded = schema.loads(path.read_text())
    assert schema.dumps(loaded.to_json_dict(), indent=2, sort_keys=True) == path.read_text()
    assert loaded.success is False and loaded.statistics["unsuccessful_expectations"] == 1
    assert loaded.meta["batch_spec"]["data_asset_name"].startswith("raw.crm_accounts, load L-lost, file crm/")
    row_count = loaded.results[0]
    assert row_count.expectation_config.kwargs["value"] == 3  # the parameter's value, as GX records it
    assert row_count.result == {"observed_value": 2}


# --------------------------------------------------------------------------- what the gate cannot judge


def test_an_expectation_the_landing_gate_does_not_compute_fails_critically_never_silently(
    warehouse: Path, suites: Path
) -> None:
    def change(exps: list[dict[str, Any]]) -> None:
        exps.append(
            {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "segment"},
                "meta": {"critical": False},  # a warning in the suite: still the gate cannot judge it
                "severity": "warning",
            }
        )
        exps[2]["kwargs"]["row_condition"] = 'segment == "smb"'  # an argument it does not compute

    edit_suite("landing.crm_accounts", change)
    land(warehouse, "crm_accounts", "L1", ACCOUNTS_OK)

    with pytest.raises(GateFailure) as caught:
        validate_landing(warehouse, run_id="run-edit")

    report = caught.value.report
    assert [(r.expectation, r.success, r.critical) for r in report.results] == [
        (ROW_COUNT, True, True),
        (COLUMNS, True, True),
        (NOT_EMPTY, False, True),
        ("expect_column_values_to_not_be_null", False, True),
    ]
    assert report.results[2].observed_value == (
        "error: not checked: the landing gate does not compute"
        " expect_table_row_count_to_be_between with row_condition"
    )
    unknown = report.results[3]
    assert unknown.column == "segment"
    assert unknown.observed_value.startswith(
        "error: not checked: the landing gate computes only expect_table_row_count_to_equal,"
    )
    assert "--write-suites" in unknown.observed_value
    assert "expect_column_values_to_not_be_null failed on column segment" in str(caught.value)
    assert statuses(warehouse) == {"L1": "landed"}
    assert gates.suite_drift() == ["landing.crm_accounts: differs"]  # and --check-suites says so


def test_a_count_mismatch_on_an_ingested_file_reverts_the_run_s_loads(tmp_path: Path) -> None:
    """A real export through the real ingest; a row lost behind its back; the run's landing step."""
    from entitlements.runs.pipeline import landing_step

    export = tmp_path / "export"
    (export / "crm").mkdir(parents=True)
    (export / "usage").mkdir()
    (export / "crm" / "accounts.csv").write_text(
        "customer_id,customer_name,country,currency,segment,created_date\n"
        "C1,Acme,US,USD,smb,2025-11-15\nC2,Globex,DE,EUR,enterprise,2025-10-01\nC3,Initech,GB,GBP,,2025-09-01\n"
    )
    events = [
        {"event_id": f"evt-{i // 3}", "customer_id": "C1", "meter_code": "API_CALLS", "quantity": 1}
        | {"occurred_at": "2026-08-03T10:00:00Z"}
        for i in range(30)
    ]  # every event delivered three times over
    (export / "usage" / "usage_2026-08.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    warehouse = tmp_path / "warehouse.duckdb"
    files = ingest_exports(warehouse, export, progress=False)
    assert [(f.source_file, f.status, f.rows) for f in files] == [
        ("crm/accounts.csv", "landed", 3),
        ("usage/usage_2026-08.jsonl", "landed", 30),
    ]
    execute(warehouse, "delete from raw.crm_accounts where customer_id = 'C2'")

    with pytest.raises(StepError) as caught:
        landing_step(warehouse, "run-revert")

    message = str(caught.value)
    assert "source file crm/accounts.csv: expect_table_row_count_to_equal failed on the table" in message
    assert "The 2 file(s) awaiting validation were not kept" in message
    failures = query(
        warehouse,
        "select table_name, expectation, critical, observed_value from audit.dq_results where not success"
        " order by critical desc",
    )
    accounts = files[0].load_id
    assert failures == [
        (
            "raw.crm_accounts",
            ROW_COUNT,
            True,
            f"2 row(s) of load {accounts} in raw.crm_accounts; audit.ingest_manifest.row_count says 3 landed",
        ),
        ("raw.usage_events", DISTINCT_SHARE, False, "0.3333333333333333"),  # 10 distinct of 30: a warning
    ]
    assert query(
        warehouse, "select source_file, status, row_count from audit.ingest_manifest order by 1"
    ) == [
        ("crm/accounts.csv", "reverted", 0),
        ("usage/usage_2026-08.jsonl", "reverted", 0),
    ]
    assert query(
        warehouse, "select (select count(*) from raw.crm_accounts), (select count(*) from raw.usage_events)"
    ) == [(0, 0)]


# --------------------------------------------------------------------------- bounded memory, one context


def _land_generated_usage(warehouse: Path, load_id: str, rows: int) -> None:
    """A usage file of `rows` events (3 in 4 distinct) landed by SQL, with its manifest row."""
    execute(
        warehouse,
        "insert into raw.usage_events (event_id, customer_id, meter_code, quantity, occurred_at,"
        f" _load_id, _source_file, _loaded_at) select 'EV-' || (i % {rows * 3 // 4}), 'C' || (i % 60),"
        f" 'API_CALLS', i % 7, timestamp '2024-06-01' + to_seconds(i), '{load_id}', 'usage/{load_id}.jsonl',"
        f" timestamp '2024-06-15 08:00' from range({rows}) t(i)",
        f"insert into audit.ingest_manifest ({MANIFEST_FIELDS}) values ('{load_id}', 'usage/{load_id}.jsonl',"
        f" 'x', 'usage_events', 'sha', {rows}, 'landed', null, timestamp '2024-06-15 08:00')",
    )


def _traced_peak(work: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_landing_gate_reads_no_landed_row_into_python(warehouse: Path) -> None:
    """Python's peak allocation while validating a 200,000-row file stays far below what its rows take
    in Python, and no higher than for a 2,000-row file: the counts are DuckDB's."""
    _land_generated_usage(warehouse, "L-warm", 100)
    _land_generated_usage(warehouse, "L-small", 2_000)
    _land_generated_usage(warehouse, "L-big", 200_000)
    validate_landing(warehouse, ["L-warm"], run_id="warm-up")  # imports and first-use caches

    small = _traced_peak(lambda: validate_landing(warehouse, ["L-small"], run_id="small"))
    big = _traced_peak(lambda: validate_landing(warehouse, ["L-big"], run_id="big"))

    def fetch() -> None:
        con = connect(warehouse, read_only=True)
        try:
            con.execute("select * from raw.usage_events where _load_id = 'L-big'").fetchall()
        finally:
            con.close()

    rows_in_python = _traced_peak(fetch)
    assert big < rows_in_python / 50, (big, rows_in_python)
    assert big < small + 256 * 1024, (big, small)  # flat: does not grow with the file
    assert query(
        warehouse,
        "select observed_value, success from audit.dq_results where batch = 'L-big' order by expectation",
    ) == [
        ("0.75", True),  # 150,000 distinct event ids of 200,000
        ("all expected columns present", True),
        ("200000 row(s)", True),
        (
            "200000 row(s) of load L-big in raw.usage_events;"
            " audit.ingest_manifest.row_count says 200000 landed",
            True,
        ),
    ]


def test_the_landing_gate_does_not_import_great_expectations(warehouse: Path) -> None:
    land(warehouse, "crm_accounts", "L1", ACCOUNTS_OK)
    script = (
        "import json, sys\n"
        "from entitlements.quality.gates import validate_landing\n"
        f"report = validate_landing({str(warehouse)!r}, run_id='run-import')\n"
        "print(json.dumps([len(report.results), 'great_expectations' in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True, timeout=60
    )
    assert json.loads(done.stdout.splitlines()[-1]) == [3, False]
    assert statuses(warehouse) == {"L1": "validated"}
    assert len(stored_result("L1")["results"]) == 3  # its validation result kept all the same


def test_one_gx_context_serves_the_gates_and_the_docs_of_a_process(
    warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import great_expectations as gx

    built: list[object] = []
    get_context = gx.get_context

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(get_context(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(gx, "get_context", counting)
    land(warehouse, "crm_accounts", "L1", ACCOUNTS_OK)
    build_marts(warehouse)

    validate_landing(warehouse, run_id="run-1")
    assert built == []  # the landing gate needs no GX context
    validate_marts(warehouse, run_id="run-1")
    validate_marts(warehouse, run_id="run-2")
    index = build_data_docs(tmp_path / "reports", warehouse)

    assert len(built) == 1
    pages = index.parent / "validations"
    assert len(list((pages / "landing" / "crm_accounts").rglob("L1.html"))) == 1
    assert sorted(p.name for p in (pages / "marts" / "fct_revenue_leakage").iterdir()) == ["run-1", "run-2"]


def test_the_mart_gate_holds_one_mart_s_rows_at_a_time(
    warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each mart is read when its turn comes; the one before it is gone by then (GX's caches too)."""
    build_marts(warehouse)
    frames: list[weakref.ref[Any]] = []
    alive_at_each_read: list[int] = []
    read = gates._read

    def watched(*args: Any) -> Any:
        gc.collect()
        alive_at_each_read.append(sum(ref() is not None for ref in frames))
        frame, types = read(*args)
        frames.append(weakref.ref(frame))
        return frame, types

    monkeypatch.setattr(gates, "_read", watched)
    report = validate_marts(warehouse, run_id="run-one")
    gc.collect()

    assert report.failures == []
    assert len(frames) == len(report.batches) == 10
    assert alive_at_each_read == [0] * 10
    assert not any(ref() is not None for ref in frames)  # nor kept once the gate is done


def test_every_generated_landing_suite_is_one_the_native_engine_judges(warehouse: Path) -> None:
    """A file of each layout (empty: only what the gate computes matters) is judged check by check."""
    for i, layout in enumerate(LAYOUTS):
        land(warehouse, layout.table, f"L{i:02}", None)

    report = validate_landing(warehouse, run_id="run-all")

    assert len(report.batches) == len(LAYOUTS)
    assert [r for r in report.results if (r.observed_value or "").startswith("error")] == []
    assert report.critical_failures == []
    empty = {(r.suite, r.expectation) for r in report.failures}
    assert empty == {(f"landing.{layout.table}", NOT_EMPTY) for layout in LAYOUTS} | {
        ("landing.usage_events", DISTINCT_SHARE)  # GX's share of no value is 0
    }
