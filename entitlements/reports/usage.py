"""The usage and limits report's queries and figures (notebooks/usage_and_limits.py).

Reads fct_allowance_periods (every allowance period and its use), fct_limit_breaches (periods that
crossed 80 %) and fct_underused_entitlements. Overage values are in the contract's currency and
only ever summed per currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from entitlements.reports.common import parse_as_of, query, strip_facet_labels

PERIODS_TABLE = "marts.fct_allowance_periods"
BREACHES_TABLE = "marts.fct_limit_breaches"
UNDERUSED_TABLE = "marts.fct_underused_entitlements"
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
    clauses, params = ["1 = 1"], []
    if flt.entitlement is not None:
        clauses.append("entitlement_code = ?")
        params.append(flt.entitlement)
    return query(
        con,
        f"""
        select customer_id, contract_id, package_code, entitlement_code, unit, periods_assessed,
               first_period_start, last_period_end, limit_quantity, used_quantity, pct_used, is_in_force
        from {UNDERUSED_TABLE} where {" and ".join(clauses)}
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
    fig.update_xaxes(dtick="M1", tickformat="%b\n%Y", title_text="")
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
