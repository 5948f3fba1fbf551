"""The data-quality gates (entitlements/quality/gates.py) on real DuckDB files built with SQL."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from entitlements.ingest.land import LINEAGE_COLUMNS, ensure_warehouse
from entitlements.ingest.layouts import LAYOUTS, LAYOUTS_BY_TABLE
from entitlements.quality import gates
from entitlements.quality.gates import (
    LANDING,
    MARTS,
    CheckResult,
    GateFailure,
    GateReport,
    build_data_docs,
    committed_suites,
    landing_suites,
    record_dbt_tests,
    validate_landing,
    validate_marts,
)
from entitlements.transform.dbt_child import NODES_FILE
from entitlements.transform.dbt_runner import target_dir
from entitlements.warehouse import DBT_PROJECT_DIR, GX_DIR, connect

MANIFEST_FIELDS = (
    "load_id, source_file, export_dir, table_name, checksum, row_count, status, message, loaded_at"
)

pytestmark = pytest.mark.integration


MARTS_DDL = {
    "fct_active_entitlements": """
        entitlement_id VARCHAR, customer_id VARCHAR, contract_id VARCHAR, contract_line_id VARCHAR,
        package_code VARCHAR, entitlement_code VARCHAR, entitlement_type VARCHAR, unit VARCHAR,
        asset_id VARCHAR, location_id VARCHAR, valid_from DATE, valid_to DATE, period_start DATE,
        period_end DATE, limit_quantity DECIMAL(18,4), used_quantity DECIMAL(18,4),
        remaining_quantity DECIMAL(18,4), as_of_date DATE""",
    "fct_limit_breaches": """
        breach_id VARCHAR, customer_id VARCHAR, entitlement_id VARCHAR, entitlement_code VARCHAR,
        period_start DATE, period_end DATE, limit_quantity DECIMAL(18,4), used_quantity DECIMAL(18,4),
        pct_used DECIMAL(9,2), threshold_crossed INTEGER, overage_quantity DECIMAL(18,4),
        crossed_80_on DATE, crossed_90_on DATE, crossed_100_on DATE, unit VARCHAR,
        overage_value DECIMAL(18,2), currency VARCHAR""",
    "fct_upsell_candidates": """
        upsell_id VARCHAR, customer_id VARCHAR, entitlement_code VARCHAR, unit VARCHAR,
        periods_assessed INTEGER, periods_over_90 INTEGER, last_period_start DATE,
        peak_period_use DECIMAL(18,4), current_package_code VARCHAR, current_limit_quantity DECIMAL(18,4),
        recommended_package_code VARCHAR, recommended_limit_quantity DECIMAL(18,4), covers_peak_use BOOLEAN,
        current_annual_fee DECIMAL(18,2), recommended_annual_fee DECIMAL(18,2),
        annual_fee_difference DECIMAL(18,2), currency VARCHAR""",
    "fct_underused_entitlements": """
        underused_id VARCHAR, customer_id VARCHAR, contract_id VARCHAR, contract_line_id VARCHAR,
        entitlement_code VARCHAR, unit VARCHAR, periods_assessed INTEGER, first_period_start DATE,
        last_period_end DATE, limit_quantity DECIMAL(18,4), used_quantity DECIMAL(18,4),
        pct_used DECIMAL(9,2), is_in_force BOOLEAN""",
    "fct_leakage_kpis": """
        kpi_id VARCHAR, period_month DATE, currency VARCHAR, billed_revenue DECIMAL(18,2),
        leaked_unbilled_service DECIMAL(18,2), leaked_uncovered_service DECIMAL(18,2),
        leaked_over_allowance_service DECIMAL(18,2), leaked_premium_service_on_standard DECIMAL(18,2),
        leaked_unbilled_overage DECIMAL(18,2), leaked_under_billed DECIMAL(18,2),
        leaked_post_expiry_usage DECIMAL(18,2), leaked_unapproved_override DECIMAL(18,2),
        leaked_total DECIMAL(18,2), leak_count BIGINT, leakage_share DECIMAL(18,6),
        recoverable_value DECIMAL(18,2), billable_records BIGINT, misaligned_records BIGINT,
        misaligned_share DECIMAL(18,6), reporting_currency VARCHAR, fx_rate DECIMAL(18,8),
        is_fx_rate_missing BOOLEAN, billed_revenue_reporting DECIMAL(18,2),
        leaked_total_reporting DECIMAL(18,2), recoverable_value_reporting DECIMAL(18,2)""",
    "fct_revenue_leakage": """
        leakage_id VARCHAR, customer_id VARCHAR, category VARCHAR, evidence_type VARCHAR,
        evidence_id VARCHAR, occurred_on DATE, amount DECIMAL(18,2), currency VARCHAR,
        entitlement_code VARCHAR, contract_id VARCHAR, explanation VARCHAR""",
    "fct_renewal_pipeline": """
        contract_id VARCHAR, customer_id VARCHAR, contract_type VARCHAR, start_date DATE, end_date DATE,
        days_to_expiry INTEGER, renewal_window VARCHAR, annual_value DECIMAL(18,2), currency VARCHAR,
        auto_renew BOOLEAN, value_at_risk DECIMAL(18,2), previous_contract_id VARCHAR,
        previous_currency VARCHAR, previous_annual_value DECIMAL(18,2), uplift_amount DECIMAL(18,2),
        uplift_pct DECIMAL(18,2), uplift_null_reason VARCHAR, renewed_by_contract_id VARCHAR,
        as_of_date DATE""",
    "fct_renewal_alerts": """
        alert_id VARCHAR, contract_id VARCHAR, customer_id VARCHAR, contract_type VARCHAR,
        start_date DATE, end_date DATE, days_before_expiry INTEGER, alert_date DATE, is_due BOOLEAN,
        alert_status VARCHAR, renewal_window VARCHAR, annual_value DECIMAL(18,2),
        value_at_risk DECIMAL(18,2), currency VARCHAR, auto_renew BOOLEAN, as_of_date DATE""",
    "dim_customer_identities": """
        used_in VARCHAR, source_id VARCHAR, customer_id VARCHAR, resolved_by VARCHAR, record_count BIGINT,
        first_seen_on DATE, last_seen_on DATE""",
    "fct_unresolved_customer_ids": """
        used_in VARCHAR, source_id VARCHAR, record_count BIGINT, first_seen_on DATE, last_seen_on DATE""",
}

CLEAN_MARTS = {
    "fct_active_entitlements": """
        ('E1', 'C1', 'K1', 'KL1', 'PKG-GOLD', 'ONSITE', 'service', 'visit', 'A1', 'L1',
         date '2024-01-01', date '2025-01-01', date '2024-06-01', date '2024-06-30', 10, 4, 6,
         date '2024-06-15'),
        ('E2', 'C1', 'K1', 'KL1', 'PKG-GOLD', 'API', 'product', 'call', null, null,
         date '2024-01-01', date '2025-01-01', date '2024-06-01', date '2024-06-30', null, 900, null,
         date '2024-06-15')""",
    "fct_limit_breaches": """
        ('B1', 'C1', 'E1', 'ONSITE', date '2024-06-01', date '2024-06-30', 10, 9, 90.00, 90, 0,
         date '2024-06-10', date '2024-06-20', null, 'visits', 0.00, 'USD'),
        ('B2', 'C2', 'E3', 'ONSITE', date '2024-06-01', date '2024-06-30', 10, 12, 120.00, 100, 2,
         date '2024-06-05', date '2024-06-08', date '2024-06-09', 'visits', 1800.00, 'EUR')""",
    "fct_upsell_candidates": """
        ('C1:INCIDENT', 'C1', 'INCIDENT', 'incidents', 3, 2, date '2024-01-01', 6, 'SILVER', 5, 'GOLD', 12,
         true, 9600.00, 24000.00, 14400.00, 'USD'),
        ('C2:INCIDENT', 'C2', 'INCIDENT', 'incidents', 2, 2, date '2024-01-01', 13, 'GOLD', 12, null, null,
         null, 21600.00, null, null, 'EUR')""",
    "fct_underused_entitlements": """
        ('KL1/API_CALLS', 'C1', 'K1', 'KL1', 'API_CALLS', 'calls', 3, date '2024-03-01', date '2024-06-01',
         300000, 1200, 0.40, true)""",
    "fct_leakage_kpis": """
        ('2024-06:USD', date '2024-06-01', 'USD', 10000.00, 150.00, 0, 0, 0, 0, 0, 0, 0, 150.00, 1,
         0.015, 150.00, 20, 1, 0.05, 'USD', 1, false, 10000.00, 150.00, 150.00),
        ('2024-06:EUR', date '2024-06-01', 'EUR', 2000.00, 0, 0, 0, 0, 20.00, 0, 0, 0, 20.00, 1,
         0.01, 0.00, 5, 1, 0.2, 'USD', 1.08, false, 2160.00, 21.60, 0.00)""",
    "fct_revenue_leakage": """
        ('LK1', 'C1', 'unbilled_service', 'case', 'CS-1', date '2024-06-03', 150.00, 'USD', 'ONSITE', 'K1',
         'Case CS-1 was billed as covered but the contract has no onsite visits left'),
        ('LK2', 'C2', 'unbilled_overage', 'usage', 'U-2024-06', date '2024-06-30', 20.00, 'EUR', 'API', 'K2',
         '2 visits over the allowance were not invoiced')""",
    "fct_renewal_pipeline": """
        ('K1', 'C1', 'service_contract', date '2024-01-01', date '2025-01-01', 200, 'later', 12000.00,
         'USD', true, 0.00, null, null, null, null, null, 'no_previous_term', null, date '2024-06-15'),
        ('K2', 'C2', 'subscription', date '2023-07-01', date '2024-07-01', 16, '0-30', 0.00, 'EUR', false,
         0.00, 'K0', 'EUR', 0.00, 0.00, null, 'previous_value_zero', null, date '2024-06-15')""",
    "fct_renewal_alerts": """
        ('K1:90d', 'K1', 'C1', 'service_contract', date '2024-01-01', date '2025-01-01', 90,
         date '2024-10-03', false, 'upcoming', 'later', 12000.00, 0.00, 'USD', true, date '2024-06-15'),
        ('K2:30d', 'K2', 'C2', 'subscription', date '2023-07-01', date '2024-07-01', 30,
         date '2024-06-01', true, 'due', '0-30', 0.00, 0.00, 'EUR', false, date '2024-06-15')""",
    "dim_customer_identities": """
        ('usage_events', 'cus_1', 'C1', 'billing_customer', 12, date '2024-06-01', date '2024-06-30'),
        ('usage_events', 'cus_Unknown', null, 'unresolved', 3, date '2024-06-01', date '2024-06-30')""",
    "fct_unresolved_customer_ids": """
        ('usage_events', 'cus_Unknown', 12, date '2024-06-01', date '2024-06-30')""",
}


@pytest.fixture(autouse=True)
def _gx_results(tmp_path, monkeypatch):
    """Keep GX validation results of the tests out of the repository."""
    monkeypatch.setenv(gates.RESULTS_DIR_ENV, str(tmp_path / "gx_results"))


@pytest.fixture
def warehouse(tmp_path) -> Path:
    """An ingest-shaped warehouse: empty raw tables for every layout and the manifest."""
    path = tmp_path / "warehouse.duckdb"
    con = connect(path)
    ensure_warehouse(con)
    con.execute("create schema marts")
    con.close()
    return path


def source_file_of(table: str, load_id: str) -> str:
    layout = LAYOUTS_BY_TABLE[table]
    return f"{layout.pattern.split('*')[0]}_{load_id}.{layout.file_format}"


def insert_raw(warehouse: Path, table: str, load_id: str, values: str, schema: str = "raw") -> None:
    """Rows (SQL VALUES in layout column order) written straight into a raw table, as the ingest
    would, but without a word to the manifest."""
    columns = ", ".join(f'"{c}"' for c in LAYOUTS_BY_TABLE[table].column_names)
    con = connect(warehouse)
    con.execute(
        f"insert into {schema}.{table} ({columns}, _load_id, _source_file, _loaded_at)"
        f" select *, ?, ?, timestamp '2024-06-15 08:00' from (values {values})",
        [load_id, source_file_of(table, load_id)],
    )
    con.close()


def land(warehouse: Path, table: str, load_id: str, values: str | None) -> str:
    """Land one 'file' of rows (None: a file without rows) as the ingest does: its rows in raw and
    its manifest row with their count. Returns its source file."""
    if values is not None:
        insert_raw(warehouse, table, load_id, values)
    source_file = source_file_of(table, load_id)
    con = connect(warehouse)
    count = con.execute(f"select count(*) from raw.{table} where _load_id = ?", [load_id]).fetchone()[0]
    con.execute(
        f"insert into audit.ingest_manifest ({MANIFEST_FIELDS}) values"
        " (?, ?, 'exports/2024-06-15', ?, 'sha', ?, 'landed', null, timestamp '2024-06-15 08:00')",
        [load_id, source_file, table, count],
    )
    con.close()
    return source_file


def build_marts(warehouse: Path, overrides: dict[str, str] | None = None) -> None:
    con = connect(warehouse)
    for table, ddl in MARTS_DDL.items():
        con.execute(f"create or replace table marts.{table} ({ddl})")
        values = (overrides or {}).get(table, CLEAN_MARTS[table])
        con.execute(f"insert into marts.{table} values {values}")
    con.close()


def query(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = connect(warehouse, read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def statuses(warehouse: Path) -> dict[str, str]:
    return dict(query(warehouse, "select load_id, status from audit.ingest_manifest"))


def only(results: list[CheckResult], expectation: str, column: str | None = None) -> CheckResult:
    found = [r for r in results if r.expectation == expectation and (column is None or r.column == column)]
    assert len(found) == 1, found
    return found[0]


ACCOUNTS_OK = """
    ('C1', 'Acme', 'US', 'USD', 'enterprise', date '2020-01-01'),
    ('C2', 'Globex', 'DE', 'EUR', null, date '2021-05-01'),
    ('C3', 'Initech', 'GB', 'GBP', 'smb', date '2022-03-01')"""

CONTRACT_LINES_OK = """
    ('KL1', 1, 'K1', 'PKG-GOLD', 'A1', null, 1, 1200.00, date '2024-01-01', date '2024-12-31', 'granted'),
    ('KL1', 2, 'K1', 'PKG-GOLD', 'A1', null, 2, 2400.00, date '2024-03-01', date '2024-12-31', 'amended'),
    ('KL2', 1, 'K1', 'PKG-SILVER', null, 'L1', 1, 600.00, date '2024-01-01', date '2024-01-01', null)"""

ROW_COUNT = "expect_table_row_count_to_equal"
COLUMNS = "expect_table_columns_to_match_set"
NOT_EMPTY = "expect_table_row_count_to_be_between"
DISTINCT_SHARE = "expect_column_proportion_of_unique_values_to_be_between"

# What the ingest's row checks own: a landing suite never checks it again.
ROW_LEVEL = {
    "expect_column_to_exist",
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_unique",
    "expect_compound_columns_to_be_unique",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_be_between",
    "expect_column_pair_values_a_to_be_greater_than_b",
}


# --------------------------------------------------------------------------- landing


def test_clean_landing_batches_pass_and_are_validated(warehouse):
    land(warehouse, "crm_accounts", "L1", ACCOUNTS_OK)
    land(warehouse, "crm_contract_lines", "L2", CONTRACT_LINES_OK)

    report = validate_landing(warehouse, run_id="run-1")

    assert isinstance(report, GateReport)
    assert report.step == LANDING
    assert report.batches == ["L1", "L2"]
    assert report.failures == []
    assert {r.suite for r in report.results} == {"landing.crm_accounts", "landing.crm_contract_lines"}
    suite = committed_suites(LANDING)["landing.crm_accounts"]
    assert [(r.expectation, r.critical) for r in report.results if r.batch == "L1"] == [
        (e["type"], e["meta"]["critical"]) for e in suite["expectations"]
    ]  # one result per expectation, in suite order (the parameterised one included)
    assert [r.expectation for r in report.results if r.batch == "L1"] == [ROW_COUNT, COLUMNS, NOT_EMPTY]
    counted = only([r for r in report.results if r.batch == "L2"], ROW_COUNT)
    assert counted.critical and counted.column is None
    assert counted.observed_value == (
        "3 row(s) of load L2 in raw.crm_contract_lines; audit.ingest_manifest.row_count says 3 landed"
    )
    assert counted.description.endswith("(manifest_row_count: 3)")
    assert only([r for r in report.results if r.batch == "L1"], COLUMNS).observed_value == (
        "all expected columns present"
    )
    assert statuses(warehouse) == {"L1": "validated", "L2": "validated"}
    rows = query(warehouse, "select run_id, step, success, count(*) from audit.dq_results group by all")
    assert rows == [("run-1", "landing", True, len(report.results))]
    assert "0 failed (0 critical)" in report.summary()

    # Nothing left 'landed': a second run over the default selection has nothing to do,
    # and neither has a run given no loads (every file of an export skipped as already loaded).
    assert validate_landing(warehouse, run_id="run-2").results == []
    assert validate_landing(warehouse, [], run_id="run-3").results == []
    assert query(warehouse, "select count(distinct run_id) from audit.dq_results") == [(1,)]


@pytest.mark.parametrize(
    ("change", "in_raw"),
    [
        pytest.param(
            "insert", 4, id="a row added behind the ingest's back"
        ),  # the extra row is valid: no row check would see it
        pytest.param("delete", 2, id="a row lost"),
    ],
)
def test_a_load_whose_rows_differ_from_its_manifest_count_fails_critically(warehouse, change, in_raw):
    source = land(warehouse, "crm_accounts", "L-count", ACCOUNTS_OK)
    land(warehouse, "crm_contract_lines", "L-ok", CONTRACT_LINES_OK)
    if change == "insert":
        insert_raw(
            warehouse, "crm_accounts", "L-count", "('C4', 'Hooli', 'US', 'USD', null, date '2023-01-01')"
        )
    else:
        con = connect(warehouse)
        con.execute("delete from raw.crm_accounts where _load_id = 'L-count' and customer_id = 'C3'")
        con.close()

    with pytest.raises(GateFailure) as caught:
        validate_landing(warehouse, run_id="run-count")

    report = caught.value.report
    failure = only(report.critical_failures, ROW_COUNT)
    assert len(report.critical_failures) == 1 and report.failures == report.critical_failures
    assert (failure.suite, failure.table, failure.batch, failure.column) == (
        "landing.crm_accounts",
        "raw.crm_accounts",
        "L-count",
        None,
    )
    assert failure.observed_value == (
        f"{in_raw} row(s) of load L-count in raw.crm_accounts; audit.ingest_manifest.row_count says 3 landed"
    )
    assert failure.unexpected_sample is None  # a table-level check: no rows to quote
    message = str(caught.value)
    for part in (
        "landing gate failed (run run-count): 1 critical expectation(s) failed",
        "suite landing.crm_accounts, table raw.crm_accounts, batch L-count",
        f"source file {source}",
        f"{ROW_COUNT} failed on the table",
        "(manifest_row_count: 3)",
        f"observed: {in_raw} row(s) of load L-count",
        "row_count says 3 landed",
    ):
        assert part in message, (part, message)
    assert str(pickle.loads(pickle.dumps(caught.value))) == message
    assert caught.value.source_files == {
        "L-count": source,
        "L-ok": source_file_of("crm_contract_lines", "L-ok"),
    }

    stored = query(
        warehouse,
        "select suite, table_name, batch, expectation, column_name, critical, observed_value"
        " from audit.dq_results where not success",
    )
    assert stored == [
        ("landing.crm_accounts", "raw.crm_accounts", "L-count", ROW_COUNT, None, True, failure.observed_value)
    ]
    # The failing file stays 'landed'; the clean one in the same run is validated.
    assert statuses(warehouse) == {"L-count": "landed", "L-ok": "validated"}


def test_structural_drift_and_an_unknown_load(warehouse):
    con = connect(warehouse)
    con.execute("alter table raw.crm_locations drop column customer_id")
    con.execute("alter table raw.crm_locations add column region VARCHAR")
    con.execute(
        "insert into raw.crm_locations (location_id, location_name, country, _load_id, _source_file)"
        " values ('LOC1', 'HQ', 'US', 'L-loc', 'crm/locations.csv')"
    )
    con.execute(
        f"insert into audit.ingest_manifest ({MANIFEST_FIELDS})"
        " values ('L-loc', 'crm/locations.csv', 'x', 'crm_locations', 'sha', 1, 'landed', null, now())"
    )
    con.close()

    with pytest.raises(ValueError, match="L-nope"):
        validate_landing(warehouse, ["L-loc", "L-nope"], run_id="run-x")

    with pytest.raises(GateFailure) as caught:
        validate_landing(warehouse, ["L-loc"], run_id="run-x")
    drift = only(caught.value.report.critical_failures, COLUMNS)
    assert drift.column == "customer_id,region"
    assert drift.observed_value == "missing columns: customer_id; unexpected columns: region"
    assert only(caught.value.report.results, ROW_COUNT).success  # 1 row, as the manifest says
    assert "column customer_id,region" in str(caught.value)
    assert statuses(warehouse) == {"L-loc": "landed"}


def test_volume_warnings_do_not_stop_the_gate(warehouse):
    land(warehouse, "crm_accounts", "L-empty", None)  # a file that landed no row
    # At-least-once delivery: one repeat is normal (no warning), a file of repeats is not.
    land(
        warehouse,
        "usage_events",
        "L-usage",
        """('EV1', 'C1', 'API_CALLS', 10, timestamp '2024-06-01 10:00', null, null),
           ('EV1', 'C1', 'API_CALLS', 10, timestamp '2024-06-01 10:00', timestamp '2024-06-01 10:05', null),
           ('EV2', 'C1', 'API_CALLS', 5, timestamp '2024-06-01 11:00', null, null)""",
    )
    land(
        warehouse,
        "usage_events",
        "L-twice",
        """('EV3', 'C1', 'API_CALLS', 1, timestamp '2024-06-02 10:00', null, null),
           ('EV3', 'C1', 'API_CALLS', 1, timestamp '2024-06-02 10:00', null, null),
           ('EV3', 'C1', 'API_CALLS', 1, timestamp '2024-06-02 10:00', null, null),
           ('EV4', 'C1', 'API_CALLS', 1, timestamp '2024-06-02 11:00', null, null),
           ('EV4', 'C1', 'API_CALLS', 1, timestamp '2024-06-02 11:00', null, null)""",
    )

    report = validate_landing(warehouse, run_id="run-warn")

    assert report.critical_failures == []
    assert sorted((r.batch, r.expectation, r.column, r.observed_value) for r in report.failures) == [
        ("L-empty", NOT_EMPTY, None, "0 row(s)"),
        ("L-twice", DISTINCT_SHARE, "event_id", "0.4"),
    ]
    assert only([r for r in report.results if r.batch == "L-empty"], ROW_COUNT).success  # 0 = 0
    assert not any(r.expectation in ROW_LEVEL for r in report.results)  # the ingest owns those
    summary = report.summary()
    assert "2 failed (0 critical)" in summary
    assert f"[warning] landing.crm_accounts batch L-empty: {NOT_EMPTY} (0 row(s))" in summary
    assert statuses(warehouse) == {"L-empty": "validated", "L-usage": "validated", "L-twice": "validated"}
    assert query(
        warehouse, "select batch, critical from audit.dq_results where not success order by batch"
    ) == [("L-empty", False), ("L-twice", False)]


def test_a_superseded_load_is_counted_where_its_rows_wait(warehouse):
    """A corrected file's earlier load has its rows in raw_superseded (entitlements/ingest/land.py)."""
    land(warehouse, "crm_accounts", "L-old", ACCOUNTS_OK)
    con = connect(warehouse)
    con.execute("create schema raw_superseded")
    con.execute("create table raw_superseded.crm_accounts as select * from raw.crm_accounts limit 0")
    con.execute("insert into raw_superseded.crm_accounts select * from raw.crm_accounts")
    con.execute("delete from raw.crm_accounts")
    con.execute("update audit.ingest_manifest set superseded_by = 'L-new' where load_id = 'L-old'")
    con.close()
    land(warehouse, "crm_accounts", "L-new", "('C1', 'Acme Inc', 'US', 'USD', null, date '2020-01-01')")

    assert validate_landing(warehouse, run_id="run-current").batches == ["L-new"]  # current loads only
    report = validate_landing(warehouse, ["L-old"], run_id="run-old")
    assert report.failures == []
    assert {r.table for r in report.results} == {"raw_superseded.crm_accounts"}
    assert only(report.results, ROW_COUNT).observed_value.startswith(
        "3 row(s) of load L-old in raw_superseded.crm_accounts"
    )


