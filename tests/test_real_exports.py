"""End to end on exports nobody here wrote: Salesforce Data Loader CSVs, Stripe API lists, CloudEvents
(tests/fixtures/real_exports/export/; the README beside it has the story and the leaks computed by
hand), configured only by the entitlements.yml written from docs/configuration.md."""

from __future__ import annotations

import shutil
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest

from tests.conftest import entitlements

# One worker for the whole module: its module fixtures are full runs, built once.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("test_real_exports")]

FIXTURE = Path(__file__).parent / "fixtures" / "real_exports" / "export"
NORTHWIND, KESTREL, SAKURA = "001Dn00000NwTrdAAA", "001Dn00000KstrlAAA", "001Dn00000SakurAAA"

# The README's table, computed by hand from the files.
EXPECTED_LEAKS = [
    ("post_expiry_usage", "001Dn00000BlfinAAA:API_CALLS:2026-09:unentitled", Decimal("15.00"), "GBP"),
    ("post_expiry_usage", f"{KESTREL}:API_CALLS:2026-08:unentitled", Decimal("10.00"), "EUR"),
    ("unbilled_overage", f"{NORTHWIND}:API_CALLS:2026-08:811Dn00000NwLi3AAA/v1", Decimal("24.00"), "USD"),
    ("unbilled_overage", f"{SAKURA}:API_CALLS:2026-08:811Dn00000SkLi1AAA/v1", Decimal("1058.00"), "JPY"),
    ("unbilled_service", "500Dn00000Cs002AAA", Decimal("400.00"), "USD"),
    ("uncovered_service", "500Dn00000Cs004AAA", Decimal("350.00"), "EUR"),
    ("under_billed", "il_1PBf0926a", Decimal("100.00"), "GBP"),
]


