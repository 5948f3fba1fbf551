"""The run summary printed after `entitlements run`: read from the marts, per currency."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import date
from pathlib import Path

from entitlements.config import effective_dbt_var
from entitlements.ingest.currencies import MINOR_UNITS
from entitlements.warehouse import connect_marts

SECTIONS = {
    "Revenue leakage by category": """
        select category, currency, count(*) as leaks, sum(amount) as amount
        from marts.fct_revenue_leakage group by category, currency order by category, currency
    """,
    # Shares are of the currency's own billing; the converted column is null if any month lacks a rate.
    "Leakage key figures by currency": """
        select currency, sum(billed_revenue) as billed, sum(leaked_total) as leaked,
               round(100 * sum(leaked_total) / nullif(sum(billed_revenue), 0), 2) as leaked_pct,
               sum(recoverable_value) as recoverable,
               round(100 * sum(misaligned_records) / nullif(sum(billable_records), 0), 2) as misaligned_pct,
               coalesce(
                   case when not bool_or(is_fx_rate_missing) then sum(leaked_total_reporting) end
                   || ' ' || any_value(reporting_currency), 'fx rate missing') as leaked_converted
        from marts.fct_leakage_kpis group by currency order by currency
    """,
    "Renewal pipeline by window": """
        select renewal_window, currency, count(*) as contracts, sum(annual_value) as annual_value,
               sum(value_at_risk) as value_at_risk
        from marts.fct_renewal_pipeline group by renewal_window, currency
        order by case renewal_window when '0-30' then 1 when '31-60' then 2 when '61-90' then 3
                 when 'later' then 4 when 'renewed' then 5 else 6 end, currency
    """,
    # Overage is summed within one unit and valued within one currency, never across.
    "Limit breaches by threshold": """
        select threshold_crossed, unit, currency, count(*) as periods,
               count(distinct customer_id) as customers,
               sum(overage_quantity) as overage_quantity, sum(overage_value) as overage_value
        from marts.fct_limit_breaches group by threshold_crossed, unit, currency
        order by threshold_crossed, unit, currency
    """,
    "Upsell candidates and underused entitlements": """
        select 'upsell' as finding, entitlement_code, currency, count(*) as customers,
               sum(annual_fee_difference) as annual_fee_difference
        from marts.fct_upsell_candidates group by entitlement_code, currency
        union all
        select 'underused', entitlement_code, null, count(distinct customer_id), null
        from marts.fct_underused_entitlements group by entitlement_code
        order by finding, entitlement_code, currency
    """,
    # Records whose customer id reaches no CRM account: kept, but matched to nothing until it does.
    "Customer ids resolving to no CRM account (marts.fct_unresolved_customer_ids)": """
        select used_in, count(*) as ids, sum(record_count) as records
        from marts.fct_unresolved_customer_ids group by used_in order by used_in
    """,
    # Usage in months no grant covered: a leak only after_expiry; the rest would be out of sight.
    "Usage no entitlement covers (marts.fct_unentitled_usage)": """
        select finding, meter_code, count(distinct customer_id) as customers, count(*) as months,
               sum(used_quantity) as quantity
        from marts.fct_unentitled_usage group by finding, meter_code order by finding, meter_code
    """,
}

# A line under a section's table: what its less obvious columns mean (the marts' docs say more);
# {recoverable_days} is the warehouse's var recoverable_billing_window_days.
NOTES = {
    "Usage no entitlement covers (marts.fct_unentitled_usage)": (
        "after_expiry: reported as post_expiry_usage leakage unless invoiced. never_entitled: no contract"
        " line or subscription ever granted the meter to the account (a contract missing from the export?)."
        " customer_unresolved: see the ids above."
    ),
    "Leakage key figures by currency": (
        "leaked_pct: leaked / billed. misaligned_pct: of the records that must be billed (customer-pay"
        " deliveries, contract billing periods, usage over its limit), the share billing got wrong."
        " recoverable: leaks of the last {recoverable_days} days (var recoverable_billing_window_days),"
        " still invoiceable."
        " Invoices are expected monthly in arrears: usage and customer-pay deliveries of the as-of month"
        " are not judged as unbilled yet (marts.fct_leakage_kpis)."
    ),
}

# Amounts in the row's currency: printed with that currency's decimals (JPY 15000, not 15000.00).
MONEY_COLUMNS = frozenset(
    {"amount", "billed", "leaked", "recoverable", "annual_value", "value_at_risk", "overage_value",
     "annual_fee_difference"}
)  # fmt: skip


def _cells(header: tuple, row: tuple) -> list[str]:
    currency = row[header.index("currency")] if "currency" in header else None
    places = MINOR_UNITS.get(str(currency))
    return [
        f"{value:.{places}f}"
        if name in MONEY_COLUMNS and value is not None and places is not None
        else str(value)
        for name, value in zip(header, row, strict=True)
    ]


# Currency-months of the leakage KPIs whose *_reporting amounts are null for want of a rate.
MISSING_FX_RATES = """
    select currency, any_value(reporting_currency) as reporting_currency,
           list(period_month order by period_month) as months
    from marts.fct_leakage_kpis where is_fx_rate_missing group by currency order by currency