# --------------------------------------------------------------------------- marts


def test_clean_marts_pass(warehouse, caplog):
    build_marts(warehouse)
    con = connect(warehouse)
    con.execute("create table marts.fct_allowance_periods (allowance_period_id VARCHAR)")  # no suite
    con.close()

    with caplog.at_level("INFO", logger=gates.__name__):
        report = validate_marts(warehouse, run_id="run-m")

    assert report.step == MARTS
    assert report.batches == [f"marts.{t}" for t in sorted(MARTS_DDL)]
    assert report.failures == []
    assert query(warehouse, "select count(*) from audit.dq_results where step = 'marts'") == [
        (len(report.results),)
    ]
    # A mart without a suite (its dbt tests own it all) is logged, not validated, not a failure.
    assert "marts without a suite (not validated): fct_allowance_periods" in caplog.text


def test_mart_invariants_quote_sample_rows_and_leave_dbt_s_rules_to_dbt(warehouse):
    build_marts(
        warehouse,
        {
            "fct_revenue_leakage": CLEAN_MARTS["fct_revenue_leakage"]
            + """, ('LK3', 'C3', 'under_billed', 'invoice_line', 'IL-9', date '2024-06-10', 40.00, 'gbp',
                   null, 'K3', 'Invoice line IL-9 billed below the price book'),
                   ('LK4', 'C3', 'under_billed', 'invoice_line', 'IL-10', date '2024-06-10', -5.00, 'GBP',
                   null, 'K3', null)"""
        },
    )
    with pytest.raises(GateFailure) as caught:
        validate_marts(warehouse, run_id="run-cur")

    failure = only(caught.value.report.critical_failures, "expect_column_values_to_match_regex", "currency")
    assert (failure.suite, failure.table, failure.batch) == ("marts.fct_revenue_leakage",) * 3
    assert json.loads(failure.unexpected_sample) == [{"leakage_id": "LK3", "currency": "gbp"}]
    assert failure.observed_value == "1 of 4 row(s) unexpected"
    # LK4's negative amount and missing explanation are dbt's to catch (positive, not_null), in the build.
    assert len(caught.value.report.critical_failures) == 1
    assert not any(r.column in ("amount", "explanation") for r in caught.value.report.results)
    message = str(caught.value)
    assert "suite marts.fct_revenue_leakage, table marts.fct_revenue_leakage" in message
    assert "column currency" in message and '"leakage_id": "LK3"' in message
    assert str(pickle.loads(pickle.dumps(caught.value))) == message
    assert query(
        warehouse,
        "select column_name, critical from audit.dq_results where step = 'marts' and not success",
    ) == [("currency", True)]


