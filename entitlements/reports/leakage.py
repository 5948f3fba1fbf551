"""The leakage explorer's queries and figures (notebooks/leakage_explorer.py).

Money rule: leakage amounts are in the contract's currency, so every total here is grouped by
currency; nothing ever adds USD to EUR.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import duckdb
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from entitlements.reports.common import (
    PageContext,
    category_colours,
    leakage_categories,
    parse_as_of,
    query,
    strip_facet_labels,
)
from entitlements.reports.layout import (
    MONTH_TICKS,
    Figure,
    Headline,
    Value,
    count,
    money,
    money_value,
    month,
    notes,
    percent,
    percent_value,
    share_of,
)

LEAKAGE_TABLE = "marts.fct_revenue_leakage"

# Fixed order and colours so a category looks the same in every chart and report: the seed
# leakage_categories, which dbt reads too.
LEAKAGE_CATEGORIES: tuple[str, ...] = tuple(row["category"] for row in leakage_categories())
CATEGORY_COLORS: dict[str, str] = {row["category"]: row["colour"] for row in leakage_categories()}


@dataclass(frozen=True)
class LeakageFilter:
    """Filters shared by every leakage query: leaks on or before `as_of`, one `currency` or all, and
    for a drill-down one `customer` and/or one `category`."""

    as_of: date | None = None
    currency: str | None = None
    customer: str | None = None
    category: str | None = None

    def where(self) -> tuple[str, list]:
        clauses, params = ["1 = 1"], []
        for column, value in (
            ("currency", self.currency),
            ("customer_id", self.customer),
            ("category", self.category),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.as_of is not None:
            clauses.append("occurred_on <= ?")
            params.append(self.as_of)
        return " and ".join(clauses), params

    def kpi_where(self) -> tuple[str, list]:
        """The KPI mart's rows this filter keeps (months up to as_of, one currency): it has no
        customer or category."""
        clauses, params = ["1 = 1"], []
        if self.as_of is not None:
            clauses.append("period_month <= ?")
            params.append(self.as_of)
        if self.currency is not None:
            clauses.append("currency = ?")
            params.append(self.currency)
        return " and ".join(clauses), params

    def describe(self) -> str:
        parts = [f"leaks on or before {self.as_of.isoformat()}" if self.as_of else "all leaks"]
        parts.append(
            f"currency {self.currency}" if self.currency else "all currencies (never summed together)"
        )
        if self.customer:
            parts.append(f"customer {self.customer}")
        if self.category:
            parts.append(f"category {self.category}")
        return "; ".join(parts)


def leakage_filter(
    con: duckdb.DuckDBPyConnection,
    as_of: date | str | None = None,
    currency: str | None = None,
    customer: str | None = None,
    category: str | None = None,
) -> LeakageFilter:
    """Validate the notebook parameters against the warehouse and build the filter.

    An unknown currency, customer or category is an error naming what the mart has, not an empty report.
    """
    cur = currency.strip().upper() if currency else None
    for column, value, label in (("currency", cur, "currency"), ("customer_id", customer, "customer")):
        if value is not None:
            known = {r[0] for r in con.execute(f"select distinct {column} from {LEAKAGE_TABLE}").fetchall()}
            if value not in known:
                have = ", ".join(sorted(known)[:20]) + (", ..." if len(known) > 20 else "")
                raise ValueError(f"{label} {value!r} has no leakage in the mart (has: {have})")
    if category is not None and category not in LEAKAGE_CATEGORIES:
        raise ValueError(f"category {category!r} is not one of: {', '.join(LEAKAGE_CATEGORIES)}")
    return LeakageFilter(as_of=parse_as_of(as_of), currency=cur, customer=customer or None, category=category)


# --------------------------------------------------------------------------- leakage queries


def leakage_overview(con: duckdb.DuckDBPyConnection, flt: LeakageFilter) -> pd.DataFrame:
    """One row: how many leaks, customers and the date span under the filter."""
    where, params = flt.where()
    return query(
        con,
        f"""
        select count(*) as leak_count,
               count(distinct customer_id) as customer_count,
               count(distinct currency) as currency_count,
               min(occurred_on) as first_occurred_on,
               max(occurred_on) as last_occurred_on
        from {LEAKAGE_TABLE} where {where}
        """,
        params,
    )


def scope_note(con: duckdb.DuckDBPyConnection, flt: LeakageFilter):
    """A Markdown paragraph saying what the report covers."""
    from IPython.display import Markdown

    o = leakage_overview(con, flt).iloc[0]
    text = f"**Filters:** {flt.describe()}.  \n"
    text += f"**{o.leak_count:,}** leakage rows for **{o.customer_count:,}** customers"
    if o.leak_count:
        text += f", occurred {o.first_occurred_on:%Y-%m-%d} to {o.last_occurred_on:%Y-%m-%d}"
    return Markdown(text + ".")


def leakage_currency_totals(con: duckdb.DuckDBPyConnection, flt: LeakageFilter) -> pd.DataFrame:
    """Total leakage per currency (the headline numbers)."""
    where, params = flt.where()
    return query(
        con,
        f"""
        select currency,
               sum(amount) as total_amount,
               count(*) as leak_count,
               count(distinct customer_id) as customer_count,
               min(occurred_on) as first_occurred_on,
               max(occurred_on) as last_occurred_on
        from {LEAKAGE_TABLE} where {where}
        group by currency
        order by currency
        """,
        params,
    )


def leakage_category_totals(con: duckdb.DuckDBPyConnection, flt: LeakageFilter) -> pd.DataFrame:
    """Leakage per currency and category, with each category's share of its currency's total."""
    where, params = flt.where()
    return query(
        con,
        f"""
        select currency,
               category,
               sum(amount) as total_amount,
               count(*) as leak_count,
               round(100 * sum(amount) / sum(sum(amount)) over (partition by currency), 1)
                   as share_of_currency_pct
        from {LEAKAGE_TABLE} where {where}
        group by currency, category
        order by currency, total_amount desc, category
        """,
        params,
    )


def leakage_monthly_trend(con: duckdb.DuckDBPyConnection, flt: LeakageFilter) -> pd.DataFrame:
    """Leakage per calendar month (of occurred_on), currency and category."""
    where, params = flt.where()
    return query(
        con,
        f"""
        select date_trunc('month', occurred_on)::date as month,
               currency,
               category,
               sum(amount) as total_amount,
               count(*) as leak_count
        from {LEAKAGE_TABLE} where {where}
        group by all
        order by currency, month, category
        """,
        params,
    )


KPI_TABLE = "marts.fct_leakage_kpis"
KPI_MONEY_COLUMNS: tuple[str, ...] = (
    "billed_revenue",
    "leaked_total",
    "recoverable_value",
    "leaked_total_reporting",
)


def leakage_key_figures(con: duckdb.DuckDBPyConnection, flt: LeakageFilter) -> pd.DataFrame:
    """Per currency, from the KPI mart: billed revenue, leakage and its share of that currency's billing,
    value still recoverable, share of billable records misaligned with billing, and the leakage converted
    to the reporting currency (empty when a month lacks a rate). Months that start on or before `as_of`."""
    where, params = flt.kpi_where()
    return query(
        con,
        f"""
        select currency,
               sum(billed_revenue) as billed_revenue,
               sum(leaked_total) as leaked_total,
               round(100 * sum(leaked_total) / nullif(sum(billed_revenue), 0), 2) as leakage_share_pct,
               sum(recoverable_value) as recoverable_value,
               round(100 * sum(misaligned_records) / nullif(sum(billable_records), 0), 2) as misaligned_pct,
               case when not bool_or(is_fx_rate_missing) then sum(leaked_total_reporting) end
                   as leaked_total_reporting,
               any_value(reporting_currency) as reporting_currency
        from {KPI_TABLE} where {where}
        group by currency
        order by currency
        """,
        params,
    )


def top_leaking_customers(con: duckdb.DuckDBPyConnection, flt: LeakageFilter, n: int = 10) -> pd.DataFrame:
    """The `n` customers with the most leakage in each currency."""
    where, params = flt.where()
    return query(
        con,
        f"""
        with by_customer_category as (
            select currency, customer_id, category, sum(amount) as amount, count(*) as leaks
            from {LEAKAGE_TABLE} where {where}
            group by all
        ),
        by_customer as (
            select currency,
                   customer_id,
                   sum(amount) as total_amount,
                   sum(leaks)::bigint as leak_count,
                   arg_max(category, amount) as largest_category,
                   string_agg(category, ', ' order by amount desc) as categories
            from by_customer_category
            group by all
        ),
        ranked as (
            select *,
                   row_number() over (partition by currency order by total_amount desc, customer_id) as rank,
                   round(100 * total_amount / sum(total_amount) over (partition by currency), 1)
                       as share_of_currency_pct
            from by_customer
        )
        select currency, rank, customer_id, total_amount, leak_count, share_of_currency_pct,
               largest_category, categories
        from ranked
        where rank <= ?
        order by currency, rank
        """,
        [*params, n],
    )


def largest_leaks(con: duckdb.DuckDBPyConnection, flt: LeakageFilter, n: int = 10) -> pd.DataFrame:
    """Drill-down: the `n` largest evidence rows per currency, with their explanation."""
    where, params = flt.where()
    return query(
        con,
        f"""
        select currency, amount, customer_id, category, occurred_on, explanation, evidence_type, evidence_id,
               entitlement_code, contract_id
        from {LEAKAGE_TABLE} where {where}
        qualify row_number() over (partition by currency order by amount desc, leakage_id) <= ?
        order by currency, amount desc, leakage_id
        """,
        [*params, n],
    )


def leakage_by_entitlement(con: duckdb.DuckDBPyConnection, flt: LeakageFilter) -> pd.DataFrame:
    """Leakage per currency and entitlement (or package, for a subscription line), largest first."""
    where, params = flt.where()
    return query(
        con,
        f"""
        select currency,
               coalesce(entitlement_code, '(none)') as entitlement_code,
               sum(amount) as total_amount,
               count(*) as leak_count,
               count(distinct customer_id) as customer_count,
               string_agg(distinct category, ', ' order by category) as categories
        from {LEAKAGE_TABLE} where {where}
        group by all
        order by currency, total_amount desc, entitlement_code
        """,
        params,
    )


def evidence_rows(con: duckdb.DuckDBPyConnection, flt: LeakageFilter, limit: int = 200) -> pd.DataFrame:
    """The drill-down: every leak under the filter (up to `limit`, newest first) with its evidence."""
    where, params = flt.where()
    return query(
        con,
        f"""
        select occurred_on, customer_id, category, amount, currency, evidence_type, evidence_id,
               entitlement_code, contract_id, explanation
        from {LEAKAGE_TABLE} where {where}
        order by occurred_on desc, leakage_id
        limit ?
        """,
        [*params, limit],
    )


def override_hotspots(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Where manual overrides cluster (fct_override_hotspots): per entitlement, package and approver."""
    return query(
        con,
        """
        select dimension, dimension_value, override_count, unapproved_count, customer_count, extra_quantity
        from marts.fct_override_hotspots
        order by dimension, override_count desc, dimension_value
        """,
    )


