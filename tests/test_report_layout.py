"""The reports' first screen, their headline figures against the marts, the table component, the index page.

The headline numbers are read from the page as a reader's browser has it (the data attributes of each
figure, after Chromium loaded the page offline) and compared with what this module computes from the
marts with its own SQL, not with the report modules' queries. The first screen of each report
(1400 x 900) is saved under data/reports/ as `<report>_first_screen.png`. The migration report's
headline is tested with a migrated warehouse in tests/test_migration.py.
"""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from entitlements.reports import layout
from entitlements.reports.common import ReportTables
from entitlements.reports.render import REPORTS, render_report
from entitlements.warehouse import DEFAULT_REPORTS, PROJECT_ROOT
from tests.browser import browse
from tests.conftest import entitlements, query_rows, read_csv

FIRST_SCREEN = (1400, 900)
PIPELINE = ("leakage", "renewals", "usage")
SHOTS = PROJECT_ROOT / DEFAULT_REPORTS

# Per table: its name, rows, and the rows a reader sees (not hidden by the pager or the filter).
TABLES_JS = """
[...document.querySelectorAll('table.ent-table')].map(t => ({
  name: t.dataset.table, rows: t.tBodies[0].rows.length,
  visible: [...t.tBodies[0].rows].filter(r => !r.hidden).length}))
"""


# The toolbar (filter, pager) the component puts before the renewals' alerts_due table.
TOOLBAR = "div.ent-toolbar:has(+ table[data-table='alerts_due'])"


def column_js(table: str, column: int) -> str:
    """The visible cells of a table's column, top to bottom."""
    return (
        f"[...document.querySelector('table[data-table=\"{table}\"]').tBodies[0].rows]"
        f".filter(r => !r.hidden).map(r => r.cells[{column}].textContent.trim())"
    )


