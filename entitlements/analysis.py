"""Shared helpers for the analyst notebooks: the read-only open, mart queries, figures and tables.

Notebooks stay thin: they call these functions so every report reads the marts the same way.

Money rule: leakage amounts are in the contract's currency, so every total here is grouped by
currency; nothing ever adds USD to EUR.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio
from plotly.io.base_renderers import MimetypeRenderer
from plotly.offline import get_plotlyjs

from entitlements.warehouse import PROJECT_ROOT, connect

LEAKAGE_TABLE = "marts.fct_revenue_leakage"

# Fixed order and colours so a category looks the same in every chart and report.
LEAKAGE_CATEGORIES: tuple[str, ...] = (
    "unbilled_service",
    "uncovered_service",
    "over_allowance_service",
    "premium_service_on_standard",
    "unbilled_overage",
    "under_billed",
    "post_expiry_usage",
    "unapproved_override",
)
CATEGORY_COLORS: dict[str, str] = dict(
    zip(LEAKAGE_CATEGORIES, px.colors.qualitative.Safe + px.colors.qualitative.Vivid, strict=False)
)

# Columns holding an amount of money (DECIMAL(18,2) in the marts).
MONEY_COLUMNS: tuple[str, ...] = ("amount", "total_amount", "annual_value")

# Long free text: wrapped in a wide column; everything else stays on one line.
WRAP_COLUMNS: tuple[str, ...] = ("explanation", "categories")

RENDERER_NAME = "entitlements_offline"
_TABLE_NAME = re.compile(r"^[a-z0-9_]+$")


# --------------------------------------------------------------------------- warehouse


def resolve_warehouse(path: Path | str) -> Path:
    """A relative path that is not found from the working directory is taken from the repository root
    (JupyterLab starts kernels in notebooks/, so the default `data/warehouse.duckdb` still works)."""
    path = Path(path).expanduser()
    if not path.is_absolute() and not path.exists() and (PROJECT_ROOT / path).exists():
        return PROJECT_ROOT / path
    return path


def open_warehouse(path: Path | str) -> duckdb.DuckDBPyConnection:
    """Open the warehouse read-only (never blocks or alters a build)."""
    return connect(resolve_warehouse(path), read_only=True)


def query(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence | None = None) -> pd.DataFrame:
    """Run a query and return a DataFrame (DECIMAL comes back as float64, exact to the cent)."""
    return con.execute(sql, list(params or [])).df()


# --------------------------------------------------------------------------- filters


def parse_as_of(value: date | datetime | str | None) -> date | None:
    """`as_of` parameter -> date (ISO string, date or None for 'everything')."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


@dataclass(frozen=True)
class LeakageFilter:
    """Filters shared by every leakage query: leaks on or before `as_of`, one `currency` or all."""

    as_of: date | None = None
    currency: str | None = None

    def where(self) -> tuple[str, list]:
        clauses, params = ["1 = 1"], []
        if self.as_of is not None:
            clauses.append("occurred_on <= ?")
            params.append(self.as_of)
        if self.currency is not None:
            clauses.append("currency = ?")
            params.append(self.currency)
        return " and ".join(clauses), params

    def describe(self) -> str:
        as_of = f"leaks on or before {self.as_of.isoformat()}" if self.as_of else "all leaks"
        currency = f"currency {self.currency}" if self.currency else "all currencies (never summed together)"
        return f"{as_of}; {currency}"


def leakage_filter(
    con: duckdb.DuckDBPyConnection, as_of: date | str | None = None, currency: str | None = None
) -> LeakageFilter:
    """Validate the notebook parameters against the warehouse and build the filter."""
    cur = currency.strip().upper() if currency else None
    if cur is not None:
        known = {r[0] for r in con.execute(f"select distinct currency from {LEAKAGE_TABLE}").fetchall()}
        if cur not in known:
            have = ", ".join(sorted(known))
            raise ValueError(f"currency {currency!r} not in the leakage mart (has: {have})")
    return LeakageFilter(as_of=parse_as_of(as_of), currency=cur)


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
    clauses, params = ["1 = 1"], []
    if flt.as_of is not None:
        clauses.append("period_month <= ?")
        params.append(flt.as_of)
    if flt.currency is not None:
        clauses.append("currency = ?")
        params.append(flt.currency)
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
        from {KPI_TABLE} where {" and ".join(clauses)}
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


