"""The usage and limits report's queries and figures (notebooks/usage_and_limits.py).

Reads fct_allowance_periods (every allowance period and its use), fct_limit_breaches (periods that
crossed 80 %) and fct_underused_entitlements. Overage values are in the contract's currency and
only ever summed per currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from entitlements.reports.common import PageContext, parse_as_of, query, strip_facet_labels
from entitlements.reports.layout import (
    MONTH_TICKS,
    Figure,
    Headline,
    count,
    count_value,
    money_value,
    month,
    notes,
    share_of,
)

PERIODS_TABLE = "marts.fct_allowance_periods"
BREACHES_TABLE = "marts.fct_limit_breaches"
UNDERUSED_TABLE = "marts.fct_underused_entitlements"
LEAKAGE_TABLE = "marts.fct_revenue_leakage"  # the headline's overage never invoiced
THRESHOLDS: tuple[int, ...] = (80, 90, 100)
THRESHOLD_COLORS = {80: "#f9a825", 90: "#ef6c00", 100: "#c62828"}
USAGE_MONEY: tuple[str, ...] = ("overage_value",)


@dataclass(frozen=True)
class UsageFilter:
    """Periods that started on or before `as_of`, one entitlement code and/or one currency, or all."""

    as_of: date | None = None
    entitlement: str | None = None
    currency: str | None = None

    def where(self) -> tuple[str, list]:
        clauses, params = ["1 = 1"], []
        if self.as_of is not None:
            clauses.append("period_start <= ?")
            params.append(self.as_of)
        for column, value in (("entitlement_code", self.entitlement), ("currency", self.currency)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        return " and ".join(clauses), params


def usage_filter(
    con: duckdb.DuckDBPyConnection,
    as_of: date | str | None = None,
    entitlement: str | None = None,
    currency: str | None = None,
) -> UsageFilter:
    """Check the parameters against the periods mart: an unknown code or currency is an error."""
    code = entitlement.strip().upper() if entitlement else None
    cur = currency.strip().upper() if currency else None
    for column, value in (("entitlement_code", code), ("currency", cur)):
        if value is not None:
            known = {r[0] for r in con.execute(f"select distinct {column} from {PERIODS_TABLE}").fetchall()}
            if value not in known:
                raise ValueError(
                    f"{column} {value!r} not in {PERIODS_TABLE} (has: {', '.join(sorted(known))})"
                )
    return UsageFilter(parse_as_of(as_of), code, cur)


def threshold_summary(con: duckdb.DuckDBPyConnection, flt: UsageFilter) -> pd.DataFrame:
    """Per entitlement and highest threshold crossed, per currency: periods, customers, overage, its value."""
    where, params = flt.where()
    return query(
        con,
        f"""
        select entitlement_code, unit, threshold_crossed, currency,
               count(*) as periods, count(distinct customer_id) as customers,
               sum(overage_quantity) as overage_quantity, sum(overage_value) as overage_value
        from {BREACHES_TABLE} where {where}
        group by all
        order by entitlement_code, threshold_crossed, currency
        """,
        params,
    )


def crossings_by_month(con: duckdb.DuckDBPyConnection, flt: UsageFilter) -> pd.DataFrame:
    """How many periods first crossed 80, 90 and 100 % in each month (of the crossing day)."""
    where, params = flt.where()
    parts = " union all ".join(
        f"select {t} as threshold, date_trunc('month', crossed_{t}_on)::date as month, entitlement_code"
        f" from {BREACHES_TABLE} where {where} and crossed_{t}_on is not null"
        for t in THRESHOLDS
    )
    return query(
        con,
        f"select month, threshold, count(*) as crossings from ({parts})"
        " group by all order by month, threshold",
        params * len(THRESHOLDS),
    )


def limit_reached(con: duckdb.DuckDBPyConnection, flt: UsageFilter) -> pd.DataFrame:
    """The periods that reached 100 % of their limit, with the overage priced in the contract's currency."""
    where, params = flt.where()
    return query(
        con,
        f"""
        select crossed_100_on, customer_id, entitlement_code, period_start, period_end, limit_quantity,
               used_quantity, pct_used, overage_quantity, overage_value, currency
        from {BREACHES_TABLE} where {where} and threshold_crossed = 100
        order by overage_value desc, crossed_100_on desc, breach_id
        """,
        params,
    )


