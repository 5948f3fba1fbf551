"""The leakage report: executed from the notebook, numbers equal to the mart, renders offline in Chromium.

Uses the session fixture `demo_warehouse` (tests/conftest.py): a warehouse built by the real pipeline.
The browser test opens it in Debian's headless Chromium with the network off (tests/browser.py).
"""

from __future__ import annotations

import csv
import re
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from plotly.offline import get_plotlyjs

from entitlements.report import REPORTS, render_report
from entitlements.warehouse import DEFAULT_REPORTS, PROJECT_ROOT
from tests.browser import open_report


@pytest.fixture(scope="module")
def leakage_report(demo_warehouse: Path, tmp_path_factory) -> Path:
    # How fast it renders is the bench's business (make bench), not an assertion here.
    return render_report("leakage", demo_warehouse, tmp_path_factory.mktemp("reports"))


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _mart(warehouse: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# --------------------------------------------------------------------------- execution and numbers


def test_leakage_report_executes_and_writes_outputs(leakage_report):
    html = leakage_report
    out_dir = html.parent
    assert html == out_dir / "leakage.html"
    assert html.stat().st_size > 0
    for table in ("currency_totals", "category_totals", "top_customers", "largest_leaks"):
        assert (out_dir / f"leakage_{table}.csv").is_file(), table


def test_currency_totals_equal_the_mart_to_the_cent(leakage_report, demo_warehouse):
    html = leakage_report
    rows = _read_csv(html.parent / "leakage_currency_totals.csv")
    reported = {r["currency"]: Decimal(r["total_amount"]) for r in rows}
    expected = dict(
        _mart(demo_warehouse, "select currency, sum(amount) from marts.fct_revenue_leakage group by currency")
    )
    assert expected, "the demo warehouse has no leakage rows"
    assert reported == expected
    # written with exactly two decimals, as money
    assert all(re.fullmatch(r"-?\d+\.\d{2}", r["total_amount"]) for r in rows)


def test_category_totals_add_up_per_currency(leakage_report, demo_warehouse):
    html = leakage_report
    by_currency: dict[str, Decimal] = {}
    for r in _read_csv(html.parent / "leakage_category_totals.csv"):
        by_currency[r["currency"]] = by_currency.get(r["currency"], Decimal(0)) + Decimal(r["total_amount"])
    expected = dict(
        _mart(demo_warehouse, "select currency, sum(amount) from marts.fct_revenue_leakage group by currency")
    )
    assert by_currency == expected


def test_largest_leaks_are_the_largest_rows_with_explanations(leakage_report, demo_warehouse):
    html = leakage_report
    rows = _read_csv(html.parent / "leakage_largest_leaks.csv")
    assert rows and all(r["explanation"] for r in rows)
    for cur in {r["currency"] for r in rows}:
        shown = [Decimal(r["amount"]) for r in rows if r["currency"] == cur]
        top = _mart(
            demo_warehouse,
            "select amount from marts.fct_revenue_leakage where currency = "
            f"'{cur}' order by amount desc limit {len(shown)}",
        )
        assert shown == [a for (a,) in top]


def test_html_is_self_contained_with_code_hidden(leakage_report):
    html_path = leakage_report
    html = html_path.read_text(encoding="utf-8")
    bundle = get_plotlyjs()
    assert html.count(bundle) == 1, "plotly.js must be embedded inline exactly once"
    assert not re.findall(r"<script[^>]*\bsrc\s*=", html, flags=re.I), "no external script"
    assert not re.findall(r"<link[^>]*\bhref\s*=\s*[\"']?https?:", html, flags=re.I)
    # plotly.js itself names cdn.plot.ly as its (unused) topojson default; nothing else may.
    assert html.count("cdn.plot.ly") == bundle.count("cdn.plot.ly")
    assert html.count('class="plotly-graph-div"') == 2
    assert "open_warehouse" not in html, "code cells must be hidden"
    assert "Traceback" not in html


def test_currency_parameter_filters_the_report(demo_warehouse, tmp_path):
    (cur, total), *_ = _mart(
        demo_warehouse,
        "select currency, sum(amount) from marts.fct_revenue_leakage group by currency order by 1",
    )
    html = render_report("leakage", demo_warehouse, tmp_path, {"currency": cur.lower()})
    rows = _read_csv(html.parent / "leakage_currency_totals.csv")
    assert [(r["currency"], Decimal(r["total_amount"])) for r in rows] == [(cur, total)]
    assert {r["currency"] for r in _read_csv(html.parent / "leakage_largest_leaks.csv")} == {cur}


def test_unknown_report_is_refused(demo_warehouse, tmp_path):
    assert "leakage" in REPORTS
    with pytest.raises(ValueError, match="unknown report"):
        render_report("nope", demo_warehouse, tmp_path)


# --------------------------------------------------------------------------- headless Chromium


def test_report_renders_offline_in_chromium(leakage_report):
    html = leakage_report
    page = open_report(html, PROJECT_ROOT / DEFAULT_REPORTS / "leakage.png")
    assert page.errors == []
    assert page.external_requests == []
    assert len(page.plots) == 2, page.plots
    for p in page.plots:
        assert p["mainSvg"] >= 1, p
        assert p["data"] >= 1 and p["traces"] >= 1 and p["points"] >= 1, p