# --------------------------------------------------------------------------- figures


class OfflineHtmlRenderer(MimetypeRenderer):
    """Plotly renderer for self-contained reports.

    On first use it emits plotly.js inline (once per kernel); each figure is then a small
    text/html snippet with no CDN script (no require.js, no MathJax). Combined with the
    `plotly_mimetype` renderer, JupyterLab still shows its native interactive widget.
    """

    def activate(self) -> None:
        from IPython.display import display_html

        display_html(
            "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>"
            f"<script>{get_plotlyjs()}</script>",
            raw=True,
        )

    def to_mimebundle(self, fig_dict: dict) -> dict:
        html = pio.to_html(
            fig_dict,
            include_plotlyjs=False,
            include_mathjax=False,
            full_html=False,
            default_width="100%",
            default_height=520,
            config={"displaylogo": False, "responsive": True},
            validate=False,
        )
        return {"text/html": html}


def setup_plotly() -> None:
    """Make figures render offline: call once at the top of a notebook."""
    if RENDERER_NAME not in pio.renderers:
        pio.renderers[RENDERER_NAME] = OfflineHtmlRenderer()
    pio.renderers.default = f"plotly_mimetype+{RENDERER_NAME}"
    pio.templates.default = "plotly_white"


def figure_or_note(df: pd.DataFrame, build, note: str = "No leakage matches the filters."):
    """`build(df)` when there is data, else a short Markdown note instead of an empty chart."""
    if df.empty:
        from IPython.display import Markdown

        return Markdown(f"_{note}_")
    return build(df)


def _strip_facet_labels(fig: go.Figure) -> go.Figure:
    # "currency=USD" -> "USD"
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    return fig


def _category_order(categories: Iterable[str]) -> list[str]:
    present = set(categories)
    known = [c for c in LEAKAGE_CATEGORIES if c in present]
    return known + sorted(present - set(known))


