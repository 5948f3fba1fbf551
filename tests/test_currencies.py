"""Currencies: the ISO 4217 table, the seeds made from it, the shipped rates, and a user's rates file
replacing them, with a warning naming each currency left without a rate (docs/currencies.md)."""

from __future__ import annotations

import csv
import shutil
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from entitlements.ingest import layouts
from entitlements.ingest.currencies import CURRENCIES, MINOR_UNITS, minor_units_csv, seed_path
from entitlements.ingest.layouts import LAYOUTS, LAYOUTS_BY_TABLE
from entitlements.runs.summary import _cells, _month_ranges, missing_fx_rates_line
from entitlements.transform.dbt_runner import target_dir
from entitlements.warehouse import DBT_PROJECT_DIR
from tests.conftest import entitlements, query_rows

pytestmark = pytest.mark.unit

FX_SEED = DBT_PROJECT_DIR / "seeds" / "fx_rates.csv"
CANONICAL = Path(__file__).parent / "fixtures" / "exports" / "canonical"
AS_OF = "2026-10-31"
SHIPPED = ("USD", "EUR", "GBP", "JPY")
# Rates are rounded to 6 decimals (8 for a yen's): a pair times its inverse is 1 within this.
INVERSE_TOLERANCE = Decimal("0.00001")


def seed_rates() -> dict[tuple[str, str, str], Decimal]:
    with FX_SEED.open(newline="") as handle:
        return {
            (r["rate_month"], r["from_currency"], r["to_currency"]): Decimal(r["rate"])
            for r in csv.DictReader(handle)
        }


# --------------------------------------------------------------------------- the ISO table and seeds


def test_minor_units_seed_equals_the_module() -> None:
    assert seed_path().read_text(encoding="utf-8") == minor_units_csv(), (
        "run python -m entitlements.ingest.currencies"
    )


def test_every_currency_column_accepts_the_iso_codes() -> None:
    assert tuple(sorted(MINOR_UNITS)) == CURRENCIES
    assert layouts.CURRENCIES is CURRENCIES
    assert all(len(code) == 3 and code.isalpha() and code.isupper() for code in CURRENCIES)
    expected = {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "XOF": 0}
    expected |= {code: 3 for code in ("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND")}
    expected |= {"CLF": 4, "UYW": 4}
    assert {code: MINOR_UNITS[code] for code in expected} == expected
    # No minor unit in ISO (not a currency anything is invoiced in), or withdrawn.
    assert not {"XXX", "XAU", "XDR", "XTS", "HRK", "CUC"} & set(CURRENCIES)
    enums = [v for layout in LAYOUTS for name, v in layout.enums.items() if name.endswith("currency")]
    assert enums and all(values == CURRENCIES for values in enums)


def test_the_rates_file_layout() -> None:
    layout = LAYOUTS_BY_TABLE["billing_fx_rates"]
    assert (layout.system, layout.pattern) == ("billing", "billing/fx_rates*.csv")
    assert layout.column_names == ("rate_month", "from_currency", "to_currency", "rate")
    assert layout.primary_key == ("rate_month", "from_currency", "to_currency")
    assert layout.non_negative == ("rate",)


def test_every_seed_rate_has_its_inverse() -> None:
    rates = seed_rates()
    for (month, source, target), rate in rates.items():
        inverse = rates.get((month, target, source))
        assert inverse is not None, (month, source, target)
        assert abs(rate * inverse - 1) < INVERSE_TOLERANCE, (month, source, target, rate, inverse)
        # A cross rate is the rate through USD, within rounding.
        if "USD" not in (source, target):
            through = rates[(month, source, "USD")] * rates[(month, "USD", target)]
            assert abs(rate / through - 1) < INVERSE_TOLERANCE, (month, source, target)


def test_the_seed_has_every_shipped_pair_for_every_month() -> None:
    pairs: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for month, source, target in seed_rates():
        pairs[month].add((source, target))
    expected_months = [f"{y}-{m:02d}-01" for y in range(2024, 2028) for m in range(1, 13)]
    assert sorted(pairs) == expected_months
    every_pair = {(a, b) for a in SHIPPED for b in SHIPPED if a != b}
    assert all(pairs[month] == every_pair for month in expected_months)
    rates = seed_rates()
    for month in expected_months:  # illustrative, about 150 yen a dollar
        assert 130 <= rates[(month, "USD", "JPY")] <= 170, month


# --------------------------------------------------------------------------- the warning line


def test_month_ranges_collapse_consecutive_months() -> None:
    months = [date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1), date(2026, 3, 1)]
    assert _month_ranges(months) == "2025-11..2026-01, 2026-03"
    assert _month_ranges([date(2026, 6, 1)]) == "2026-06"


def test_the_printed_summary_shows_amounts_with_their_currencys_decimals() -> None:
    header = ("category", "currency", "leaks", "amount")
    assert _cells(header, ("uncovered_service", "JPY", 1, Decimal("15000.00"))) == [
        "uncovered_service",
        "JPY",
        "1",
        "15000",
    ]
    assert _cells(header, ("under_billed", "KWD", 2, Decimal("12.5"))) == [
        "under_billed",
        "KWD",
        "2",
        "12.500",
    ]
    assert _cells(header, ("under_billed", "EUR", 1, None)) == ["under_billed", "EUR", "1", "None"]
    # quantities are not money: as they are
    assert _cells(("unit", "currency", "overage_quantity"), ("calls", "JPY", Decimal("1.5000"))) == [
        "calls",
        "JPY",
        "1.5000",
    ]