def test_a_compound_key_names_every_key_column(warehouse):
    build_marts(
        warehouse,
        {
            "fct_renewal_alerts": CLEAN_MARTS["fct_renewal_alerts"]
            + """, ('K1:90d-again', 'K1', 'C1', 'service_contract', date '2024-01-01', date '2025-01-01',
                   90, date '2024-10-03', false, 'upcoming', 'later', 12000.00, 0.00, 'USD', true,
                   date '2024-06-15')"""
        },
    )
    with pytest.raises(GateFailure) as caught:
        validate_marts(warehouse, run_id="run-cdup")

    failure = only(caught.value.report.critical_failures, "expect_compound_columns_to_be_unique")
    assert failure.column == "contract_id,days_before_expiry"
    assert json.loads(failure.unexpected_sample) == [
        {"alert_id": "K1:90d", "contract_id": "K1", "days_before_expiry": 90},
        {"alert_id": "K1:90d-again", "contract_id": "K1", "days_before_expiry": 90},
    ]
    assert "column contract_id,days_before_expiry" in str(caught.value)


def test_mart_warnings_and_missing_mart(warehouse):
    build_marts(
        warehouse,
        {
            "fct_limit_breaches": """
                ('B1', 'C1', 'E1', 'ONSITE', date '2024-06-01', date '2024-06-30', 10, 5, 50.00, 80, 0,
                 date '2024-06-10', null, null, 'visits', 0.00, 'USD'),
                ('B2', 'C1', 'E2', 'ONSITE', date '2024-06-01', date '2024-06-30', 10, 9, 90.00, 90, 0,
                 date '2024-06-10', date '2024-06-08', null, 'visits', 0.00, 'USD')"""
        },
    )
    con = connect(warehouse)
    con.execute("drop table marts.fct_renewal_pipeline")
    con.close()

    with pytest.raises(GateFailure) as caught:
        validate_marts(warehouse, run_id="run-w")
    report = caught.value.report
    assert sorted((r.expectation, r.column, r.critical) for r in report.failures) == [
        ("expect_column_pair_values_a_to_be_greater_than_b", "crossed_90_on,crossed_80_on", True),
        ("expect_column_values_to_be_between", "pct_used", False),
        ("expect_table_to_exist", None, True),
    ]
    order = only(report.failures, "expect_column_pair_values_a_to_be_greater_than_b")
    assert json.loads(order.unexpected_sample) == [
        {"breach_id": "B2", "crossed_90_on": "2024-06-08", "crossed_80_on": "2024-06-10"}
    ]
    assert only(report.failures, "expect_column_values_to_be_between").observed_value == (
        "1 of 2 row(s) unexpected"
    )
    missing = only(report.results, "expect_table_to_exist")
    assert missing.table == "marts.fct_renewal_pipeline"
    message = str(caught.value)
    assert "2 critical expectation(s) failed" in message
    assert "(1 non-critical failure(s) recorded too; see audit.dq_results)" in message
    assert "[warning] marts.fct_limit_breaches: expect_column_values_to_be_between on pct_used" in (
        report.summary()
    )
    assert query(
        warehouse,
        "select expectation, critical from audit.dq_results where not success order by 1",
    ) == [
        ("expect_column_pair_values_a_to_be_greater_than_b", True),
        ("expect_column_values_to_be_between", False),
        ("expect_table_to_exist", True),
    ]