def upsell_candidates(con: duckdb.DuckDBPyConnection, flt: LeakageFilter) -> pd.DataFrame:
    """Customers over 90 % of a limit in most recent periods, with the package that would cover them."""
    clauses, params = ["1 = 1"], []
    for column, value in (("currency", flt.currency), ("customer_id", flt.customer)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    return query(
        con,
        f"""
        select customer_id, entitlement_code, unit, periods_over_90, periods_assessed, peak_period_use,
               current_package_code, current_limit_quantity, recommended_package_code,
               recommended_limit_quantity, covers_peak_use, annual_fee_difference, currency
        from marts.fct_upsell_candidates where {" and ".join(clauses)}
        order by currency, annual_fee_difference desc, customer_id, entitlement_code
        """,
        params,
    )


# --------------------------------------------------------------------------- figures


def _category_order(categories: Iterable[str]) -> list[str]:
    present = set(categories)
    known = [c for c in LEAKAGE_CATEGORIES if c in present]
    return known + sorted(present - set(known))


# A chart names a category in the seed's plain words ("Unbilled service"), in its colour; tables and
# CSVs keep the code, which is what a filter or a query takes.
CATEGORY_LABELS: dict[str, str] = {row["category"]: row["label"] for row in leakage_categories()}
LABEL_COLORS: dict[str, str] = {CATEGORY_LABELS[c]: colour for c, colour in CATEGORY_COLORS.items()}


def _labelled(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The frame with each category's label in place of its code, and the labels in display order."""
    order = [CATEGORY_LABELS.get(c, c) for c in _category_order(frame["category"])]
    return frame.assign(category=frame["category"].map(lambda c: CATEGORY_LABELS.get(c, c))), order


def category_totals_figure(category_totals: pd.DataFrame) -> go.Figure:
    """Horizontal bars of leakage per category, one panel per currency (own axis each)."""
    df, order = _labelled(category_totals)
    currencies = sorted(df["currency"].unique())
    fig = px.bar(
        df,
        x="total_amount",
        y="category",
        color="category",
        orientation="h",
        facet_col="currency",
        facet_col_spacing=0.08,
        category_orders={"category": order, "currency": currencies},
        color_discrete_map=LABEL_COLORS,
        custom_data=["currency", "leak_count", "share_of_currency_pct"],
        title="Leakage by category, per currency",
    )
    fig.update_traces(
        hovertemplate="%{y}<br>%{x:,.2f} %{customdata[0]}<br>%{customdata[1]} leaks"
        " (%{customdata[2]}% of currency)<extra></extra>"
    )
    fig.update_xaxes(matches=None, title_text="amount", tickformat=",.0f")
    fig.update_yaxes(title_text="")
    fig.update_layout(showlegend=False, height=120 + 40 * len(order), margin={"l": 10, "r": 10})
    return strip_facet_labels(fig)


_MONTH_BAR_MS = 24 * 24 * 3600 * 1000  # 24 days


def monthly_trend_figure(trend: pd.DataFrame) -> go.Figure:
    """Stacked monthly bars by category, one row per currency (own axis each)."""
    df, order = _labelled(trend)
    df["month"] = pd.to_datetime(df["month"])
    currencies = sorted(df["currency"].unique())
    fig = px.bar(
        df,
        x="month",
        y="total_amount",
        color="category",
        facet_row="currency",
        facet_row_spacing=0.07,
        category_orders={"category": order, "currency": currencies},
        color_discrete_map=LABEL_COLORS,
        custom_data=["currency", "leak_count"],
        title="Leakage by month and category, per currency",
    )
    fig.update_traces(
        hovertemplate="%{x|%Y-%m}<br>%{y:,.2f} %{customdata[0]}<br>%{customdata[1]} leaks<extra></extra>"
    )
    fig.update_yaxes(matches=None, title_text="", tickformat=",.0f")
    # A fixed bar width (not the gap between a trace's months) so sparse currencies still get thin bars.
    fig.update_traces(width=_MONTH_BAR_MS)
    fig.update_xaxes(dtick="M1", tickformat=MONTH_TICKS, title_text="")
    fig.update_layout(
        barmode="stack",
        height=180 + 240 * len(currencies),
        legend={"title": "category", "orientation": "h", "y": -0.12},
        margin={"l": 10, "r": 40},
    )
    return strip_facet_labels(fig)


def entitlement_totals_figure(by_entitlement: pd.DataFrame) -> go.Figure:
    """Horizontal bars of leakage per entitlement, one panel per currency (own axis each)."""
    currencies = sorted(by_entitlement["currency"].unique())
    fig = px.bar(
        by_entitlement,
        x="total_amount",
        y="entitlement_code",
        orientation="h",
        facet_col="currency",
        facet_col_spacing=0.08,
        category_orders={"currency": currencies},
        custom_data=["currency", "leak_count", "categories"],
        title="Leakage by entitlement, per currency",
    )
    fig.update_traces(
        hovertemplate="%{y}<br>%{x:,.2f} %{customdata[0]}<br>%{customdata[1]} leaks: %{customdata[2]}"
        "<extra></extra>"
    )
    fig.update_xaxes(matches=None, title_text="amount", tickformat=",.0f")
    fig.update_yaxes(title_text="", matches=None, showticklabels=True)
    rows = by_entitlement["entitlement_code"].nunique()
    fig.update_layout(showlegend=False, height=140 + 34 * rows, margin={"l": 10, "r": 10})
    return strip_facet_labels(fig)


def override_hotspots_figure(hotspots: pd.DataFrame) -> go.Figure:
    """Overrides per entitlement, package and approver, approved and not."""
    long = hotspots.assign(approved=hotspots["override_count"] - hotspots["unapproved_count"]).melt(
        id_vars=["dimension", "dimension_value"],
        value_vars=["approved", "unapproved_count"],
        var_name="approval",
        value_name="overrides",
    )
    long["approval"] = long["approval"].map({"approved": "approved", "unapproved_count": "unapproved"})
    fig = px.bar(
        long,
        x="overrides",
        y="dimension_value",
        color="approval",
        orientation="h",
        facet_col="dimension",
        color_discrete_map={"approved": "#2e7d32", "unapproved": "#c62828"},
        title="Where overrides cluster",
    )
    fig.update_yaxes(matches=None, showticklabels=True, title_text="")
    fig.update_xaxes(title_text="overrides")
    fig.update_layout(barmode="stack", height=420, margin={"l": 10, "r": 10})
    return strip_facet_labels(fig)


# --------------------------------------------------------------------------- the headline


def headline(con: duckdb.DuckDBPyConnection, flt: LeakageFilter, page: PageContext) -> Headline:
    """The report's key figures, per currency: leaked in total and its share of billed revenue, still
    recoverable, the as-of month against the month before, the largest category. Leak totals follow the
    filters (a drill-down narrows them); billed revenue and recoverable value are the KPI mart's, per
    month and currency (months on or before `as_of`, one currency or all), whatever the customer."""
    where, params = flt.where()
    # The as-of month (a build without a date: the latest month with a leak)
    anchor = page.as_of or con.execute(f"select max(occurred_on) from {LEAKAGE_TABLE}").fetchall()[0][0]
    this_month = (anchor or date(2000, 1, 1)).replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    leaks = con.execute(
        f"""
        with leaks as (select * from {LEAKAGE_TABLE} where {where}),
        by_category as (
            select currency, category, sum(amount) as amount from leaks group by all
        )
        select currency,
               sum(amount) as leaked,
               count(*) as leak_count,
               count(distinct customer_id) as customers,
               coalesce(sum(amount) filter (where date_trunc('month', occurred_on) = ?), 0) as this_month,
               coalesce(sum(amount) filter (where date_trunc('month', occurred_on) = ?), 0) as last_month,
               (select arg_max(category, amount) from by_category c where c.currency = leaks.currency)
                   as largest_category,
               (select max(amount) from by_category c where c.currency = leaks.currency) as largest_amount
        from leaks
        group by currency
        order by currency
        """,
        [*params, this_month, last_month],
    ).fetchall()
    kpi_where, kpi_params = flt.kpi_where()
    kpis = {
        currency: (billed, leaked, recoverable)
        for currency, billed, leaked, recoverable in con.execute(
            f"""
            select currency, sum(billed_revenue), sum(leaked_total), sum(recoverable_value)
            from {KPI_TABLE} where {kpi_where}
            group by currency order by currency
            """,
            kpi_params,
        ).fetchall()
    }
    labels = {row["category"]: row["label"] for row in leakage_categories()}
    drilled = flt.customer is not None or flt.category is not None
    every = "all customers and categories: " if drilled else ""
    total_leaks = sum(row[2] for row in leaks)

    figures = (
        Figure(
            "Leaked in total",
            tuple(money_value("leaked_total", leaked, cur, count(n, "leak")) for cur, leaked, n, *_ in leaks),
            f"{count(total_leaks, 'leak')} for {count(sum(r[3] for r in leaks), 'customer')}."
            f" Scope: {html.escape(flt.describe())}.",
            "bad",
        ),
        Figure(
            "Share of billed revenue",
            tuple(
                percent_value("leakage_share_pct", leaked, billed, cur, f"of {money(billed, cur)}")
                for cur, (billed, leaked, _) in kpis.items()
            ),
            f"{every}leakage over the same currency's invoiced revenue; SaaS benchmarks put billing"
            " leakage at 1-5 %.",
            "warn",
        ),
        Figure(
            "Still recoverable",
            tuple(
                money_value(
                    "recoverable_value", recoverable, cur, notes(share_of(recoverable, leaked, "of it"))
                )
                for cur, (_, leaked, recoverable) in kpis.items()
            ),
            f"{every}leaks young enough to invoice now (dbt var recoverable_billing_window_days).",
            "good",
        ),
        Figure(
            f"Leaked in {month(this_month)}",
            tuple(
                money_value("leaked_this_month", now, cur, _against(now, before, cur, month(last_month)))
                for cur, _, _, _, now, before, *_ in leaks
            ),
            f"The as-of month against {month(last_month)}.",
        ),
        Figure(
            "Largest category",
            tuple(
                Value(
                    "largest_category",
                    labels.get(category, category),
                    category,
                    cur,
                    money(amount, cur),
                    colour=category_colours().get(category),
                )
                for cur, *_, category, amount in leaks
            ),
            "Each category has one colour in every chart and table.",
        ),
    )
    n_currencies = len(leaks)
    lead = (
        f"{count(total_leaks, 'leak')} found in {count(n_currencies, 'currency', 'currencies')}: "
        "the totals, what can still be invoiced and where it comes from; the evidence rows follow."
        if leaks
        else "No leakage matches the filters."
    )
    return Headline(page.report, page.title, page.as_of, page.marts_version, lead, figures)


def _against(now: object, before: object, currency: str, label: str) -> str:
    """'vs 2026-09: USD 7.76, up 12.0 %'."""
    if not before:
        return f"vs {label}: none"
    change = percent(Decimal(str(now)) - Decimal(str(before)), before) or ""
    direction = f"down {change[1:]}" if change.startswith("-") else f"up {change}"
    return f"vs {label}: {money(before, currency)}, {direction}"