def test_warning_line_only_when_a_rate_is_missing(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute(
        "create schema marts; create table marts.fct_leakage_kpis (period_month date, currency varchar,"
        " reporting_currency varchar, is_fx_rate_missing boolean)"
    )
    con.execute("insert into marts.fct_leakage_kpis values ('2026-01-01', 'EUR', 'USD', false)")
    con.close()
    assert missing_fx_rates_line(warehouse) is None
    con = duckdb.connect(str(warehouse))
    con.execute(
        "insert into marts.fct_leakage_kpis values ('2026-02-01', 'CHF', 'USD', true),"
        " ('2026-01-01', 'CHF', 'USD', true), ('2026-05-01', 'CHF', 'USD', true),"
        " ('2026-01-01', 'BRL', 'USD', true)"
    )
    con.close()
    assert missing_fx_rates_line(warehouse) == (
        "WARNING: no exchange rate to USD for BRL (2026-01); CHF (2026-01..2026-02, 2026-05), so their"
        " *_reporting amounts are null; add rows to billing/fx_rates.csv (docs/currencies.md)"
    )


# --------------------------------------------------------------------------- a user's rates file


# Session scope: a module fixture is rebuilt whenever another module's test runs in between
# on the same xdist worker; this one is a full run, built once.
@pytest.fixture(scope="session")
def user_rates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The canonical export (USD, EUR and GBP customers) with a rates file giving EUR to USD at 1.25
    every month (the first row mid-month) and no GBP rate: one ingest, one dbt build."""
    root = tmp_path_factory.mktemp("user_rates")
    export = root / "export"
    shutil.copytree(CANONICAL, export, ignore=shutil.ignore_patterns(".READY"))
    months = [date(2025, 10, 15)] + [date(2025 + (m > 12), (m - 1) % 12 + 1, 1) for m in range(11, 23)]
    with (export / "billing" / "fx_rates.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["rate_month", "from_currency", "to_currency", "rate"])
        writer.writerows([month.isoformat(), "EUR", "USD", "1.25"] for month in months)
        writer.writerow(["2026-09-01", "USD", "EUR", "0.8"])
    warehouse = root / "w.duckdb"
    ingest = entitlements("ingest", export, "--warehouse", warehouse)
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    build = entitlements("build", "--warehouse", warehouse, "--as-of", AS_OF)
    assert build.returncode == 0, build.stdout + build.stderr
    return warehouse


@pytest.mark.xdist_group("test_currencies.user_rates")
@pytest.mark.e2e
def test_a_rates_file_replaces_the_seed(user_rates: Path) -> None:
    assert query_rows(user_rates, "select count(*) as n from raw.billing_fx_rates") == [{"n": 14}]
    kpis = {
        r["kpi_id"]: r
        for r in query_rows(
            user_rates,
            "select kpi_id, fx_rate, is_fx_rate_missing, leaked_total, leaked_total_reporting"
            " from marts.fct_leakage_kpis",
        )
    }
    # EUR at the file's rate (the seed says 1.16 and 1.17), the mid-month row counting for its month.
    assert kpis["2025-10:EUR"]["fx_rate"] == Decimal("1.25")
    assert kpis["2025-10:EUR"]["leaked_total_reporting"] == Decimal("393.75")  # 315.00 EUR
    assert kpis["2025-12:EUR"]["fx_rate"] == Decimal("1.25")
    assert all(r["fx_rate"] == 1 for k, r in kpis.items() if k.endswith(":USD"))
    # GBP has seed rates but none in the file: no rate, never the seed's, never 0 or 1.
    gbp = {k: r for k, r in kpis.items() if k.endswith(":GBP")}
    assert set(gbp) == {"2026-06:GBP", "2026-09:GBP"}
    for row in gbp.values():
        assert row["is_fx_rate_missing"] is True
        assert row["fx_rate"] is None and row["leaked_total_reporting"] is None


@pytest.mark.xdist_group("test_currencies.user_rates")
@pytest.mark.e2e
def test_the_warnings_name_the_currency_without_a_rate(user_rates: Path) -> None:
    # The dbt warning test: its rows are the currency-months without a rate.
    compiled = target_dir(user_rates) / "compiled" / "entitlements" / "tests" / "marts"
    sql = (compiled / "assert_fct_leakage_kpis_currencies_have_fx_rates.sql").read_text()
    rows = query_rows(user_rates, sql)
    assert sorted((r["currency"], r["period_month"]) for r in rows) == [
        ("GBP", date(2026, 6, 1)),
        ("GBP", date(2026, 9, 1)),
    ]
    # The run summary's line, as `entitlements summary` (and `run`) prints it.
    summary = entitlements("summary", "--warehouse", user_rates)
    assert summary.returncode == 0, summary.stderr
    assert (
        "WARNING: no exchange rate to USD for GBP (2026-06, 2026-09), so their *_reporting amounts are"
        " null; add rows to billing/fx_rates.csv (docs/currencies.md)"
    ) in summary.stdout.splitlines()