"""


def missing_fx_rates(warehouse: Path) -> list[tuple[str, str, list[date]]]:
    """(currency, reporting currency, months) of every currency the leakage KPIs hold without a rate."""
    con = connect_marts(warehouse)
    try:
        return [(c, r, list(m)) for c, r, m in con.execute(MISSING_FX_RATES).fetchall()]
    finally:
        con.close()


def _month_ranges(months: list[date]) -> str:
    """Sorted months as '2026-01..2026-03, 2026-05': consecutive months collapse to a range."""
    runs: list[list[date]] = []
    for month in months:
        previous = runs[-1][-1] if runs else None
        if previous and (month.year * 12 + month.month) - (previous.year * 12 + previous.month) == 1:
            runs[-1].append(month)
        else:
            runs.append([month])
    return ", ".join(
        f"{run[0]:%Y-%m}" if len(run) == 1 else f"{run[0]:%Y-%m}..{run[-1]:%Y-%m}" for run in runs
    )


def missing_fx_rates_line(warehouse: Path) -> str | None:
    """One line naming the currencies (and months) with no rate to the reporting currency, if any."""
    missing = missing_fx_rates(warehouse)
    if not missing:
        return None
    reporting = missing[0][1]
    named = "; ".join(f"{currency} ({_month_ranges(months)})" for currency, _, months in missing)
    return (
        f"WARNING: no exchange rate to {reporting} for {named}, so their *_reporting amounts are null;"
        " add rows to billing/fx_rates.csv (docs/currencies.md)"
    )


def summary_tables(warehouse: Path) -> dict[str, list[tuple]]:
    """Each section as rows, the first row holding the column names."""
    con = connect_marts(warehouse)
    try:
        tables = {}
        for title, sql in SECTIONS.items():
            cursor = con.execute(sql)
            tables[title] = [tuple(d[0] for d in cursor.description), *cursor.fetchall()]
        return tables
    finally:
        con.close()


def print_summary(warehouse: Path, echo: Callable[[str], None] = print) -> None:
    recoverable_days = effective_dbt_var(warehouse, "recoverable_billing_window_days")
    for title, rows in summary_tables(warehouse).items():
        header, body = rows[0], rows[1:]
        echo(f"\n{title}")
        shown = [list(map(str, header)), *(_cells(header, row) for row in body)]
        widths = [max(len(v) for v in col) for col in zip(*shown, strict=True)]
        for row in shown:
            echo("  " + "  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
        if title in NOTES:
            note = NOTES[title].format(recoverable_days=recoverable_days)
            echo(textwrap.fill(note, width=100, initial_indent="  ", subsequent_indent="  "))
    warning = missing_fx_rates_line(warehouse)
    if warning:
        echo(f"\n{warning}")
