"""fct_leakage_kpis on the demo warehouse: its sums reconcile with the leak rows, the raw invoice lines,
the generator's ground truth and the fx seed, each recomputed here independently of the model."""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from entitlements.reports.leakage import LEAKAGE_CATEGORIES as CATEGORIES
from entitlements.warehouse import DBT_PROJECT_DIR
from tests.conftest import Built, query_rows

pytestmark = pytest.mark.integration

KPIS = "marts.fct_leakage_kpis"
CENT = Decimal("0.01")
# Leak categories that mean "billing does not match a billable CRM or metering record".
MISMATCH_CATEGORIES = {"unbilled_service", "under_billed", "unbilled_overage"}


def month(day: date) -> date:
    return day.replace(day=1)


@pytest.fixture(scope="module")
def kpis(demo_warehouse: Path) -> dict[tuple[date, str], dict]:
    return {
        (r["period_month"], r["currency"]): r for r in query_rows(demo_warehouse, f"select * from {KPIS}")
    }


def test_leak_amounts_reconcile_with_fct_revenue_leakage(demo_warehouse: Path, kpis: dict) -> None:
    """Per month and currency, each leaked_<category> and leaked_total equal the sums of the leak rows."""
    expected: dict[tuple[date, str], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    leaks = query_rows(
        demo_warehouse, "select category, occurred_on, currency, amount from marts.fct_revenue_leakage"
    )
    assert leaks, "the demo plants leaks"
    for leak in leaks:
        key = (month(leak["occurred_on"]), leak["currency"])
        expected[key][leak["category"]] += leak["amount"]
        expected[key]["total"] += leak["amount"]
        expected[key]["count"] += 1
    with_leaks = {k for k, r in kpis.items() if r["leak_count"] or r["leaked_total"]}
    assert with_leaks == set(expected)
    for key, sums in expected.items():
        row = kpis[key]
        for category in CATEGORIES:
            assert row[f"leaked_{category}"] == sums[category], (key, category)
        assert row["leaked_total"] == sums["total"], key
        assert row["leak_count"] == sums["count"], key
    # Each currency's grand total too, and no row of one currency holds another's leaks.
    for currency in {c for _, c in expected}:
        assert sum(r["leaked_total"] for (_, c), r in kpis.items() if c == currency) == sum(
            s["total"] for (_, c), s in expected.items() if c == currency
        )


def test_billed_revenue_equals_the_raw_invoice_lines(demo_warehouse: Path, kpis: dict, as_of: date) -> None:
    """Billed revenue: lines of non-void invoices dated by the as-of date, by period month and currency,
    net of their discounts and of the credit notes issued by then."""
    billed = query_rows(
        demo_warehouse,
        f"""
        with credited as (
            select invoice_line_id, sum(amount) as amount
            from raw.billing_credit_note_lines
            where status = 'issued' and credited_on <= date '{as_of.isoformat()}'
            group by all
        )
        select date_trunc('month', l.period_start)::date as month, upper(l.currency) as currency,
               sum(l.amount - coalesce(l.discount_amount, 0) - coalesce(c.amount, 0)) as amount
        from raw.billing_invoice_lines as l
        join raw.billing_invoices as i on i.invoice_id = l.invoice_id
        left join credited as c on c.invoice_line_id = l.invoice_line_id
        where lower(i.status) <> 'void' and i.invoice_date <= date '{as_of.isoformat()}'
        group by all
        """,
    )
    assert {b["currency"] for b in billed} == {"USD", "EUR", "GBP"}
    expected = {(b["month"], b["currency"]): b["amount"] for b in billed}
    assert {k: r["billed_revenue"] for k, r in kpis.items() if r["billed_revenue"] != 0} == expected
    for key, row in kpis.items():
        share = row["leakage_share"]
        if key not in expected:
            assert share is None, f"{key}: nothing billed, so no share"
        else:
            assert abs(share - row["leaked_total"] / expected[key]) < Decimal("0.000001"), key


def test_recoverable_value_is_the_leaks_of_the_last_90_days(
    demo_warehouse: Path, kpis: dict, as_of: date
) -> None:
    leaks = query_rows(demo_warehouse, "select occurred_on, currency, amount from marts.fct_revenue_leakage")
    expected: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    for leak in leaks:
        if 0 <= (as_of - leak["occurred_on"]).days <= 90:  # dbt var recoverable_billing_window_days
            expected[(month(leak["occurred_on"]), leak["currency"])] += leak["amount"]
    assert expected, "the demo has recent leaks"
    assert {k: r["recoverable_value"] for k, r in kpis.items() if r["recoverable_value"]} == dict(expected)


def test_misaligned_records_are_the_planted_billing_mismatches(demo_build: Built, kpis: dict) -> None:
    with (demo_build.exports / "ground_truth" / "leakage.csv").open() as handle:
        planted = [r for r in csv.DictReader(handle) if r["category"] in MISMATCH_CATEGORIES]
    expected: dict[tuple[date, str], int] = defaultdict(int)
    for leak in planted:
        expected[(month(date.fromisoformat(leak["occurred_on"])), leak["currency"])] += 1
    assert {k: r["misaligned_records"] for k, r in kpis.items() if r["misaligned_records"]} == dict(expected)
    for key, row in kpis.items():
        assert row["misaligned_records"] <= row["billable_records"], key
        if row["billable_records"]:
            assert row["misaligned_share"] == (
                Decimal(row["misaligned_records"]) / row["billable_records"]
            ).quantize(Decimal("0.000001"), ROUND_HALF_UP), key
        else:
            assert row["misaligned_share"] is None, key
    # Most billable records are billed correctly: the share stays small every month.
    assert sum(r["billable_records"] for r in kpis.values()) > 20 * sum(expected.values())


def test_reporting_amounts_use_the_seed_rate_of_the_month(kpis: dict) -> None:
    """USD is the reporting currency (rate exactly 1); EUR and GBP convert at the seed's monthly rate."""
    with (DBT_PROJECT_DIR / "seeds" / "fx_rates.csv").open() as handle:
        to_usd = {
            (date.fromisoformat(r["rate_month"]), r["from_currency"]): Decimal(r["rate"])
            for r in csv.DictReader(handle)
            if r["to_currency"] == "USD"
        }
    assert {r["currency"] for r in kpis.values()} == {"USD", "EUR", "GBP"}
    for (mon, currency), row in kpis.items():
        rate = Decimal(1) if currency == "USD" else to_usd[(mon, currency)]
        assert row["reporting_currency"] == "USD"
        assert row["fx_rate"] == rate and row["is_fx_rate_missing"] is False, (mon, currency)
        for column in ("billed_revenue", "leaked_total", "recoverable_value"):
            converted = (row[column] * rate).quantize(CENT, ROUND_HALF_UP)
            assert row[f"{column}_reporting"] == converted, (mon, currency, column)
