"""The data-quality gates (entitlements/quality/gates.py) on real DuckDB files built with SQL."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from entitlements.ingest.land import ensure_warehouse
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
    validate_landing,
    validate_marts,
)
from entitlements.warehouse import GX_DIR, connect

MANIFEST_FIELDS = (
    "load_id, source_file, export_dir, table_name, checksum, row_count, status, message, loaded_at"
)

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


def land(warehouse: Path, table: str, load_id: str, values: str) -> str:
    """Land one 'file' of rows (SQL VALUES in layout column order); returns its source file."""
    layout = LAYOUTS_BY_TABLE[table]
    source_file = f"{layout.pattern.split('*')[0]}_{load_id}.{layout.file_format}"
    columns = ", ".join(f'"{c}"' for c in layout.column_names)
    con = connect(warehouse)
    con.execute(
        f"insert into raw.{table} ({columns}, _load_id, _source_file, _loaded_at)"
        f" select *, ?, ?, timestamp '2024-06-15 08:00' from (values {values})",
        [load_id, source_file],
    )
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
    compound = only(report.results, "expect_compound_columns_to_be_unique")
    assert compound.column == "contract_line_id,version_no"
    assert compound.success and compound.critical
    suite = committed_suites(LANDING)["landing.crm_accounts"]
    assert [(r.expectation, r.critical) for r in report.results if r.batch == "L1"] == [
        (e["type"], e["meta"]["critical"]) for e in suite["expectations"]
    ]  # one result per expectation, in suite order
    assert statuses(warehouse) == {"L1": "validated", "L2": "validated"}
    rows = query(warehouse, "select run_id, step, success, count(*) from audit.dq_results group by all")
    assert rows == [("run-1", "landing", True, len(report.results))]
    assert "0 failed (0 critical)" in report.summary()

    # Nothing left 'landed': a second run over the default selection has nothing to do,
    # and neither has a run given no loads (every file of an export skipped as already loaded).
    assert validate_landing(warehouse, run_id="run-2").results == []
    assert validate_landing(warehouse, [], run_id="run-3").results == []
    assert query(warehouse, "select count(distinct run_id) from audit.dq_results") == [(1,)]


def test_duplicate_primary_key_fails_with_the_key_in_the_message(warehouse):
    source = land(
        warehouse,
        "crm_accounts",
        "L-dup",
        """('C1', 'Acme', 'US', 'USD', null, date '2020-01-01'),
           ('C7', 'Umbrella', 'US', 'USD', null, date '2020-02-01'),
           ('C7', 'Umbrella Corp', 'US', 'USD', null, date '2020-02-01')""",
    )
    land(warehouse, "crm_contract_lines", "L-ok", CONTRACT_LINES_OK)

    with pytest.raises(GateFailure) as caught:
        validate_landing(warehouse, run_id="run-dup")

    message = str(caught.value)
    for part in (
        "landing.crm_accounts",
        "raw.crm_accounts",
        "column customer_id",
        "expect_column_values_to_be_unique",
        '"customer_id": "C7"',
        source,
    ):
        assert part in message, (part, message)
    assert "C1" not in message.split("sample rows:")[1]  # only the duplicated key is quoted

    failure = only(caught.value.report.critical_failures, "expect_column_values_to_be_unique")
    assert (failure.batch, failure.column) == ("L-dup", "customer_id")
    sample = json.loads(failure.unexpected_sample)
    assert [row["customer_id"] for row in sample] == ["C7", "C7"]
    assert {row["_source_file"] for row in sample} == {source}
    assert failure.observed_value.startswith("2 of 3 row(s) unexpected")

    rows = query(
        warehouse,
        "select suite, table_name, batch, column_name, critical, unexpected_sample from audit.dq_results"
        " where not success",
    )
    assert [r[:5] for r in rows] == [
        ("landing.crm_accounts", "raw.crm_accounts", "L-dup", "customer_id", True)
    ]
    assert "C7" in rows[0][5]
    # The failing file stays 'landed'; the clean one in the same run is validated.
    assert statuses(warehouse) == {"L-dup": "landed", "L-ok": "validated"}


def test_duplicate_compound_key_names_every_key_column(warehouse):
    land(
        warehouse,
        "crm_contract_lines",
        "L-cdup",
        """('KL1', 1, 'K1', 'PKG-GOLD', null, null, 1, 10.00, date '2024-01-01', date '2024-12-31', null),
           ('KL1', 1, 'K1', 'PKG-GOLD', null, null, 3, 30.00, date '2024-01-01', date '2024-12-31', null),
           ('KL1', 2, 'K1', 'PKG-GOLD', null, null, 2, 20.00, date '2024-01-01', date '2024-12-31', null)""",
    )
    with pytest.raises(GateFailure) as caught:
        validate_landing(warehouse, ["L-cdup"], run_id="run-cdup")

    failure = only(caught.value.report.critical_failures, "expect_compound_columns_to_be_unique")
    assert failure.column == "contract_line_id,version_no"
    assert json.loads(failure.unexpected_sample) == [
        {"contract_line_id": "KL1", "version_no": 1, "_source_file": "crm/contract_lines_L-cdup.csv"},
        {"contract_line_id": "KL1", "version_no": 1, "_source_file": "crm/contract_lines_L-cdup.csv"},
    ]
    assert "column contract_line_id,version_no" in str(caught.value)


def test_enum_and_end_before_start_are_reported_with_sample_rows(warehouse):
    source = land(
        warehouse,
        "crm_service_contracts",
        "L-bad",
        """('K1', 'C1', 'service_contract', 'active', date '2024-01-01', date '2024-12-31', 'USD', true,
            null),
           ('K2', 'C1', 'service_contract', 'bogus', date '2024-01-01', date '2024-12-31', 'USD', null, null),
           ('K3', 'C2', 'warranty', 'active', date '2024-05-01', date '2024-04-01', 'EUR', false, null)""",
    )
    with pytest.raises(GateFailure) as caught:
        validate_landing(warehouse, run_id="run-bad")
    report = caught.value.report

    enum = only(report.results, "expect_column_values_to_be_in_set", "status")
    assert not enum.success and enum.critical
    assert json.loads(enum.unexpected_sample) == [
        {"contract_id": "K2", "status": "bogus", "_source_file": source}
    ]
    assert only(report.results, "expect_column_values_to_be_in_set", "currency").success

    dates = only(report.results, "expect_column_pair_values_a_to_be_greater_than_b")
    assert not dates.success and not dates.critical  # a warning: reported, does not stop the run
    assert dates.column == "end_date,start_date"
    assert json.loads(dates.unexpected_sample) == [
        {"contract_id": "K3", "end_date": "2024-04-01", "start_date": "2024-05-01", "_source_file": source}
    ]
    assert dates.observed_value == "1 of 3 row(s) unexpected"

    assert [r.expectation for r in report.critical_failures] == ["expect_column_values_to_be_in_set"]
    message = str(caught.value)
    assert "column status" in message and '"status": "bogus"' in message
    assert "1 non-critical failure(s)" in message
    assert "[warning] landing.crm_service_contracts" in report.summary()
    stored = query(
        warehouse,
        "select expectation, critical, unexpected_sample from audit.dq_results where not success order by 1",
    )
    assert [(e, c) for e, c, _ in stored] == [
        ("expect_column_pair_values_a_to_be_greater_than_b", False),
        ("expect_column_values_to_be_in_set", True),
    ]
    assert "2024-04-01" in stored[0][2] and "bogus" in stored[1][2]


def test_warnings_alone_do_not_stop_the_gate(warehouse):
    land(
        warehouse,
        "billing_invoice_lines",
        "L-neg",
        """('IL1', 'I1', 'service', 'K1', null, 'SVC-ONSITE', 'CS-1', date '2024-06-01', date '2024-05-01',
            -1, -150.00, 'USD', null, null, -5.00, true)""",
    )
    land(
        warehouse,
        "crm_cases",
        "L-cases",
        """('CS1', 'C1', null, null, 'SVC-ONSITE', timestamp '2024-06-02 09:00', timestamp '2024-06-01 17:30',
            'high', 'closed', 4.5, false, 'covered', null),
           ('CS2', 'C1', null, null, 'SVC-ONSITE', timestamp '2024-06-03 09:00', null,
            null, 'working', null, null, 'covered', null)""",
    )
    report = validate_landing(warehouse, run_id="run-warn")

    assert report.critical_failures == []
    assert sorted((r.batch, r.expectation, r.column) for r in report.failures) == [
        ("L-cases", "expect_column_pair_values_a_to_be_greater_than_b", "closed_at,created_at"),
        ("L-neg", "expect_column_pair_values_a_to_be_greater_than_b", "period_end,period_start"),
        ("L-neg", "expect_column_values_to_be_between", "discount_amount"),
        ("L-neg", "expect_column_values_to_be_between", "quantity"),
    ]
    # A negative amount is a credit (a proration), not a failure; a negative discount is one.
    discount = only(report.failures, "expect_column_values_to_be_between", "discount_amount")
    assert json.loads(discount.unexpected_sample)[0]["discount_amount"] == -5.0
    closed = next(r for r in report.failures if r.batch == "L-cases")
    assert closed.observed_value == "1 of 2 row(s) unexpected, 1 null row(s) ignored"  # CS2 is still open
    assert json.loads(closed.unexpected_sample) == [
        {
            "case_id": "CS1",
            "closed_at": "2024-06-01 17:30:00",
            "created_at": "2024-06-02 09:00:00",
            "_source_file": "crm/cases_L-cases.csv",
        }
    ]
    assert statuses(warehouse) == {"L-neg": "validated", "L-cases": "validated"}


def test_usage_events_may_repeat_an_event_id(warehouse):
    land(
        warehouse,
        "usage_events",
        "L-usage",
        """('EV1', 'C1', 'API_CALLS', 10, timestamp '2024-06-01 10:00', null, null),
           ('EV1', 'C1', 'API_CALLS', 10, timestamp '2024-06-01 10:00', timestamp '2024-06-01 10:05',
            null)""",
    )
    report = validate_landing(warehouse, ["L-usage"], run_id="run-usage")
    assert report.failures == []
    assert not any("unique" in r.expectation for r in report.results)


def test_missing_required_column_and_unknown_load(warehouse):
    con = connect(warehouse)
    con.execute("alter table raw.crm_locations drop column customer_id")
    con.close()
    land_sql = "('LOC1', 'HQ', 'US')"
    con = connect(warehouse)
    con.execute(
        "insert into raw.crm_locations (location_id, location_name, country, _load_id, _source_file)"
        f" select *, 'L-loc', 'crm/locations.csv' from (values {land_sql})"
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
    failed = {(r.expectation, r.column) for r in caught.value.report.critical_failures}
    assert ("expect_column_to_exist", "customer_id") in failed
    exists = only(caught.value.report.results, "expect_column_to_exist", "customer_id")
    assert exists.observed_value == "column missing"


# --------------------------------------------------------------------------- marts


def test_clean_marts_pass(warehouse):
    build_marts(warehouse)
    report = validate_marts(warehouse, run_id="run-m")

    assert report.step == MARTS
    assert report.batches == [f"marts.{t}" for t in sorted(MARTS_DDL)]
    assert report.failures == []
    assert query(warehouse, "select count(*) from audit.dq_results where step = 'marts'") == [
        (len(report.results),)
    ]


def test_mart_invariants_catch_a_negative_leakage_amount(warehouse):
    build_marts(
        warehouse,
        {
            "fct_revenue_leakage": CLEAN_MARTS["fct_revenue_leakage"]
            + """, ('LK3', 'C3', 'under_billed', 'invoice_line', 'IL-9', date '2024-06-10', -40.00, 'GBP',
                   null, 'K3', 'Invoice line IL-9 billed below the price book')"""
        },
    )
    with pytest.raises(GateFailure) as caught:
        validate_marts(warehouse, run_id="run-neg")

    failure = only(caught.value.report.critical_failures, "expect_column_values_to_be_between", "amount")
    assert (failure.suite, failure.table) == ("marts.fct_revenue_leakage", "marts.fct_revenue_leakage")
    assert json.loads(failure.unexpected_sample) == [{"leakage_id": "LK3", "amount": -40.0}]
    assert len(caught.value.report.critical_failures) == 1
    message = str(caught.value)
    assert "suite marts.fct_revenue_leakage, table marts.fct_revenue_leakage" in message
    assert "column amount" in message and '"leakage_id": "LK3"' in message
    assert str(pickle.loads(pickle.dumps(caught.value))) == message
    assert query(
        warehouse,
        "select column_name, critical from audit.dq_results where step = 'marts' and not success",
    ) == [("amount", True)]


def test_mart_warnings_and_missing_mart(warehouse):
    build_marts(
        warehouse,
        {
            "fct_limit_breaches": """
                ('B1', 'C1', 'E1', 'ONSITE', date '2024-06-01', date '2024-06-30', 10, 5, 50.00, 80, 0,
                 date '2024-06-10', null, null, 'visits', 0.00, 'USD'),
                ('B1', 'C1', 'E1', 'ONSITE', date '2024-06-01', date '2024-06-30', 10, 9, 90.00, 75, 0,
                 date '2024-06-10', null, null, 'visits', 0.00, 'USD')"""
        },
    )
    con = connect(warehouse)
    con.execute("drop table marts.fct_renewal_pipeline")
    con.close()

    with pytest.raises(GateFailure) as caught:
        validate_marts(warehouse, run_id="run-w")
    report = caught.value.report
    assert sorted((r.expectation, r.column, r.critical) for r in report.failures) == [
        ("expect_column_values_to_be_between", "pct_used", False),
        ("expect_column_values_to_be_in_set", "threshold_crossed", True),
        ("expect_column_values_to_be_unique", "breach_id", True),
        ("expect_table_to_exist", None, True),
    ]
    threshold = only(report.results, "expect_column_values_to_be_in_set", "threshold_crossed")
    assert json.loads(threshold.unexpected_sample) == [{"breach_id": "B1", "threshold_crossed": 75}]
    missing = only(report.results, "expect_table_to_exist")
    assert missing.table == "marts.fct_renewal_pipeline"


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