# --------------------------------------------------------------------------- docs and suites


def test_data_docs_show_suites_and_results(warehouse, tmp_path):
    before = sorted(p.relative_to(GX_DIR) for p in GX_DIR.rglob("*") if "uncommitted" not in p.parts)
    land(warehouse, "crm_accounts", "L1", ACCOUNTS_OK)
    validate_landing(warehouse, run_id="run-docs")
    build_marts(warehouse)
    validate_marts(warehouse, run_id="run-docs")

    index = build_data_docs(tmp_path / "reports", warehouse)

    assert index == (tmp_path / "reports" / "data_docs" / "index.html").resolve()
    html = index.read_text()
    assert "landing.crm_accounts" in html and "marts.fct_revenue_leakage" in html
    site = index.parent
    assert (site / "expectations" / "landing" / "crm_accounts.html").exists()
    pages = list((site / "validations" / "marts" / "fct_revenue_leakage").rglob("*.html"))
    assert len(pages) == 1 and "run-docs" in str(pages[0])
    (landing_page,) = (site / "validations" / "landing" / "crm_accounts").rglob("*.html")
    assert "manifest_row_count: 3" in landing_page.read_text()  # the count the load was held to
    assert list((tmp_path / "gx_results").rglob("L1.json"))  # results kept outside the repo
    after = sorted(p.relative_to(GX_DIR) for p in GX_DIR.rglob("*") if "uncommitted" not in p.parts)
    assert after == before  # validating and rendering wrote nothing into the committed context