class _Figures(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "data-figure" in a:
            of = a.get("data-currency") or a.get("data-item") or ""
            self.found.append(f"{a['data-figure']} {of} {a.get('data-value')}")


def page_figures(text: str) -> list[str]:
    """The headline figures of a page's HTML, as the index's FIGURES lines."""
    parser = _Figures()
    parser.feed(text)
    return parser.found


def cents(value: object) -> str:
    return str(Decimal(str(value or 0)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def share(part: object, whole: object) -> str:
    return cents(Decimal(str(part)) * 100 / Decimal(str(whole)))


def month_bounds(as_of: date) -> tuple[date, date]:
    """The as-of month: its first day and the next month's."""
    first = as_of.replace(day=1)
    return first, (first + timedelta(days=32)).replace(day=1)


def expected_headline(name: str, warehouse: Path, as_of: date) -> dict[tuple[str, str], str]:
    """What the headline of report `name` must show, computed here from the marts."""
    rows = lambda sql, params=None: query_rows(warehouse, sql, params)  # noqa: E731
    this_month, next_month = month_bounds(as_of)
    out: dict[tuple[str, str], str] = {}
    if name == "leakage":
        for r in rows(
            "select currency, sum(amount) as total,"
            " sum(amount) filter (where occurred_on >= ? and occurred_on < ?) as now"
            " from marts.fct_revenue_leakage group by currency",
            [this_month, next_month],
        ):
            out["leaked_total", r["currency"]] = cents(r["total"])
            out["leaked_this_month", r["currency"]] = cents(r["now"])
        for r in rows(
            "select currency, category, sum(amount) as amount from marts.fct_revenue_leakage group by 1, 2"
            " qualify row_number() over (partition by currency order by sum(amount) desc) = 1"
        ):
            out["largest_category", r["currency"]] = r["category"]
        for r in rows(
            "select currency, sum(billed_revenue) as billed, sum(leaked_total) as leaked,"
            " sum(recoverable_value) as recoverable from marts.fct_leakage_kpis group by currency"
        ):
            out["leakage_share_pct", r["currency"]] = share(r["leaked"], r["billed"])
            out["recoverable_value", r["currency"]] = cents(r["recoverable"])
    elif name == "renewals":
        for r in rows(
            "select currency,"
            " sum(annual_value) filter (where days_to_expiry between 0 and 90"
            "   and renewal_window <> 'renewed') as renewing,"
            " sum(value_at_risk) filter (where days_to_expiry between 0 and 90) as at_risk,"
            " sum(annual_value) filter (where renewal_window = 'expired_not_renewed') as missed"
            " from marts.fct_renewal_pipeline group by currency"
        ):
            out["renewing_value_90d", r["currency"]] = cents(r["renewing"])
            out["value_at_risk_90d", r["currency"]] = cents(r["at_risk"])
            out["missed_value", r["currency"]] = cents(r["missed"])
        (due,) = rows(
            "select count(*) as n from marts.fct_renewal_alerts where is_due and alert_status = 'due'"
        )
        out["alerts_due", ""] = str(due["n"])
    elif name == "usage":
        (reached,) = rows(
            "select count(*) as n, count(*) filter (where crossed_100_on >= ? and crossed_100_on < ?) as now"
            " from marts.fct_limit_breaches where crossed_100_on is not null",
            [this_month, next_month],
        )
        out["limits_reached", ""] = str(reached["n"])
        out["reached_this_month", ""] = str(reached["now"])
        overage: dict[str, Decimal] = defaultdict(Decimal)
        unbilled: dict[str, Decimal] = defaultdict(Decimal)
        for r in rows(
            "select currency, sum(overage_value) as v from marts.fct_limit_breaches"
            " where crossed_100_on is not null group by currency"
        ):
            overage[r["currency"]] += r["v"]
        for r in rows(
            "select currency, sum(amount) as v from marts.fct_revenue_leakage"
            " where category in ('unbilled_overage', 'over_allowance_service') group by currency"
        ):
            unbilled[r["currency"]] += r["v"]
        for cur in overage.keys() | unbilled.keys():
            out["overage_value", cur] = cents(overage[cur])
            out["overage_not_invoiced", cur] = cents(unbilled[cur])
        (underused,) = rows("select count(*) as n from marts.fct_underused_entitlements")
        out["underused", ""] = str(underused["n"])
    return out


# --------------------------------------------------------------------------- formats (unit)


@pytest.mark.unit
def test_money_has_each_currencys_decimals_and_separators():
    assert layout.money(Decimal("1234567.5"), "USD") == "USD 1,234,567.50"
    assert layout.money(1057.5, "JPY") == "JPY 1,058"  # no decimals; half up, as prices are rounded
    assert layout.money("1.2345", "BHD") == "BHD 1.235"
    assert layout.exact(1058, "JPY") == "1058" and layout.exact(7.755, "EUR") == "7.76"
    assert layout.day(date(2026, 10, 31)) == "2026-10-31" == layout.day("2026-10-31T09:00:00")
    assert layout.percent(1, 3) == "33.3 %" and layout.percent(1, 0) is None
    assert (
        layout.count(1, "contract") == "1 contract"
        and layout.count(1204, "entry", "entries") == "1,204 entries"
    )


@pytest.mark.unit
def test_a_table_shows_each_rows_amounts_with_its_currencys_decimals_and_is_the_components(tmp_path):
    frame = pd.DataFrame({"currency": ["USD", "JPY"], "amount": [1234.5, 1058.0], "category": ["x", "y"]})
    page = ReportTables("probe", tmp_path).show(frame, "amounts").to_html()
    assert re.findall(r">([\d,.]+)</td>", page) == ["1,234.50", "1,058"]
    assert 'class="ent-table"' in page and 'data-table="amounts"' in page and 'id="T_probe_amounts"' in page
    assert (tmp_path / "probe_amounts.csv").read_text().splitlines()[1:] == ["USD,1234.50,x", "JPY,1058.00,y"]


@pytest.mark.unit
def test_the_headline_escapes_what_it_shows_and_carries_exact_values():
    figure = layout.Figure(
        "Leaked <b>", (layout.money_value("leaked_total", Decimal("1058"), "JPY", "<script>"),), "why", "bad"
    )
    headline = layout.Headline("leakage", "T & T", date(2026, 10, 31), "f" * 32, "lead", (figure,))
    page = headline._repr_html_()
    assert "<script>" not in page and "Leaked &lt;b&gt;" in page and "T &amp; T" in page
    assert 'data-figure="leaked_total" data-value="1058" data-currency="JPY"' in page
    assert ">JPY 1,058<" in page and "ffffffffffff</code>" in page and "2026-10-31" in page
    assert layout.headline_from_json(headline.as_json()) == headline
    with pytest.raises(ValueError, match="tone"):
        layout.Figure("x", (), tone="red")


@pytest.mark.unit
def test_the_index_lists_only_the_reports_written(tmp_path):
    headline = layout.Headline("renewals", "Renewals", None, None, "lead", ())
    entries = [
        layout.IndexEntry("leakage", "Leakage", None, None),
        layout.IndexEntry("renewals", "Renewals", "renewals.html", headline),
    ]
    page = layout.index_page(entries, [("dbt docs", "dbt_docs/index.html")])
    assert 'href="renewals.html"' in page and "leakage.html" not in page
    assert 'href="dbt_docs/index.html"' in page
    assert "<script src" not in page and "http" not in page.replace("http-equiv", "")


# --------------------------------------------------------------------------- the pages (browser)


@pytest.mark.e2e
@pytest.mark.xdist_group("test_report.reports")  # shares the session fixture: one worker
@pytest.mark.parametrize("name", PIPELINE)
def test_the_first_screen_shows_the_headline_and_the_main_chart(reports, demo_warehouse, as_of, name):
    """At 1400 x 900, with nothing scrolled: the title, the as-of date, 3 to 5 figures and the main chart
    (drawn); the numbers equal the marts (this module's SQL)."""
    with browse(reports / f"{name}.html", *FIRST_SCREEN) as page:
        plots = page.wait_for_plots()
        page.screenshot(SHOTS / f"{name}_first_screen.png")
        band = page.evaluate(
            "(() => { const b = document.querySelector('.ent-headline').getBoundingClientRect();"
            " const c = document.querySelector('.plotly-graph-div').getBoundingClientRect();"
            " return {band_top: b.top, band_bottom: b.bottom, chart_top: c.top,"
            " figures: document.querySelectorAll('.ent-figure').length,"
            " first_table: document.querySelector('table.ent-table').getBoundingClientRect().top,"
            " meta: document.querySelector('.ent-meta').textContent}; })()"
        )
        shown = page.headline_figures()
        assert page.errors == [] and page.external_requests == []
    assert plots and plots[0]["points"], "the main chart is drawn"
    assert 0 <= band["band_top"] < band["band_bottom"] < band["chart_top"] < FIRST_SCREEN[1] - 200, band
    assert band["chart_top"] < band["first_table"], "figures, then the chart, then the tables"
    assert 3 <= band["figures"] <= 5
    assert f"As of {as_of.isoformat()}" in band["meta"] and "marts version" in band["meta"]
    assert (SHOTS / f"{name}_first_screen.png").stat().st_size > 10_000
    expected = expected_headline(name, demo_warehouse, as_of)
    assert expected, name
    assert shown == expected


@pytest.mark.e2e
@pytest.mark.xdist_group("test_report.reports")  # shares the session fixture: one worker
def test_a_click_on_a_header_sorts_the_table_and_a_second_reverses_it(reports, demo_warehouse):
    """renewals' alerts_due: sorted by annual value (numbers, not text: 9,000.00 before 10,000.00),
    then by end date as text; what the table shows is every row's value in that order."""
    alerts = read_csv(reports / "renewals_alerts_due.csv")
    columns = list(alerts[0])
    value, end = columns.index("annual_value") + 1, columns.index("end_date") + 1
    amounts = sorted(Decimal(r["annual_value"]) for r in alerts)
    with browse(reports / "renewals.html", *FIRST_SCREEN) as page:
        header = f'table[data-table="alerts_due"] thead th:nth-child({value})'
        page.click(header)
        ascending = [Decimal(v.replace(",", "")) for v in page.evaluate(column_js("alerts_due", value - 1))]
        sorted_as = page.evaluate(f"document.querySelector('{header}').getAttribute('aria-sort')")
        page.click(header)
        descending = [Decimal(v.replace(",", "")) for v in page.evaluate(column_js("alerts_due", value - 1))]
        page.click(f'table[data-table="alerts_due"] thead th:nth-child({end})')
        by_end = page.evaluate(column_js("alerts_due", end - 1))
        assert page.errors == []
    assert sorted_as == "ascending"
    assert ascending == amounts[:25], "the first page holds the 25 smallest"
    assert descending == amounts[::-1][:25]
    assert by_end == sorted(r["end_date"] for r in alerts)[:25]
    assert len({r["annual_value"] for r in alerts}) > 1, "a sort that changes nothing proves nothing"


@pytest.mark.e2e
@pytest.mark.xdist_group("test_report.reports")  # shares the session fixture: one worker
def test_long_tables_show_25_rows_a_page_and_the_next_page_the_next(reports):
    long_tables = []
    for name in PIPELINE:
        with browse(reports / f"{name}.html", *FIRST_SCREEN) as page:
            for table in page.evaluate(TABLES_JS):
                assert table["visible"] == min(table["rows"], layout.PAGE_SIZE), (name, table)
                if table["rows"] > layout.PAGE_SIZE:
                    long_tables.append((name, table["name"]))
            if name == "renewals":
                rows = read_csv(reports / "renewals_alerts_due.csv")
                ids = [r["contract_id"] for r in rows]
                column = list(rows[0]).index("contract_id")
                first = page.evaluate(column_js("alerts_due", column))
                page.click(f"{TOOLBAR} .ent-next")
                second = page.evaluate(column_js("alerts_due", column))
                info = page.evaluate(f'document.querySelector("{TOOLBAR} .ent-page").textContent')
                # The filter narrows every page to the rows holding the text, whatever page is shown.
                page.evaluate(
                    f'(() => {{ const i = document.querySelector("{TOOLBAR} input"); i.value = {ids[30]!r};'
                    " i.dispatchEvent(new Event('input')); })()"
                )
                filtered = page.evaluate(column_js("alerts_due", column))
            assert page.errors == []
    assert ("renewals", "alerts_due") in long_tables and ("leakage", "evidence_rows") in long_tables
    assert first == ids[:25] and second == ids[25:50]
    assert info == f"page 2 of {-(-len(ids) // layout.PAGE_SIZE)}"
    assert filtered == [i for i in ids if ids[30] in i]


@pytest.mark.e2e
@pytest.mark.xdist_group("test_report.reports")  # shares the session fixture: one worker
def test_the_index_links_every_report_with_its_headline(reports):
    index = reports / "index.html"
    text = index.read_text(encoding="utf-8")
    for name in REPORTS:
        assert f'href="{name}.html"' in text, name
    assert "data_docs/index.html" not in text, "no Data Docs were written to this folder"
    with browse(index, *FIRST_SCREEN) as page:
        on_index = page.evaluate(
            "[...document.querySelectorAll('[data-report]')].map(s => [s.dataset.report,"
            " [...s.querySelectorAll('[data-figure]')].map(e => e.dataset.figure + ' ' +"
            " (e.dataset.currency || e.dataset.item || '') + ' ' + e.dataset.value)])"
        )
        assert page.errors == [] and page.external_requests == []
    for name, figures in on_index:
        assert figures == page_figures((reports / f"{name}.html").read_text(encoding="utf-8")), name
    assert [name for name, _ in on_index] == list(REPORTS)


@pytest.mark.e2e
@pytest.mark.xdist_group("test_report.reports")  # shares the session fixture: one worker
def test_report_pdf_prints_a_kept_page_with_every_row(reports, demo_warehouse, tmp_path):
    """`report --pdf` on a page already rendered from these marts: kept, and printed for mail."""
    for name in ("renewals.html", "renewals_headline.json"):
        shutil.copy(reports / name, tmp_path / name)
    done = entitlements("report", "renewals", "--pdf", "--warehouse", demo_warehouse, "--out", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "report renewals: its marts unchanged" in done.stdout
        and f"pdf: {tmp_path / 'renewals.pdf'}" in done.stdout
    )
    pdf = (tmp_path / "renewals.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-")
    # the renewals' 126 table rows and a chart do not fit one A4 page: the pager's hidden rows are printed
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) >= 4


@pytest.mark.e2e
def test_the_same_marts_render_the_same_page_byte_for_byte(demo_warehouse, tmp_path):
    """Rendered twice, forced (no page kept): no random figure id, table id or cell id in the page."""
    first = render_report("usage", demo_warehouse, tmp_path / "a").read_bytes()
    second = render_report("usage", demo_warehouse, tmp_path / "b").read_bytes()
    assert first == second
    assert b'id="figure-' in first and b'id="T_usage_limit_reached"' in first
