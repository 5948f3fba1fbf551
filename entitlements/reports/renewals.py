"""The renewals report's queries and figures (notebooks/renewals.py), for finance.

Everything reads fct_renewal_pipeline and fct_renewal_alerts, which the build measured from one
as-of date; a report for another date needs a build for it (`entitlements build --as-of D`), so
an as_of parameter that differs from the marts' is an error, not a silent mismatch. Amounts are
in each contract's currency and only ever summed per currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from entitlements.reports.common import PageContext, parse_as_of, query, strip_facet_labels
from entitlements.reports.layout import (
    Figure,
    Headline,
    count,
    count_value,
    day,
    money_value,
    notes,
    share_of,
)

PIPELINE_TABLE = "marts.fct_renewal_pipeline"
ALERTS_TABLE = "marts.fct_renewal_alerts"


def _named(table: str) -> str:
    """The mart's rows with the contract's and the customer's names (what finance calls them)."""
    return f"""(
        select renewals.*, contracts.contract_name, customers.customer_name
        from {table} as renewals
        left join marts.dim_contracts as contracts on renewals.contract_id = contracts.contract_id
        left join marts.dim_customers as customers on renewals.customer_id = customers.customer_id
    ) as named"""


# The windows in the order a reader scans them: missed first, then by urgency.
WINDOWS: tuple[str, ...] = ("expired_not_renewed", "0-30", "31-60", "61-90", "later", "renewed")
AT_RISK_WINDOWS: tuple[str, ...] = ("expired_not_renewed", "0-30", "31-60", "61-90")
WINDOW_COLORS = {
    "expired_not_renewed": "#c62828",
    "0-30": "#ef6c00",
    "31-60": "#f9a825",
    "61-90": "#9e9d24",
    "later": "#90a4ae",
    "renewed": "#2e7d32",
}
RENEWAL_MONEY: tuple[str, ...] = (
    "annual_value",
    "value_at_risk",
    "auto_renew_value",
    "previous_annual_value",
    "uplift_amount",
    "renewing_value_90d",
    "missed_value",
)


@dataclass(frozen=True)
class RenewalFilter:
    """The marts' as-of date, and one currency or all."""

    as_of: date
    currency: str | None = None

    def where(self) -> tuple[str, list]:
        if self.currency is None:
            return "1 = 1", []
        return "currency = ?", [self.currency]


def renewal_filter(
    con: duckdb.DuckDBPyConnection, as_of: date | str | None = None, currency: str | None = None
) -> RenewalFilter:
    """Check the parameters against the marts: their as-of date, and a currency they hold."""
    built = {r[0] for r in con.execute(f"select distinct as_of_date from {PIPELINE_TABLE}").fetchall()}
    if len(built) != 1:
        raise ValueError(
            f"{PIPELINE_TABLE} holds {len(built)} as-of dates; rebuild it (`entitlements build`)"
        )
    (built_as_of,) = built
    wanted = parse_as_of(as_of)
    if wanted is not None and wanted != built_as_of:
        raise ValueError(
            f"the renewal marts answer for {built_as_of}, not {wanted}: rebuild them for that date"
            f" (`entitlements build --as-of {wanted}`) or leave as_of empty"
        )
    cur = currency.strip().upper() if currency else None
    if cur is not None:
        known = {r[0] for r in con.execute(f"select distinct currency from {PIPELINE_TABLE}").fetchall()}
        if cur not in known:
            raise ValueError(
                f"currency {currency!r} not in the renewal pipeline (has: {', '.join(sorted(known))})"
            )
    return RenewalFilter(built_as_of, cur)


def _window_order(column: str = "renewal_window") -> str:
    return "case " + " ".join(f"when {column} = '{w}' then {i}" for i, w in enumerate(WINDOWS)) + " end"


def currency_summary(con: duckdb.DuckDBPyConnection, flt: RenewalFilter) -> pd.DataFrame:
    """Per currency, the headline: what renews in the next 90 days, what is at risk, what was missed."""
    where, params = flt.where()
    windows = ", ".join(f"'{w}'" for w in ("0-30", "31-60", "61-90"))
    return query(
        con,
        f"""
        select currency,
               count(*) filter (where renewal_window in ({windows})) as renewing_90d,
               coalesce(sum(annual_value) filter (where renewal_window in ({windows})), 0)
                   as renewing_value_90d,
               sum(value_at_risk) as value_at_risk,
               count(*) filter (where renewal_window = 'expired_not_renewed') as missed,
               coalesce(sum(annual_value) filter (where renewal_window = 'expired_not_renewed'), 0)
                   as missed_value,
               count(*) filter (where renewal_window = 'renewed') as renewed
        from {PIPELINE_TABLE} where {where}
        group by currency order by currency
        """,
        params,
    )