def test_only_the_newest_runs_are_kept_for_the_docs(warehouse, tmp_path, monkeypatch):
    monkeypatch.setattr(gates, "KEEP_RUNS", 2)
    build_marts(warehouse)
    validate_marts(warehouse, run_id="run-a")
    index = build_data_docs(tmp_path / "reports", warehouse)
    site = index.parent / "validations" / "marts" / "fct_revenue_leakage"
    assert [p.name for p in site.iterdir()] == ["run-a"]
    for run in ("run-b", "run-c"):
        validate_marts(warehouse, run_id=run)
    kept = tmp_path / "gx_results" / "marts" / "fct_revenue_leakage"
    assert sorted(p.name for p in kept.iterdir()) == ["run-b", "run-c"]
    assert query(warehouse, "select count(distinct run_id) from audit.dq_results") == [(3,)]
    build_data_docs(tmp_path / "reports", warehouse)  # drops the page of the pruned run, renders the new ones
    assert sorted(p.name for p in site.iterdir()) == ["run-b", "run-c"]


def test_committed_landing_suites_equal_the_generated_ones():
    assert gates.suite_drift() == []
    assert gates.main(["--check-suites"]) == 0
    assert committed_suites(LANDING) == landing_suites()
    assert set(landing_suites()) == {f"landing.{layout.table}" for layout in LAYOUTS}