def utilisation(con: duckdb.DuckDBPyConnection, flt: UsageFilter) -> pd.DataFrame:
    """Completed periods with a limit: each one's pct_used (the distribution's data)."""
    where, params = flt.where()
    return query(
        con,
        f"""
        select entitlement_code, unit, period_start, pct_used
        from {PERIODS_TABLE}
        where {where} and is_complete and limit_quantity is not null
        order by entitlement_code, period_start, allowance_period_id
        """,
        params,
    )


def utilisation_summary(con: duckdb.DuckDBPyConnection, flt: UsageFilter) -> pd.DataFrame:
    """Per entitlement: completed periods with a limit, median and 90th percentile use, shares over 80 %
    and under 10 %."""
    where, params = flt.where()
    return query(
        con,
        f"""
        select entitlement_code, unit, count(*) as periods,
               round(median(pct_used), 1) as median_pct,
               round(quantile_cont(pct_used, 0.9), 1) as p90_pct,
               round(100.0 * count(*) filter (where pct_used >= 80) / count(*), 1) as over_80_pct,
               round(100.0 * count(*) filter (where pct_used < 10) / count(*), 1) as under_10_pct
        from {PERIODS_TABLE}
        where {where} and is_complete and limit_quantity is not null
        group by all order by entitlement_code
        """,
        params,
    )


def underused(con: duckdb.DuckDBPyConnection, flt: UsageFilter) -> pd.DataFrame:
    """Lines under 10 % of their limit over their last completed periods: candidates for review."""
    where, params = _underused_where(flt)
    return query(
        con,
        f"""
        select customer_id, contract_id, package_code, entitlement_code, unit, periods_assessed,
               first_period_start, last_period_end, limit_quantity, used_quantity, pct_used, is_in_force
        from {UNDERUSED_TABLE} where {where}
        order by pct_used, customer_id, entitlement_code
        """,
        params,
    )


def crossings_figure(by_month: pd.DataFrame) -> go.Figure:
    df = by_month.assign(threshold=by_month["threshold"].astype(str) + " %")
    fig = px.bar(
        df,
        x="month",
        y="crossings",
        color="threshold",
        barmode="group",
        color_discrete_map={f"{t} %": c for t, c in THRESHOLD_COLORS.items()},
        category_orders={"threshold": [f"{t} %" for t in THRESHOLDS]},
        title="Allowance periods crossing 80, 90 and 100 % of their limit, by month of the crossing",
    )
    fig.update_xaxes(dtick="M1", tickformat=MONTH_TICKS, title_text="")
    fig.update_yaxes(title_text="periods")
    return fig


