"""The reports: executed from their notebooks, numbers equal to the marts, render offline in Chromium.

Uses the session fixture `demo_warehouse` (tests/conftest.py): a warehouse built by the real pipeline.
`entitlements report all` runs every notebook with papermill; the tests read the CSV of each table
shown and compare it with the marts, then open each page in Debian's headless Chromium with the
network off (tests/browser.py). The migration report's figures are tested with a migrated warehouse
in tests/test_migration.py.
"""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import yaml
from papermill.exceptions import PapermillExecutionError
from plotly.offline import get_plotlyjs

from entitlements.reports.render import REPORTS, render_report
from entitlements.warehouse import DBT_PROJECT_DIR, DEFAULT_REPORTS, NOTEBOOKS_DIR, PROJECT_ROOT
from tests.browser import open_report
from tests.conftest import entitlements, read_csv

pytestmark = pytest.mark.e2e

# plotly figures each report draws from the demo warehouse
FIGURES = {"leakage": 4, "renewals": 2, "usage": 2}


def _mart(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _money(value: str) -> Decimal:
    return Decimal(value or "0")


# --------------------------------------------------------------------------- every report


@pytest.mark.xdist_group("test_report.reports")  # shares the session fixture: one worker
def test_report_all_writes_every_report_with_its_tables(reports):
    for name in REPORTS:
        assert (reports / f"{name}.html").stat().st_size > 0, name
    for table in (
        "currency_totals",
        "category_totals",
        "entitlement_totals",
        "evidence_rows",
        "override_hotspots",
    ):
        assert (reports / f"leakage_{table}.csv").is_file(), table
    for table in (
        "currency_summary",
        "pipeline_by_window",
        "upcoming_renewals",
        "missed_renewals",
        "alerts_due",
    ):
        assert (reports / f"renewals_{table}.csv").is_file(), table
    for table in ("threshold_summary", "limit_reached", "utilisation_summary", "underused"):
        assert (reports / f"usage_{table}.csv").is_file(), table


@pytest.mark.xdist_group("test_report.reports")  # shares the session fixture: one worker
@pytest.mark.parametrize("name", sorted(FIGURES))
def test_html_is_self_contained_with_code_hidden(reports, name):
    html = (reports / f"{name}.html").read_text(encoding="utf-8")
    bundle = get_plotlyjs()
    assert html.count(bundle) == 1, "plotly.js must be embedded inline exactly once"
    assert not re.findall(r"<script[^>]*\bsrc\s*=", html, flags=re.I), "no external script"
    assert not re.findall(r"<link[^>]*\bhref\s*=\s*[\"']?https?:", html, flags=re.I)
    # plotly.js itself names cdn.plot.ly as its (unused) topojson default; nothing else may.
    assert html.count("cdn.plot.ly") == bundle.count("cdn.plot.ly")
    assert html.count('class="plotly-graph-div"') == FIGURES[name]
    assert "open_warehouse" not in html, "code cells must be hidden"
    assert "Traceback" not in html


@pytest.mark.xdist_group("test_report.reports")  # shares the session fixture: one worker
@pytest.mark.parametrize("name", sorted(FIGURES))
def test_each_report_renders_offline_in_chromium(reports, name):
    page = open_report(reports / f"{name}.html", PROJECT_ROOT / DEFAULT_REPORTS / f"{name}.png")
    assert page.errors == []
    assert page.external_requests == []
    assert len(page.plots) == FIGURES[name], page.plots
    for p in page.plots:
        assert p["mainSvg"] >= 1, p
        assert p["data"] >= 1 and p["traces"] >= 1 and p["points"] >= 1, p


@pytest.mark.xdist_group("test_report.reports")  # shares the session fixture: one worker
def test_a_second_report_all_keeps_the_pages_of_the_same_build(reports, demo_warehouse):
    """Rendered from the same marts, parameters and notebooks, a page is kept as it is; `--force`
    renders it again (what a change re-renders: tests/test_report_session.py; a build that changes
    some marts only: tests/test_pipeline.py)."""
    (build,) = _mart(
        demo_warehouse,
        "select run_id from audit.pipeline_runs where step = 'build' and status = 'ok'"
        " order by started_at desc limit 1",
    )[0]
    pages = {name: reports / f"{name}.html" for name in FIGURES}
    before = {name: (page.stat().st_mtime_ns, page.read_bytes()) for name, page in pages.items()}
    again = entitlements("report", "all", "--warehouse", demo_warehouse, "--out", reports)
    assert again.returncode == 0, again.stdout + again.stderr
    for name, page in pages.items():
        assert f"report {name}: its marts unchanged since build {build}, kept" in again.stdout
        assert f"report: {page}" in again.stdout
        assert (page.stat().st_mtime_ns, page.read_bytes()) == before[name], name
    assert "report migration:" not in again.stdout, "the migration report reads more than the build"

    forced = entitlements("report", "usage", "--force", "--warehouse", demo_warehouse, "--out", reports)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "kept" not in forced.stdout
    assert pages["usage"].stat().st_mtime_ns != before["usage"][0]


def test_unknown_report_is_refused(demo_warehouse, tmp_path):
    with pytest.raises(ValueError, match="unknown report"):
        render_report("nope", demo_warehouse, tmp_path)


# --------------------------------------------------------------------------- leakage


@pytest.mark.xdist_group("test_report.reports")  # shares the session fixture: one worker
def test_leakage_totals_equal_the_mart_to_the_cent(reports, demo_warehouse):
    rows = read_csv(reports / "leakage_currency_totals.csv")
    reported = {r["currency"]: Decimal(r["total_amount"]) for r in rows}
    expected = dict(
        _mart(demo_warehouse, "select currency, sum(amount) from marts.fct_revenue_leakage group by currency")
    )
    assert expected, "the demo warehouse has no leakage rows"
    assert reported == expected
    assert all(re.fullmatch(r"-?\d+\.\d{2}", r["total_amount"]) for r in rows)  # money: two decimals


@pytest.mark.xdist_group("test_report.reports")  # shares the session fixture: one worker
@pytest.mark.parametrize("table", ["category_totals", "entitlement_totals"])
def test_leakage_breakdowns_add_up_per_currency(reports, demo_warehouse, table):
    by_currency: dict[str, Decimal] = defaultdict(Decimal)
    for r in read_csv(reports / f"leakage_{table}.csv"):
        by_currency[r["currency"]] += Decimal(r["total_amount"])
    expected = dict(
        _mart(demo_warehouse, "select currency, sum(amount) from marts.fct_revenue_leakage group by currency")
    )
    assert dict(by_currency) == expected


@pytest.mark.xdist_group("test_report.reports")  # shares the session fixture: one worker
def test_largest_leaks_are_the_largest_rows_with_explanations(reports, demo_warehouse):
    rows = read_csv(reports / "leakage_largest_leaks.csv")
    assert rows and all(r["explanation"] for r in rows)
    for cur in {r["currency"] for r in rows}:
        shown = [Decimal(r["amount"]) for r in rows if r["currency"] == cur]
        top = _mart(
            demo_warehouse,
            "select amount from marts.fct_revenue_leakage where currency = ? order by amount desc limit ?",
            [cur, len(shown)],
        )
        assert shown == [a for (a,) in top]


@pytest.mark.xdist_group("test_report.reports")  # shares the session fixture: one worker
def test_hotspots_and_upsell_candidates_are_the_marts(reports, demo_warehouse):
    hotspots = read_csv(reports / "leakage_override_hotspots.csv")
    assert {(r["dimension"], r["dimension_value"], int(r["override_count"])) for r in hotspots} == set(
        _mart(
            demo_warehouse,
            "select dimension, dimension_value, override_count from marts.fct_override_hotspots",
        )
    )
    upsell = read_csv(reports / "leakage_upsell_candidates.csv")
    assert len(upsell) == _mart(demo_warehouse, "select count(*) from marts.fct_upsell_candidates")[0][0]


def test_drill_down_to_one_customer_and_category(demo_warehouse, tmp_path):
    (customer, category, total, leaks), *_ = _mart(
        demo_warehouse,
        "select customer_id, category, sum(amount), count(*) from marts.fct_revenue_leakage"
        " group by all order by count(*) desc, customer_id, category",
    )
    html = render_report("leakage", demo_warehouse, tmp_path, {"customer": customer, "category": category})
    evidence = read_csv(html.parent / "leakage_evidence_rows.csv")
    assert len(evidence) == leaks
    assert {(r["customer_id"], r["category"]) for r in evidence} == {(customer, category)}
    assert sum(Decimal(r["amount"]) for r in evidence) == total
    totals = read_csv(html.parent / "leakage_currency_totals.csv")
    assert [Decimal(r["total_amount"]) for r in totals] == [total]


def test_currency_parameter_filters_the_report(demo_warehouse, tmp_path):
    (cur, total), *_ = _mart(
        demo_warehouse,
        "select currency, sum(amount) from marts.fct_revenue_leakage group by currency order by 1",
    )
    html = render_report("leakage", demo_warehouse, tmp_path, {"currency": cur.lower()})
    rows = read_csv(html.parent / "leakage_currency_totals.csv")
    assert [(r["currency"], Decimal(r["total_amount"])) for r in rows] == [(cur, total)]
    assert {r["currency"] for r in read_csv(html.parent / "leakage_largest_leaks.csv")} == {cur}


def test_an_unknown_customer_is_a_clear_error(demo_warehouse, tmp_path):
    with pytest.raises(PapermillExecutionError, match="customer 'C99999' has no leakage"):
        render_report("leakage", demo_warehouse, tmp_path, {"customer": "C99999"})


# --------------------------------------------------------------------------- renewals


@pytest.mark.xdist_group("test_report.reports")  # shares the session fixture: one worker
def test_value_at_risk_per_window_equals_the_pipeline_mart(reports, demo_warehouse):
    rows = read_csv(reports / "renewals_pipeline_by_window.csv")
    reported = {
        (r["currency"], r["renewal_window"]): (int(r["contracts"]), _money(r["value_at_risk"])) for r in rows
    }
    expected = {
        (cur, window): (n, risk)
        for cur, window, n, risk in _mart(
            demo_warehouse,
            "select currency, renewal_window, count(*), sum(value_at_risk)"
            " from marts.fct_renewal_pipeline group by all",
        )
    }
    assert reported == expected
    assert any(risk > 0 for _, risk in reported.values()), "the demo has value at risk"


@pytest.mark.xdist_group("test_report.reports")  # shares the session fixture: one worker
def test_renewal_headline_per_currency(reports, demo_warehouse):
    rows = {r["currency"]: r for r in read_csv(reports / "renewals_currency_summary.csv")}
    for cur, risk, missed, renewing in _mart(
        demo_warehouse,
        "select currency, sum(value_at_risk), count(*) filter (where renewal_window = 'expired_not_renewed'),"
        " count(*) filter (where renewal_window in ('0-30', '31-60', '61-90'))"
        " from marts.fct_renewal_pipeline group by currency",
    ):
        assert _money(rows[cur]["value_at_risk"]) == risk
        assert int(rows[cur]["missed"]) == missed and int(rows[cur]["renewing_90d"]) == renewing
    upcoming = read_csv(reports / "renewals_upcoming_renewals.csv")
    assert {r["renewal_window"] for r in upcoming} <= {"0-30", "31-60", "61-90"}
    assert [int(r["days_to_expiry"]) for r in upcoming] == sorted(int(r["days_to_expiry"]) for r in upcoming)
    due = read_csv(reports / "renewals_alerts_due.csv")
    assert (
        len(due) == _mart(demo_warehouse, "select count(*) from marts.fct_renewal_alerts where is_due")[0][0]
    )


def test_renewals_for_another_date_needs_a_build_for_it(demo_warehouse, tmp_path):
    run = entitlements(
        "report", "renewals", "--warehouse", demo_warehouse, "--out", tmp_path, "--as-of", "2026-01-31"
    )
    assert run.returncode == 2
    assert (
        "answer for 2026-10-31, not 2026-01-31" in run.stderr and "entitlements build --as-of" in run.stderr
    )


# --------------------------------------------------------------------------- usage and limits


@pytest.mark.xdist_group("test_report.reports")  # shares the session fixture: one worker
def test_threshold_crossings_equal_the_breaches_mart(reports, demo_warehouse):
    rows = read_csv(reports / "usage_threshold_summary.csv")
    reported = {
        (r["entitlement_code"], int(r["threshold_crossed"]), r["currency"]): (
            int(r["periods"]),
            _money(r["overage_value"]),
        )
        for r in rows
    }
    expected = {
        (code, threshold, cur): (n, value)
        for code, threshold, cur, n, value in _mart(
            demo_warehouse,
            "select entitlement_code, threshold_crossed, currency, count(*), sum(overage_value)"
            " from marts.fct_limit_breaches group by all",
        )
    }
    assert reported == expected
    reached = read_csv(reports / "usage_limit_reached.csv")
    assert len(reached) == sum(n for (_, t, _), (n, _) in reported.items() if t == 100)


@pytest.mark.xdist_group("test_report.reports")  # shares the session fixture: one worker
def test_utilisation_and_underuse_equal_the_marts(reports, demo_warehouse):
    summary = {
        r["entitlement_code"]: int(r["periods"]) for r in read_csv(reports / "usage_utilisation_summary.csv")
    }
    assert summary == dict(
        _mart(
            demo_warehouse,
            "select entitlement_code, count(*) from marts.fct_allowance_periods"
            " where is_complete and limit_quantity is not null group by 1",
        )
    )
    underused = read_csv(reports / "usage_underused.csv")
    assert (
        len(underused) == _mart(demo_warehouse, "select count(*) from marts.fct_underused_entitlements")[0][0]
    )


# --------------------------------------------------------------------------- the notebooks themselves


def test_notebooks_are_thin_text_with_parameters_and_no_outputs():
    for name, file in REPORTS.items():
        source = (NOTEBOOKS_DIR / file).read_text(encoding="utf-8")
        assert source.startswith("# ---\n# jupyter:"), f"{file}: jupytext py:percent header"
        assert '# %% tags=["parameters"]' in source, f"{file}: a parameters cell for papermill"
        code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))
        # No SQL, no functions or classes: the logic lives in entitlements.reports, once.
        assert not re.search(r"\b(select|from marts)\b", code, flags=re.I), f"{file} holds SQL"
        assert not re.search(r"^\s*(def|class) ", code, flags=re.M), f"{file} defines code"
        assert f"from entitlements.reports import common, {name}" in source, f"{file}: its helpers"
    tracked = subprocess.run(
        ["git", "ls-files", "notebooks"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked and not [f for f in tracked if f.endswith(".ipynb")], "no executed notebooks committed"


def test_exposures_declare_every_notebook_and_the_marts_it_reads():
    exposures = yaml.safe_load((DBT_PROJECT_DIR / "models" / "marts" / "_marts__exposures.yml").read_text())
    by_notebook = {e["url"].rsplit("/", 1)[-1]: e for e in exposures["exposures"] if e["type"] == "notebook"}
    for name, file in REPORTS.items():
        exposure = by_notebook[file]
        source = (NOTEBOOKS_DIR / file).read_text(encoding="utf-8")
        module = (PROJECT_ROOT / "entitlements" / "reports" / f"{name}.py").read_text(encoding="utf-8")
        read = set(re.findall(r"marts\.(fct_\w+)", source + module))
        declared = {re.fullmatch(r"ref\('(\w+)'\)", d).group(1) for d in exposure["depends_on"]}
        assert read <= declared, f"{file} reads {sorted(read - declared)} without declaring them"


def test_docs_site_shows_the_models_and_the_reports(warehouse_copy, tmp_path):
    # A copy: `dbt docs generate` opens the warehouse for writing, which locks out every reader of the
    # shared demo warehouse on the other workers while it runs.
    run = entitlements("docs", "--warehouse", warehouse_copy, "--out", tmp_path / "site")
    assert run.returncode == 0, run.stdout + run.stderr
    page = (tmp_path / "site" / "dbt_docs" / "index.html").read_text(encoding="utf-8")
    for name in (
        "fct_revenue_leakage",
        "fct_renewal_pipeline",
        "leakage_explorer",
        "renewals_report",
        "usage_report",
    ):
        assert name in page, name
    assert not re.findall(r"<script[^>]*\bsrc\s*=\s*[\"']?https?:", page, flags=re.I), "no remote script"