def test_landing_suites_hold_only_what_no_row_check_sees():
    for layout in LAYOUTS:
        suite = landing_suites()[f"landing.{layout.table}"]
        exps = {e["type"]: e for e in suite["expectations"]}
        assert not ROW_LEVEL & exps.keys(), layout.table  # the ingest's row checks own those
        assert exps[ROW_COUNT]["kwargs"] == {"value": {"$PARAMETER": gates.MANIFEST_ROW_COUNT}}
        assert exps[ROW_COUNT]["meta"]["critical"] and exps[COLUMNS]["meta"]["critical"]
        assert exps[COLUMNS]["kwargs"]["column_set"] == [
            *layout.column_names,
            *(name for name, _ in LINEAGE_COLUMNS),
        ]
        assert not exps[NOT_EMPTY]["meta"]["critical"]
        assert (DISTINCT_SHARE in exps) == (layout.table == "usage_events"), layout.table


def test_every_committed_suite_loads_and_flags_criticality():
    from great_expectations.core import ExpectationSuite

    suites = {**committed_suites(LANDING), **committed_suites(MARTS)}
    assert set(committed_suites(MARTS)) == {f"marts.{t}" for t in MARTS_DDL}
    for name, suite in suites.items():
        assert gates.suite_path(name).exists()
        assert (
            suite["meta"]["table"] == f"{'raw' if name.startswith(LANDING) else 'marts'}.{name.split('.')[1]}"
        )
        assert suite["meta"]["key_columns"]
        loaded = ExpectationSuite(**suite)
        assert len(loaded.expectations) == len(suite["expectations"]) > 0
        for exp in suite["expectations"]:
            assert isinstance(exp["meta"]["critical"], bool), (name, exp)
            assert exp["severity"] == ("critical" if exp["meta"]["critical"] else "warning")
            if exp["type"] in {"expect_column_to_exist", "expect_table_columns_to_match_set"}:
                assert exp["meta"]["critical"], (name, exp)  # structural checks are critical