def utilisation_figure(periods: pd.DataFrame) -> go.Figure:
    """Histogram of use as a share of the limit, one panel per entitlement; the last bin is over 100 %."""
    df = periods.assign(pct=periods["pct_used"].clip(upper=109.9))
    codes = sorted(df["entitlement_code"].unique())
    fig = px.histogram(
        df,
        x="pct",
        facet_col="entitlement_code",
        facet_col_wrap=2,
        facet_row_spacing=0.14,
        category_orders={"entitlement_code": codes},
        nbins=11,
        range_x=[0, 110],
        title="Use as a share of the limit, completed periods (the last bar: over the limit)",
    )
    fig.update_traces(xbins={"start": 0, "end": 110, "size": 10})
    fig.update_yaxes(matches=None, showticklabels=True, title_text="")
    fig.update_xaxes(title_text="% of limit")
    fig.update_layout(height=260 + 200 * ((len(codes) + 1) // 2), margin={"l": 10, "r": 10})
    return strip_facet_labels(fig)


# --------------------------------------------------------------------------- the headline


def headline(con: duckdb.DuckDBPyConnection, flt: UsageFilter, page: PageContext) -> Headline:
    """Periods that reached their limit (and in the as-of month against the month before), the overage's
    value per currency and the part never invoiced (the leakage mart's unbilled_overage for usage and
    over_allowance_service for deliveries: the breaches' overage counts both), the entitlements left
    unused."""
    where, params = flt.where()
    anchor = page.as_of or con.execute(f"select max(period_start) from {PERIODS_TABLE}").fetchall()[0][0]
    this_month = (anchor or date(2000, 1, 1)).replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    reached, customers, near, now, before = con.execute(
        f"""
        select count(*) filter (where threshold_crossed = 100),
               count(distinct customer_id) filter (where threshold_crossed = 100),
               count(*) filter (where threshold_crossed < 100),
               count(*) filter (where date_trunc('month', crossed_100_on) = ?),
               count(*) filter (where date_trunc('month', crossed_100_on) = ?)
        from {BREACHES_TABLE} where {where}
        """,
        [this_month, last_month, *params],
    ).fetchall()[0]
    # Overage never invoiced: leaks of the periods the filter selects (occurred_on: a usage period's
    # start, or the day of a delivery beyond its allowance).
    leak_where = where.replace("period_start", "occurred_on")
    overage = con.execute(
        f"""
        with valued as (
            select currency, sum(overage_value) as value
            from {BREACHES_TABLE} where {where} and threshold_crossed = 100 group by currency
        ),
        unbilled as (
            select currency, sum(amount) as amount
            from {LEAKAGE_TABLE}
            where {leak_where} and category in ('unbilled_overage', 'over_allowance_service')
            group by currency
        )
        select currency, coalesce(valued.value, 0), coalesce(unbilled.amount, 0)
        from valued full join unbilled using (currency)
        order by currency
        """,
        params * 2,
    ).fetchall()
    underused_where, underused_params = _underused_where(flt)
    (underused_lines,) = con.execute(
        f"select count(*) from {UNDERUSED_TABLE} where {underused_where}", underused_params
    ).fetchall()[0]
    figures = (
        Figure(
            "Limits reached",
            (count_value("limits_reached", reached, "period", note=f"{count(customers, 'customer')}"),),
            f"Allowance periods at or over 100 % of their limit; {count(near, 'more period')} crossed 80 or"
            " 90 %.",
            "warn",
        ),
        Figure(
            f"Reached in {month(this_month)}",
            (count_value("reached_this_month", now, "period", note=f"vs {month(last_month)}: {before}"),),
            "Periods whose use crossed the limit in the as-of month, against the month before.",
        ),
        Figure(
            "Overage value",
            tuple(money_value("overage_value", v, cur) for cur, v, _ in overage),
            "Use above the limit at the price-book unit price, invoiced or not.",
        ),
        Figure(
            "Overage never invoiced",
            tuple(
                money_value("overage_not_invoiced", u, cur, notes(share_of(u, v, "of the overage")))
                for cur, v, u in overage
            ),
            "Leakage: usage over the limit with no invoice line, or one short, and services delivered free"
            " beyond their allowance (the leakage report has the rows).",
            "bad",
        ),
        Figure(
            "Underused entitlements",
            (count_value("underused", underused_lines, "contract line"),),
            "Under 10 % of their limit over their last completed periods: candidates for review.",
        ),
    )
    lead = "Who reached their limits, what the overage is worth and what of it was never invoiced; then who"
    lead += " leaves their allowance unused."
    return Headline(page.report, page.title, page.as_of, page.marts_version, lead, figures)


def _underused_where(flt: UsageFilter) -> tuple[str, list]:
    if flt.entitlement is None:
        return "1 = 1", []
    return "entitlement_code = ?", [flt.entitlement]