def pipeline_by_window(con: duckdb.DuckDBPyConnection, flt: RenewalFilter) -> pd.DataFrame:
    """Per currency and window: contracts, annual value, value at risk, and how much renews by itself."""
    where, params = flt.where()
    return query(
        con,
        f"""
        select currency, renewal_window, count(*) as contracts,
               sum(annual_value) as annual_value,
               sum(value_at_risk) as value_at_risk,
               count(*) filter (where auto_renew) as auto_renew_contracts,
               coalesce(sum(annual_value) filter (where auto_renew), 0) as auto_renew_value
        from {PIPELINE_TABLE} where {where}
        group by currency, renewal_window
        order by currency, {_window_order()}
        """,
        params,
    )


def upcoming_renewals(con: duckdb.DuckDBPyConnection, flt: RenewalFilter) -> pd.DataFrame:
    """Contracts ending in the next 90 days, soonest first."""
    where, params = flt.where()
    return query(
        con,
        f"""
        select renewal_window, days_to_expiry, end_date, contract_id, contract_name, customer_id,
               customer_name, contract_type, annual_value, value_at_risk, currency, auto_renew
        from {_named(PIPELINE_TABLE)}
        where {where} and renewal_window in ('0-30', '31-60', '61-90')
        order by days_to_expiry, contract_id
        """,
        params,
    )


def missed_renewals(con: duckdb.DuckDBPyConnection, flt: RenewalFilter) -> pd.DataFrame:
    """Contracts that ended without a signed successor, most recent first."""
    where, params = flt.where()
    return query(
        con,
        f"""
        select end_date, days_to_expiry, contract_id, contract_name, customer_id, customer_name,
               contract_type, annual_value, value_at_risk, currency, auto_renew
        from {_named(PIPELINE_TABLE)}
        where {where} and renewal_window = 'expired_not_renewed'
        order by end_date desc, contract_id
        """,
        params,
    )


def uplift(con: duckdb.DuckDBPyConnection, flt: RenewalFilter) -> pd.DataFrame:
    """Per currency: renewals with an uplift against their previous term (same currency only)."""
    where, params = flt.where()
    return query(
        con,
        f"""
        select currency, count(*) as contracts_with_uplift,
               sum(previous_annual_value) as previous_annual_value,
               sum(uplift_amount) as uplift_amount,
               round(100 * sum(uplift_amount) / nullif(sum(previous_annual_value), 0), 2) as uplift_pct
        from {PIPELINE_TABLE}
        where {where} and uplift_amount is not null
        group by currency order by currency
        """,
        params,
    )


def alerts_due(con: duckdb.DuckDBPyConnection, flt: RenewalFilter) -> pd.DataFrame:
    """The 90/60/30-day alerts due on the as-of date (due, or missed: the contract ended unrenewed)."""
    where, params = flt.where()
    return query(
        con,
        f"""
        select alert_status, alert_date, days_before_expiry, end_date, contract_id, contract_name,
               customer_id, customer_name, renewal_window, annual_value, value_at_risk, currency, auto_renew
        from {_named(ALERTS_TABLE)}
        where {where} and is_due
        order by case alert_status when 'due' then 0 else 1 end, alert_date desc, contract_id
        """,
        params,
    )


def value_at_risk_figure(by_window: pd.DataFrame) -> go.Figure:
    """Value at risk per window, one panel per currency (own axis each)."""
    df = by_window[by_window["renewal_window"].isin(AT_RISK_WINDOWS)]
    fig = px.bar(
        df,
        x="renewal_window",
        y="value_at_risk",
        color="renewal_window",
        facet_col="currency",
        category_orders={
            "renewal_window": list(AT_RISK_WINDOWS),
            "currency": sorted(df["currency"].unique()),
        },
        color_discrete_map=WINDOW_COLORS,
        custom_data=["currency", "contracts", "annual_value"],
        title="Value at risk by renewal window, per currency",
    )
    fig.update_traces(
        hovertemplate="%{x}<br>%{y:,.2f} %{customdata[0]} at risk<br>%{customdata[1]} contracts,"
        " %{customdata[2]:,.2f} annual value<extra></extra>"
    )
    fig.update_yaxes(matches=None, showticklabels=True, title_text="", tickformat=",.0f")
    fig.update_xaxes(title_text="")
    fig.update_layout(showlegend=False, margin={"l": 10, "r": 10})
    return strip_facet_labels(fig)


