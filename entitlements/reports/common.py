"""The pieces every notebook and report shares: the read-only open, queries, parameters, tables, figures.

The look (formats, the headline band, the table component, the index page) is layout.py's; tables shown
here are the component's (sortable, filterable, paged), with each row's amounts in its currency's
decimals, and a leakage category with its colour.

Tables are shown styled and, when the report runner passes out_dir, written as CSV (money with exactly
two decimals); figures render offline (plotly.js embedded once per page, no CDN): in the notebook's
output, or, on the report runner's kernel, in the page's head by the runner (render.PLOTLYJS_ENV).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import html
import importlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio
from pandas.io.formats.style import Styler
from plotly.io.base_renderers import MimetypeRenderer
from plotly.offline import get_plotlyjs

from entitlements.reports import layout
from entitlements.reports.render import (
    PLOTLYJS_ENV,
    PLOTLYJS_SCRIPTS,
    TITLES,
    marts_fingerprint,
    report_reads,
)
from entitlements.serve.spreadsheet import safe_frame
from entitlements.warehouse import DBT_PROJECT_DIR, PROJECT_ROOT, connect_marts, freeze_heap
from entitlements.warehouse import built_as_of as warehouse_as_of

# Columns holding an amount of money (DECIMAL(18,2) in the marts).
MONEY_COLUMNS: tuple[str, ...] = ("amount", "total_amount", "annual_value")

# Long free text: wrapped in a wide column; everything else stays on one line.
WRAP_COLUMNS: tuple[str, ...] = ("explanation", "categories")

# Columns holding one leakage category: shown with the category's colour.
CATEGORY_COLUMNS: tuple[str, ...] = ("category", "largest_category")

RENDERER_NAME = "entitlements_offline"
_FIGURE_ID = "entitlements-figure-id"  # replaced by a digest of the figure (OfflineHtmlRenderer)

# The leakage categories' one definition, which dbt reads too (the seed leakage_categories).
LEAKAGE_CATEGORIES_SEED = DBT_PROJECT_DIR / "seeds" / "leakage_categories.csv"
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
    """Open the warehouse read-only (never blocks or alters a build); refused while the last build is
    unfinished (warehouse.connect_marts)."""
    return connect_marts(resolve_warehouse(path))


def query(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence | None = None) -> pd.DataFrame:
    """Run a query and return a DataFrame (DECIMAL comes back as float64, exact to the cent)."""
    return con.execute(sql, list(params or [])).df()


@functools.cache
def leakage_categories() -> tuple[dict[str, str], ...]:
    """The leakage categories in display order, each a row of the seed leakage_categories.csv
    (category, display_order, colour as hex, label in plain words, description)."""
    with LEAKAGE_CATEGORIES_SEED.open(newline="", encoding="utf-8") as handle:
        return tuple(sorted(csv.DictReader(handle), key=lambda row: int(row["display_order"])))


@functools.cache
def category_colours() -> dict[str, str]:
    """Leakage category -> its colour (the seed's), the same in every chart, table and headline."""
    return {row["category"]: row["colour"] for row in leakage_categories()}


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class PageContext:
    """What a report's header shows besides its figures: its name and title, the date its marts answer
    for, and the marts' version (their content fingerprint)."""

    report: str
    title: str
    as_of: date | None
    marts_version: str | None


def page_context(
    con: duckdb.DuckDBPyConnection,
    report_name: str,
    *,
    as_of: date | datetime | str | None = None,
    marts_version: str | None = None,
    built_as_of: date | datetime | str | None = None,
) -> PageContext:
    """The header's facts. The report runner passes marts_version and built_as_of (it has read both);
    a notebook run by hand reads them here: as_of, else the last build's as-of date."""
    if marts_version is None and report_name in report_reads():
        marts_version = marts_fingerprint(con, report_reads()[report_name])
    shown = parse_as_of(as_of) or parse_as_of(built_as_of) or warehouse_as_of(con)
    return PageContext(report_name, TITLES.get(report_name, report_name), shown, marts_version)


def parse_as_of(value: date | datetime | str | None) -> date | None:
    """`as_of` parameter -> date (ISO string, date or None for 'everything')."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


# --------------------------------------------------------------------------- figures


class OfflineHtmlRenderer(MimetypeRenderer):
    """Plotly renderer for self-contained reports.

    On first use it emits plotly.js inline (once per kernel); each figure is then a small
    text/html snippet with no CDN script (no require.js, no MathJax). Combined with the
    `plotly_mimetype` renderer, JupyterLab still shows its native interactive widget.
    """

    def activate(self) -> None:
        if os.environ.get(PLOTLYJS_ENV) == "page":  # the report runner puts it in the page's head
            return
        from IPython.display import display_html

        display_html(PLOTLYJS_SCRIPTS.format(plotlyjs=get_plotlyjs()), raw=True)

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
            div_id=_FIGURE_ID,
        )
        # plotly names each figure's div with a random uuid; named after its content instead, the same
        # marts draw the same page byte for byte.
        digest = hashlib.sha256(html.encode()).hexdigest()[:16]
        return {"text/html": html.replace(_FIGURE_ID, f"figure-{digest}")}


def setup_plotly() -> None:
    """Make figures render offline: call once at the top of a notebook."""
    if RENDERER_NAME not in pio.renderers:
        pio.renderers[RENDERER_NAME] = OfflineHtmlRenderer()
    pio.renderers.default = f"plotly_mimetype+{RENDERER_NAME}"
    pio.templates.default = "plotly_white"


def figure_or_note(df: pd.DataFrame, build, note: str = "Nothing matches the filters."):
    """`build(df)` when there is data, else a short Markdown note instead of an empty chart."""
    if df.empty:
        from IPython.display import Markdown

        return Markdown(f"_{note}_")
    return build(df)


def strip_facet_labels(fig: go.Figure) -> go.Figure:
    # "currency=USD" -> "USD"
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    return fig


# --------------------------------------------------------------------------- tables


_TABLE_STYLES = [
    {"selector": "", "props": "border-collapse: collapse; font-size: 13px"},
    {"selector": "th", "props": "text-align: left; padding: 4px 10px; border-bottom: 1px solid #999"},
    {"selector": "td", "props": "padding: 3px 10px; border-bottom: 1px solid #eee"},
]


def _quantity(value: float) -> str:
    """A quantity as read: thousands separated, no trailing zeros (DECIMAL(18,4) arrives as float)."""
    if pd.isna(value):
        return ""
    return f"{value:,.4f}".rstrip("0").rstrip(".")


class ReportTables:
    """Shows tables in the notebook and, when `out_dir` is set, writes each as `<name>_<table>.csv`."""

    def __init__(self, name: str, out_dir: Path | str | None = None):
        self.name = name
        self.out_dir = Path(out_dir) if out_dir else None
        self.written: dict[str, Path] = {}
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)

    def headline(self, headline: layout.Headline):
        """Write `<name>_headline.json` (the index page shows it) and return the band for display: as it
        is on the report runner (the page's head has the styles), with the styles in JupyterLab."""
        if self.out_dir is not None:
            headline.save(self.out_dir)
        if os.environ.get(PLOTLYJS_ENV) == "page":
            return headline
        from IPython.display import HTML

        return HTML(layout.page_styles() + headline._repr_html_())  # no script: tables stay as they are

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
        safe_frame(out).to_csv(path, index=False, date_format="%Y-%m-%d")
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
        colours = category_colours()
        for column in CATEGORY_COLUMNS:  # a leakage category shows its colour, as in the charts
            if column in df.columns and column not in fmt:
                fmt[column] = lambda v: (
                    (layout.chip(colours[v]) + v) if v in colours else ("" if pd.isna(v) else v)
                )
        for c in df.columns:
            if c in fmt:
                continue
            if pd.api.types.is_datetime64_any_dtype(df[c]):
                fmt[c] = lambda v: "" if pd.isna(v) else v.strftime("%Y-%m-%d")
            elif c.endswith("_pct"):
                fmt[c] = "{:.1f}%"
            elif pd.api.types.is_float_dtype(df[c]):
                fmt[c] = _quantity
        # Source text (a customer name, a legacy field) is escaped: it is data, not markup.
        # No id per cell: no rule styles one cell (column_styles below), and ids are most of a cell's markup.
        styler = Styler(df, cell_ids=False).format(fmt, na_rep="", escape="html").hide(axis="index")
        money_cols = [c for c in money if c in df.columns]
        if money_cols and "currency" in df.columns:  # each row's amounts with its currency's decimals (JPY 0)
            for currency in sorted(df["currency"].dropna().unique()):
                if (places := layout.decimals(currency)) != 2:
                    rows = df.index[df["currency"] == currency]
                    styler = styler.format(f"{{:,.{places}f}}", subset=(rows, money_cols), na_rep="")
        # Named, not a random uuid (the same page for the same marts); the table component's class.
        styler = styler.set_uuid(f"{self.name}_{table}").set_table_attributes(layout.table_attributes(table))
        styler = styler.set_table_styles(_TABLE_STYLES)
        num_cols = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
        text_cols = [c for c in df.columns if c not in num_cols]
        wrap_cols = [c for c in text_cols if c in wrap]
        # One CSS rule per column (its cells' class col<n>), not set_properties' rule per cell: a
        # 400-row table renders in 0.045 s instead of 0.067 s, with half the markup.
        column_styles = {
            c: [
                {
                    "selector": "td",
                    "props": [("text-align", "right" if c in num_cols else "left")]
                    + (
                        [("min-width", "380px"), ("white-space", "normal")]
                        if c in wrap_cols
                        else [("white-space", "nowrap")]
                    ),
                }
            ]
            for c in df.columns
        }
        styler = styler.set_table_styles(column_styles, overwrite=False)
        if caption:
            styler = styler.set_caption(caption)
        return styler


# --------------------------------------------------------------------------- the report kernel


def warm_up(modules: Sequence[str]) -> None:
    """Import the report modules and build one small figure and table of each kind the reports draw,
    displaying nothing: a new kernel pays for plotly's and pandas' lazy loading (trace validators,
    templates, the Styler's template) here, ahead, instead of in the first notebook's cells. Only
    caches are filled; no setting a notebook reads (renderer, default template) is changed."""
    for module in modules:
        importlib.import_module(f"entitlements.reports.{module}")
    frame = pd.DataFrame({"label": ["a", "b"], "value": [1.0, 2.0], "panel": ["p", "q"]})
    figures = (
        px.bar(frame, x="value", y="label", color="label", facet_col="panel", template="plotly_white"),
        px.histogram(frame, x="value", facet_col="panel", facet_col_wrap=2, template="plotly_white"),
    )
    _ = pio.renderers.default  # plotly.io's renderers are imported on first use (setup_plotly's)
    for fig in figures:
        strip_facet_labels(fig).update_layout(showlegend=False, margin={"l": 10, "r": 10})
        OfflineHtmlRenderer().to_mimebundle(fig.to_dict())
        pio.to_json(fig, validate=False)  # what the plotly_mimetype renderer sends
    ReportTables("warm_up").show(frame, "warm_up", money=("value",))._repr_html_()
    with duckdb.connect() as con:  # DuckDB's first query and its first result as a DataFrame
        query(con, "select 1.5::decimal(18, 2) as amount, current_date as day")
    freeze_heap()  # what the notebooks use stays; the reset between two of them collects the rest