def _dbt_owned(models_yml: Path) -> dict[str, set[tuple[str, str | None]]]:
    """Per model of a _<area>__models.yml: the (GX expectation, column) its dbt tests and enforced
    contract already hold."""
    from ruamel.yaml import YAML

    same = {
        "not_null": "expect_column_values_to_not_be_null",
        "unique": "expect_column_values_to_be_unique",
        "accepted_values": "expect_column_values_to_be_in_set",
        "non_negative": "expect_column_values_to_be_between",
        "positive": "expect_column_values_to_be_between",
    }
    owned: dict[str, set[tuple[str, str | None]]] = {}
    for model in YAML(typ="safe").load(models_yml.read_text()).get("models", []):
        held = owned.setdefault(model["name"], set())
        if (model.get("config") or {}).get("contract", {}).get("enforced"):
            held.add(("expect_table_columns_to_match_set", None))
        for test in model.get("data_tests") or []:
            if isinstance(test, dict) and "unique_combination" in test:
                columns = test["unique_combination"]["arguments"]["columns"]
                held.add(("expect_compound_columns_to_be_unique", ",".join(columns)))
            if isinstance(test, dict) and "column_rules" in test:  # not_null, non_negative, positive
                for rule, columns in test["column_rules"]["arguments"].items():
                    held |= {(same[rule], column) for column in columns}
        for column in model.get("columns") or []:
            names = [t if isinstance(t, str) else next(iter(t)) for t in column.get("data_tests") or []]
            names += [c["type"] for c in column.get("constraints") or []]
            held |= {(same[n], column["name"]) for n in names if n in same}
    return owned


def test_mart_suites_leave_to_dbt_what_its_tests_cover():
    """One owner per rule: no mart expectation repeats a dbt test (or enforced contract) of the same
    model and column. Expectations with a row_condition, or ranges dbt's tests do not express, are
    GX's own."""
    owned: dict[str, set[tuple[str, str | None]]] = {}
    for models_yml in sorted((DBT_PROJECT_DIR / "models" / "marts").glob("*/_*__models.yml")):
        owned |= _dbt_owned(models_yml)
    for name, suite in committed_suites(MARTS).items():
        held = owned.get(name.split(".", 1)[1], set())
        for exp in suite["expectations"]:
            kwargs = exp["kwargs"]
            if kwargs.get("row_condition"):
                continue
            if exp["type"] == "expect_column_values_to_be_between" and (
                kwargs.get("min_value") != 0 or kwargs.get("max_value") is not None
            ):
                continue  # a range of its own (dbt's tests say >= 0 or > 0 only)
            column = kwargs.get("column") or ",".join(kwargs.get("column_list") or []) or None
            assert (exp["type"], column) not in held, (name, exp["type"], column)


def test_each_warehouse_keeps_its_own_results_beside_it(warehouse, tmp_path, monkeypatch):
    monkeypatch.delenv(gates.RESULTS_DIR_ENV)
    build_marts(warehouse)
    validate_marts(warehouse, run_id="run-here")
    kept = tmp_path / "gx" / "warehouse" / "validations" / "marts" / "fct_revenue_leakage"
    assert [p.name for p in kept.iterdir()] == ["run-here"]
    other = tmp_path / "other" / "warehouse.duckdb"
    other.parent.mkdir()
    shutil.copy(warehouse, other)
    validate_marts(other, run_id="run-there")
    index = build_data_docs(tmp_path / "reports", warehouse)
    pages = index.parent / "validations" / "marts" / "fct_revenue_leakage"
    assert [p.name for p in pages.iterdir()] == ["run-here"]  # not the other warehouse's run


# --------------------------------------------------------------------------- dbt's tests