def pipeline_figure(by_window: pd.DataFrame) -> go.Figure:
    """Annual value by window, split by auto-renew, one panel per currency."""
    long = by_window.assign(manual_value=by_window["annual_value"] - by_window["auto_renew_value"]).melt(
        id_vars=["currency", "renewal_window"],
        value_vars=["auto_renew_value", "manual_value"],
        var_name="renews",
        value_name="value",
    )
    long["renews"] = long["renews"].map({"auto_renew_value": "auto-renew", "manual_value": "needs signing"})
    fig = px.bar(
        long,
        x="renewal_window",
        y="value",
        color="renews",
        facet_col="currency",
        category_orders={"renewal_window": list(WINDOWS), "currency": sorted(long["currency"].unique())},
        color_discrete_map={"auto-renew": "#78909c", "needs signing": "#ef6c00"},
        title="Annual value in the pipeline by window: auto-renew or needing a signature",
    )
    fig.update_yaxes(matches=None, showticklabels=True, title_text="", tickformat=",.0f")
    fig.update_xaxes(title_text="")
    fig.update_layout(barmode="stack", margin={"l": 10, "r": 10})
    return strip_facet_labels(fig)


# --------------------------------------------------------------------------- the headline


def headline(con: duckdb.DuckDBPyConnection, flt: RenewalFilter, page: PageContext) -> Headline:
    """Per currency: the value renewing in the next 90 days and the part of it at risk, the renewals
    missed; the alerts due on the as-of date."""
    where, params = flt.where()
    soon = ", ".join(f"'{w}'" for w in ("0-30", "31-60", "61-90"))
    rows = con.execute(
        f"""
        select currency,
               count(*) filter (where renewal_window in ({soon})) as renewing,
               coalesce(sum(annual_value) filter (where renewal_window in ({soon})), 0) as renewing_value,
               count(*) filter (where renewal_window in ({soon}) and value_at_risk > 0) as at_risk,
               coalesce(sum(value_at_risk) filter (where renewal_window in ({soon})), 0) as at_risk_value,
               count(*) filter (where renewal_window = 'expired_not_renewed') as missed,
               coalesce(sum(annual_value) filter (where renewal_window = 'expired_not_renewed'), 0)
                   as missed_value
        from {PIPELINE_TABLE} where {where}
        group by currency order by currency
        """,
        params,
    ).fetchall()
    due, missed_alerts = con.execute(
        f"select count(*) filter (where alert_status = 'due'), count(*) filter (where alert_status <> 'due')"
        f" from {ALERTS_TABLE} where {where} and is_due",
        params,
    ).fetchall()[0]

    figures = (
        Figure(
            "Renewing in the next 90 days",
            tuple(money_value("renewing_value_90d", v, cur, count(n, "contract")) for cur, n, v, *_ in rows),
            "Annual value of the contracts ending within 90 days of the as-of date.",
        ),
        Figure(
            "At risk in the next 90 days",
            tuple(
                money_value(
                    "value_at_risk_90d",
                    risk,
                    cur,
                    notes(share_of(risk, value, "of it"), count(n, "contract")),
                )
                for cur, _, value, n, risk, *_ in rows
            ),
            "Neither renewed nor renewing by itself: each needs a signature before it ends.",
            "bad",
        ),
        Figure(
            "Missed renewals",
            tuple(money_value("missed_value", v, cur, count(n, "contract")) for cur, *_, n, v in rows),
            "Ended without a signed successor (within dbt var renewal_lookback_days).",
            "warn",
        ),
        Figure(
            f"Alerts due on {day(flt.as_of)}",
            (count_value("alerts_due", due, "alert", note=f"and {count(missed_alerts, 'missed alert')}"),),
            "The 90, 60 and 30-day alerts to send today; missed: the contract already ended unrenewed.",
        ),
    )
    lead = (
        "What renews in the next 90 days, what of it is at risk and what was missed; the contracts follow,"
        " soonest first."
    )
    return Headline(page.report, page.title, flt.as_of, page.marts_version, lead, figures)