def category_totals_figure(category_totals: pd.DataFrame) -> go.Figure:
    """Horizontal bars of leakage per category, one panel per currency (own axis each)."""
    df = category_totals.copy()
    currencies = sorted(df["currency"].unique())
    order = _category_order(df["category"])
    fig = px.bar(
        df,
        x="total_amount",
        y="category",
        color="category",
        orientation="h",
        facet_col="currency",
        facet_col_spacing=0.08,
        category_orders={"category": order, "currency": currencies},
        color_discrete_map=CATEGORY_COLORS,
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
    return _strip_facet_labels(fig)


_MONTH_BAR_MS = 24 * 24 * 3600 * 1000  # 24 days


def monthly_trend_figure(trend: pd.DataFrame) -> go.Figure:
    """Stacked monthly bars by category, one row per currency (own axis each)."""
    df = trend.copy()
    df["month"] = pd.to_datetime(df["month"])
    currencies = sorted(df["currency"].unique())
    fig = px.bar(
        df,
        x="month",
        y="total_amount",
        color="category",
        facet_row="currency",
        facet_row_spacing=0.07,
        category_orders={"category": _category_order(df["category"]), "currency": currencies},
        color_discrete_map=CATEGORY_COLORS,
        custom_data=["currency", "leak_count"],
        title="Leakage by month and category, per currency",
    )
    fig.update_traces(
        hovertemplate="%{x|%b %Y}<br>%{y:,.2f} %{customdata[0]}<br>%{customdata[1]} leaks<extra></extra>"
    )
    fig.update_yaxes(matches=None, title_text="", tickformat=",.0f")
    # A fixed bar width (not the gap between a trace's months) so sparse currencies still get thin bars.
    fig.update_traces(width=_MONTH_BAR_MS)
    fig.update_xaxes(dtick="M1", tickformat="%b\n%Y", title_text="")
    fig.update_layout(
        barmode="stack",
        height=180 + 240 * len(currencies),
        legend={"title": "category", "orientation": "h", "y": -0.12},
        margin={"l": 10, "r": 40},
    )
    return _strip_facet_labels(fig)


# --------------------------------------------------------------------------- tables


_TABLE_STYLES = [
    {"selector": "", "props": "border-collapse: collapse; font-size: 13px"},
    {"selector": "th", "props": "text-align: left; padding: 4px 10px; border-bottom: 1px solid #999"},
    {"selector": "td", "props": "padding: 3px 10px; border-bottom: 1px solid #eee"},
]


class ReportTables:
    """Shows tables in the notebook and, when `out_dir` is set, writes each as `<name>_<table>.csv`."""

    def __init__(self, name: str, out_dir: Path | str | None = None):
        self.name = name
        self.out_dir = Path(out_dir) if out_dir else None
        self.written: dict[str, Path] = {}
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)

    def save(self, df: pd.DataFrame, table: str, *, money: Sequence[str] = MONEY_COLUMNS) -> Path | None:
        """Write the CSV only (e.g. a figure's data). Money columns are written with exactly two decimals."""
        if not _TABLE_NAME.match(table):
            raise ValueError(f"table name {table!r} must be lower_snake_case")
        if self.out_dir is None:
            return None
        path = self.out_dir / f"{self.name}_{table}.csv"
        out = df.copy()
        for c in money:
            if c in out.columns:
                out[c] = out[c].map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
        out.to_csv(path, index=False, date_format="%Y-%m-%d")
        self.written[table] = path
        return path

    def show(
        self,
        df: pd.DataFrame,
        table: str,
        *,
        money: Sequence[str] = MONEY_COLUMNS,
        wrap: Sequence[str] = WRAP_COLUMNS,
        caption: str | None = None,
        links: Mapping[str, str] | None = None,
    ):
        """Save `df` and return a styled table for display (index hidden, money with separators).

        links: column -> link text; the column holds relative URLs, shown as links (kept as URLs in the CSV).
        """
        self.save(df, table, money=money)
        fmt = {c: "{:,.2f}" for c in money if c in df.columns}
        for column, text in (links or {}).items():
            fmt[column] = lambda url, text=text: f'<a href="{html.escape(url)}">{text}</a>' if url else ""
        for c in df.columns:
            if pd.api.types.is_datetime64_any_dtype(df[c]):
                fmt[c] = lambda v: "" if pd.isna(v) else v.strftime("%Y-%m-%d")
            elif c.endswith("_pct"):
                fmt[c] = "{:.1f}%"
        # Source text (a customer name, a legacy field) is escaped: it is data, not markup.
        styler = df.style.format(fmt, na_rep="", escape="html").hide(axis="index")
        styler = styler.set_table_styles(_TABLE_STYLES)
        num_cols = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
        text_cols = [c for c in df.columns if c not in num_cols]
        wrap_cols = [c for c in text_cols if c in wrap]
        nowrap_cols = [c for c in df.columns if c not in wrap_cols]
        if num_cols:
            styler = styler.set_properties(subset=num_cols, **{"text-align": "right"})
        if text_cols:
            styler = styler.set_properties(subset=text_cols, **{"text-align": "left"})
        if nowrap_cols:
            styler = styler.set_properties(subset=nowrap_cols, **{"white-space": "nowrap"})
        if wrap_cols:
            wrapped = {"min-width": "380px", "white-space": "normal"}
            styler = styler.set_properties(subset=wrap_cols, **wrapped)
        if caption:
            styler = styler.set_caption(caption)
        return styler