def _rows(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def _leaks(warehouse: Path) -> list[tuple]:
    return _rows(
        warehouse,
        "select category, evidence_id, amount, currency from marts.fct_revenue_leakage order by 1, 2",
    )


# Session scope: a module fixture is rebuilt whenever another module's test runs in between
# on the same xdist worker; this one is a full run, built once.
@pytest.fixture(scope="session")
def real(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("real")
    exports = root / "exports"
    shutil.copytree(FIXTURE, exports)
    warehouse = root / "warehouse.duckdb"
    run = entitlements("run", exports, "--warehouse", warehouse, "--reports", root / "reports")
    assert run.returncode == 0, run.stdout + run.stderr
    # The summary says what did not resolve: one billing customer, two usage events.
    unresolved = run.stdout.split("Customer ids resolving to no CRM account")[1].splitlines()
    assert [line.split() for line in unresolved[1:4]] == [
        ["used_in", "ids", "records"],
        ["billing_customers", "1", "1"],
        ["usage_events", "1", "2"],
    ]
    return exports, warehouse


def test_every_hand_computed_leak_is_found_to_the_cent_and_nothing_else(real):
    _, warehouse = real
    assert _leaks(warehouse) == EXPECTED_LEAKS


def test_billing_and_metering_ids_resolve_through_stripe_metadata_and_the_rest_are_listed(real):
    _, warehouse = real
    assert _rows(warehouse, "select source_id, customer_id from intermediate.int_customer_identities"
                 " where source_system = 'billing' order by 1") == [
        ("cus_Blfin003Zr7t", "001Dn00000BlfinAAA"),
        ("cus_Kstrl002Lm3p", KESTREL),
        ("cus_NwTrd001Q9xk", NORTHWIND),
        ("cus_Skura004Jp9q", SAKURA),
        ("cus_Solo999Hh2w", None),
    ]  # fmt: skip
    assert _rows(
        warehouse, "select used_in, source_id, record_count from marts.fct_unresolved_customer_ids order by 1"
    ) == [("billing_customers", "cus_Solo999Hh2w", 1), ("usage_events", "cus_Solo999Hh2w", 2)]
    # Usage: 6 Northwind events (one delivered twice), 5 Kestrel, 4 Bluefin; invoices 2, 1, 3 (one of
    # them holds only prorations).
    assert _rows(
        warehouse,
        "select used_in, source_id, customer_id, resolved_by, record_count from marts.dim_customer_identities"
        " where used_in in ('usage_events', 'invoices') order by 1, 2",
    ) == [
        ("invoices", "cus_Blfin003Zr7t", "001Dn00000BlfinAAA", "billing_customer", 2),
        ("invoices", "cus_Kstrl002Lm3p", KESTREL, "billing_customer", 1),
        ("invoices", "cus_NwTrd001Q9xk", NORTHWIND, "billing_customer", 3),
        ("invoices", "cus_Skura004Jp9q", SAKURA, "billing_customer", 1),
        ("usage_events", "cus_Blfin003Zr7t", "001Dn00000BlfinAAA", "billing_customer", 4),
        ("usage_events", "cus_Kstrl002Lm3p", KESTREL, "billing_customer", 5),
        ("usage_events", "cus_NwTrd001Q9xk", NORTHWIND, "billing_customer", 6),
        ("usage_events", "cus_Skura004Jp9q", SAKURA, "billing_customer", 2),
        ("usage_events", "cus_Solo999Hh2w", None, "unresolved", 2),
    ]


def test_credits_prorations_discounts_and_credit_notes_land_whole_and_bill_net(real):
    """Stripe's after-the-fact billing lands with nothing rejected (a negative proration line is a
    credit, not a bad row) and each line bills net of its coupon and issued credit notes."""
    _, warehouse = real
    assert _rows(warehouse, "select count(*) from audit.rejected_rows") == [(0,)]
    assert _rows(
        warehouse,
        "select credit_note_line_id, invoice_line_id, status, amount, currency"
        " from raw.billing_credit_note_lines order by 1",
    ) == [
        ("cnli_1PKs0926a", None, "issued", Decimal("15.00"), "EUR"),
        ("cnli_1PNw0826a", "il_1PNw0826a", "issued", Decimal("500.00"), "USD"),
        ("cnli_1PNw0926a", "il_1PNw0926a", "void", Decimal("2000.00"), "USD"),
    ]
    assert _rows(
        warehouse,
        "select invoice_line_id, amount, discount_amount, is_proration, credited_amount, net_amount"
        " from intermediate.int_invoice_lines where line_type = 'subscription' order by 1",
    ) == [
        ("il_1PBf0826a", Decimal("993.00"), Decimal("0.00"), False, Decimal("0.00"), Decimal("993.00")),
        ("il_1PBf0926a", Decimal("1000.00"), Decimal("100.00"), False, Decimal("0.00"), Decimal("900.00")),
        ("il_1PNw0826a", Decimal("2500.00"), Decimal("0.00"), False, Decimal("500.00"), Decimal("2000.00")),
        ("il_1PNw0926a", Decimal("2000.00"), Decimal("0.00"), False, Decimal("0.00"), Decimal("2000.00")),
        ("il_1PNw1026a", Decimal("-1000.00"), Decimal("0.00"), True, Decimal("0.00"), Decimal("-1000.00")),
        ("il_1PNw1026b", Decimal("1000.00"), Decimal("0.00"), True, Decimal("0.00"), Decimal("1000.00")),
        ("il_1PSk0826a", Decimal("300000.00"), Decimal("0.00"), False, Decimal("0.00"), Decimal("300000.00")),
    ]


def test_explanations_state_the_price_and_the_net_billing(real):
    _, warehouse = real
    explanations = dict(
        _rows(warehouse, "select evidence_id, explanation from marts.fct_revenue_leakage order by 1")
    )
    assert explanations[f"{NORTHWIND}:API_CALLS:2026-08:811Dn00000NwLi3AAA/v1"] == (
        "12000 API_CALLS above the limit of 50000 in 2026-08: 12000 = 12 packages of 1000 (rounded up)"
        " x 2.00 USD = 24.00 USD, invoiced 0.00"
    )
    assert explanations["il_1PBf0926a"] == (
        "Invoice line il_1PBf0926a billed 900.00 net for 2026-09 (1000.00, discounts -100.00)"
        " against a contract price of 1000.00"
    )
    assert explanations["500Dn00000Cs002AAA"].endswith(": 1 x 400.00 USD = 400.00 USD")
    # Graduated tiers in a zero-decimal currency: 1000 x 0.35 + 2500 x 0.283 = 1057.5, 1058 yen.
    assert explanations[f"{SAKURA}:API_CALLS:2026-08:811Dn00000SkLi1AAA/v1"] == (
        "3500 API_CALLS above the limit of 50000 in 2026-08: 1000 at 0.35 + 2500 at 0.283 JPY = 1058 JPY,"
        " invoiced 0.00"
    )


def test_a_yen_leak_is_converted_at_the_month_rate_of_the_seed(real):
    """JPY has rates (the seed ships them): the KPI's reporting amount is the leak at the August
    JPY to USD rate written in the seed, not null."""
    _, warehouse = real
    seed = Path(__file__).parents[1] / "dbt_project" / "seeds" / "fx_rates.csv"
    rate = next(
        Decimal(line.split(",")[3])
        for line in seed.read_text().splitlines()
        if line.startswith("2026-08-01,JPY,USD,")
    )
    assert _rows(
        warehouse,
        "select leaked_total, leaked_total_reporting, is_fx_rate_missing from marts.fct_leakage_kpis"
        " where currency = 'JPY'",
    ) == [(Decimal("1058.00"), (Decimal("1058") * rate).quantize(Decimal("0.01"), ROUND_HALF_UP), False)]


def test_invoice_lines_record_how_their_reference_was_found(real):
    _, warehouse = real
    assert _rows(
        warehouse,
        "select invoice_line_id, reference_id, reference_matched_by from raw.billing_invoice_lines"
        " where reference_id is not null order by 1",
    ) == [
        ("il_1PKs0926a", "500Dn00000Cs005AAA", "metadata_key:sf_case_id"),
        ("il_1PNw0926c", "00001001", "description_pattern"),
    ]


def test_crm_semantics_renewal_link_and_prices_per_term(real):
    _, warehouse = real
    pipeline = dict(
        _rows(warehouse, "select contract_id, coalesce(renewed_by_contract_id, renewal_window)"
              " from marts.fct_renewal_pipeline")
    )  # fmt: skip
    assert pipeline["810Dn00000NwSc1AAA"] == "810Dn00000NwSc2AAA"
    assert pipeline["810Dn00000KsSc1AAA"] == "expired_not_renewed"
    prices = dict(_rows(warehouse, "select contract_line_id, annual_price from raw.crm_contract_lines"))
    assert prices["811Dn00000NwLi3AAA"] == Decimal("24000.00")  # 48,000 for 24 months
    assert prices["811Dn00000BfLi1AAA"] == Decimal("12000.00")  # 12 months
    assert prices["811Dn00000KsLi2AAA"] == Decimal("14600.00")  # 9,040 for 226 days


def test_without_the_configuration_the_export_is_refused_naming_the_first_file_it_cannot_read(tmp_path):
    exports = tmp_path / "exports"
    shutil.copytree(FIXTURE, exports)
    (exports / "entitlements.yml").unlink()
    run = entitlements("run", exports, "--warehouse", tmp_path / "w.duckdb", "--reports", tmp_path / "r")
    assert run.returncode == 1
    # Stripe customers name their account only in metadata: without identity they are unmapped.
    assert "billing/customers.json: 5 row(s) carry ids the mapping file" in run.stderr
    assert "Nothing of this export was kept" in run.stderr


def test_a_changed_configuration_applies_on_the_next_run_relanding_what_it_reads_differently(real, tmp_path):
    exports, warehouse = real
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(warehouse, copy)
    text = (exports / "entitlements.yml").read_text()
    changed = text.replace("under_billed_percent: 1", "under_billed_percent: 0.5").replace(
        "    - description_pattern: 'Case (\\d{8})'\n", ""
    )
    assert changed.count("description_pattern") == 0 and "under_billed_percent: 0.5" in changed
    config = tmp_path / "changed.yml"
    config.write_text(changed)
    run = entitlements("run", exports, "--config", config, "--warehouse", copy, "--reports", tmp_path / "r")
    assert run.returncode == 0, run.stdout + run.stderr
    # Only the invoices are read differently: they land again, replacing their earlier load.
    assert "1 files landed" in run.stdout or "2 files landed" in run.stdout, run.stdout
    relanded = _rows(
        copy,
        "select distinct source_file from audit.ingest_manifest where superseded_by is not null",
    )
    assert relanded == [("billing/invoices.json",)]
    assert _leaks(copy) == sorted(
        [
            *EXPECTED_LEAKS,
            ("unbilled_service", "500Dn00000Cs001AAA", Decimal("400.00"), "USD"),  # no pattern: unbilled
            ("under_billed", "il_1PBf0826a", Decimal("7.00"), "GBP"),  # 0.7 % is over 0.5 %
        ]
    )


def test_a_stripe_only_subscription_grants_to_the_second_and_one_agreement_grants_once(real):
    _, warehouse = real
    assert _rows(
        warehouse,
        "select entitlement_id, contract_type, valid_from_at, valid_to_at"
        " from intermediate.int_entitlement_grants where entitlement_code = 'API_CALLS' order by 1",
    ) == [
        ("811Dn00000KsLi2AAA/v1/API_CALLS", "service_contract", datetime(2026, 1, 1), datetime(2026, 8, 15)),
        ("811Dn00000NwLi3AAA/v1/API_CALLS", "service_contract", datetime(2025, 9, 15), datetime(2027, 9, 15)),
        ("811Dn00000SkLi1AAA/v1/API_CALLS", "service_contract", datetime(2026, 7, 1), datetime(2027, 7, 1)),
        ("si_BfApi0003/v1/API_CALLS", "subscription", datetime(2026, 6, 1), datetime(2026, 9, 10, 12)),
    ]