@pytest.mark.e2e
@pytest.mark.xdist_group("canonical_run")  # conftest.canonical_run: one worker builds it
def test_dbt_test_results_are_recorded_in_dq_results(
    canonical_run: tuple[Path, Path], tmp_path: Path
) -> None:
    # The run's dbt target folder, and a copy of its warehouse to record into (the run is shared).
    target = target_dir(canonical_run[1])
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(canonical_run[1], warehouse)
    manifest = target / NODES_FILE
    # The runner keeps each command's run_results as run_results.<n>.json: the run's build is the
    # first (0), the analyses' compile the last (1, what DbtResult.results holds).
    build = json.loads((target / "run_results.0.json").read_text())["results"]
    nodes = json.loads(manifest.read_text())["nodes"]
    data_tests = [r for r in build if r["unique_id"].startswith("test.")]
    # A column_rules test is recorded as one row per rule and column it lists, any other test as one.
    rules = {
        r["unique_id"]: [
            (rule, column)
            for rule in ("not_null", "non_negative", "positive")
            for column in nodes[r["unique_id"]]["test_metadata"]["kwargs"].get(rule, [])
        ]
        for r in data_tests
        if nodes[r["unique_id"]].get("test_metadata", {}).get("name") == "column_rules"
    }
    checks = len(data_tests) - len(rules) + sum(len(pairs) for pairs in rules.values())
    assert len(rules) > 20 and checks > len(data_tests) > 50

    report = record_dbt_tests(warehouse, "dbt-run", build, manifest)

    assert report.step == "build" and len(report.results) == checks
    assert report.failures == []  # the build passed
    rows = query(
        warehouse,
        "select step, suite, table_name, batch, expectation, column_name, success, critical, observed_value,"
        " unexpected_sample from audit.dq_results where run_id = 'dbt-run'",
    )
    assert len(rows) == checks
    assert {(r[0], r[1]) for r in rows} == {("build", "dbt")}
    by_name = {r[4]: r for r in rows}
    assert len(by_name) == checks  # one name per check, as when each was a test of its own
    assert by_name["positive_fct_revenue_leakage_amount"] == (
        "build",
        "dbt",
        "marts.fct_revenue_leakage",
        "marts.fct_revenue_leakage",
        "positive_fct_revenue_leakage_amount",
        "amount",
        True,
        True,
        "0 failing row(s)",
        None,
    )
    assert by_name["not_null_fct_leakage_kpis_fx_rate"][5:8] == ("fx_rate", True, False)  # severity warn
    assert by_name["non_negative_fct_leakage_kpis_leaked_total"][2:8] == (
        "marts.fct_leakage_kpis",
        "marts.fct_leakage_kpis",
        "non_negative_fct_leakage_kpis_leaked_total",
        "leaked_total",
        True,
        True,
    )
    combination = next(r for r in rows if r[4].startswith("unique_combination_fct_revenue_leakage"))
    assert combination[2] == "marts.fct_revenue_leakage" and combination[5] is None
    tables = {r[2] for r in rows}
    assert {"marts.fct_leakage_kpis", "marts.fct_limit_breaches", "marts.fct_renewal_alerts"} <= tables
    assert any(t.startswith("intermediate.int_") for t in tables)
    # A singular test names the models it reads.
    reconciles = by_name["assert_fct_leakage_kpis_reconciles_with_fct_revenue_leakage"]
    assert set(reconciles[2].split(", ")) == {"marts.fct_leakage_kpis", "marts.fct_revenue_leakage"}

    # Failed, warned and errored tests, as a failing build reports them (same nodes, other outcomes).
    # The column_rules failures are real: the copy gets two negative amounts and a null fx_rate,
    # which record_dbt_tests finds by running those tests' compiled queries again.
    con = connect(warehouse)
    con.execute(
        "update marts.fct_revenue_leakage set amount = -amount where leakage_id in"
        " (select leakage_id from marts.fct_revenue_leakage order by leakage_id limit 2)"
    )
    con.execute(
        "update marts.fct_leakage_kpis set fx_rate = null"
        " where kpi_id = (select min(kpi_id) from marts.fct_leakage_kpis)"
    )
    con.close()
    outcomes = {
        "column_rules_fct_revenue_leakage": ("fail", 1, "Got 1 result, configured to fail if != 0"),
        "column_rules_fct_leakage_kpis_warn": ("warn", 1, "Got 1 result, configured to warn if != 0"),
        "primary_key_fct_revenue_leakage_leakage_id": ("error", None, "Binder Error: column not found"),
        # An error names no column: each of the test's rules and columns failed with it.
        "column_rules_fct_renewal_alerts": ("error", None, "Binder Error: column not found"),
        # A failure the data no longer shows cannot say which column: each fails, saying why.
        "column_rules_fct_underused_entitlements": ("fail", 1, "Got 1 result, configured to fail if != 0"),
    }
    bad = []
    for result in build:
        outcome = outcomes.get(nodes.get(result["unique_id"], {}).get("name", ""))
        if outcome:
            result = {**result, "status": outcome[0], "failures": outcome[1], "message": outcome[2]}
        bad.append(result)
    report = record_dbt_tests(warehouse, "dbt-bad", bad, manifest)
    failures = {r.expectation: (r.success, r.critical, r.observed_value) for r in report.failures}
    assert failures.pop("not_null_fct_leakage_kpis_fx_rate") == (False, False, "1 failing row(s)")
    assert failures.pop("positive_fct_revenue_leakage_amount") == (False, True, "2 failing row(s)")
    assert failures.pop("primary_key_fct_revenue_leakage_leakage_id") == (
        False,
        True,
        "error: Binder Error: column not found",
    )
    alerts = [name for name in failures if "_fct_renewal_alerts_" in name]
    assert "not_null_fct_renewal_alerts_is_due" in alerts and len(alerts) == 5
    for name in alerts:
        assert failures.pop(name) == (False, True, "error: Binder Error: column not found")
    underused = [name for name in failures if "_fct_underused_entitlements_" in name]
    assert len(underused) == 4
    for name in underused:
        success, critical, observed = failures.pop(name)
        assert (success, critical) == (False, True)
        assert observed.endswith(
            "running it again found no failing column: the warehouse changed since dbt ran"
        )
    assert failures == {}
    # The same test's other rules and columns passed.
    recorded = {r.expectation: r for r in report.results}
    assert recorded["not_null_fct_revenue_leakage_amount"].success
    assert recorded["not_null_fct_revenue_leakage_explanation"].success
    assert len(report.critical_failures) == 1 + 1 + 5 + 4  # recorded, not raised: dbt's exit status judges
    assert query(
        warehouse, "select count(*) from audit.dq_results where run_id = 'dbt-bad' and not success"
    ) == [(2 + 1 + 5 + 4,)]

    # The results may be given as the run_results file itself.
    assert (
        len(record_dbt_tests(warehouse, "dbt-file", target / "run_results.0.json", manifest).results)
        == checks
    )

    # The compile's results hold no data test: nothing to record.
    compiled = json.loads((target / "run_results.1.json").read_text())["results"]
    assert record_dbt_tests(warehouse, "dbt-compile", compiled, manifest).results == []
    assert query(warehouse, "select count(*) from audit.dq_results where run_id = 'dbt-compile'") == [(0,)]
