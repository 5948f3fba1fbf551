"""End to end: `entitlements run` on demo exports, checked against the generator's ground truth."""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from entitlements.bench import export_view
from entitlements.demo import generate_demo
from entitlements.reports import render
from entitlements.reports.leakage import LEAKAGE_CATEGORIES as CATEGORIES
from entitlements.reports.render import PIPELINE_REPORTS
from tests.conftest import Built, entitlements, query_rows

pytestmark = pytest.mark.e2e

MARTS = ("fct_active_entitlements", "fct_limit_breaches", "fct_revenue_leakage", "fct_renewal_pipeline")


def query(warehouse: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def last_build(warehouse: Path) -> tuple[str]:
    """The id of the warehouse's last successful build."""
    return query(
        warehouse,
        "select run_id from audit.pipeline_runs where step = 'build' and status = 'ok'"
        " order by started_at desc limit 1",
    )[0]


def table_counts(warehouse: Path, schema: str) -> dict[str, int]:
    tables = query(
        warehouse, f"select table_name from information_schema.tables where table_schema = '{schema}'"
    )
    return {t: query(warehouse, f'select count(*) from {schema}."{t}"')[0][0] for (t,) in tables}


def assert_matches_ground_truth(exports: Path, warehouse: Path) -> None:
    """Precision and recall 1.0 on (category, evidence_id); amounts within 0.01; no decoy reported."""
    with (exports / "ground_truth" / "leakage.csv").open() as handle:
        truth = {(r["category"], r["evidence_id"]): Decimal(r["amount"]) for r in csv.DictReader(handle)}
    found = {
        (c, e): a
        for c, e, a in query(warehouse, "select category, evidence_id, amount from marts.fct_revenue_leakage")
    }
    assert set(found) - set(truth) == set(), "reported leaks that were not planted"
    assert set(truth) - set(found) == set(), "planted leaks not found"
    off = {k: (truth[k], found[k]) for k in truth if abs(truth[k] - found[k]) > Decimal("0.01")}
    assert off == {}
    with (exports / "ground_truth" / "decoys.csv").open() as handle:
        decoys = {r["evidence_id"] for r in csv.DictReader(handle)}
    assert decoys and decoys.isdisjoint(e for _, e in found)


def test_run_builds_every_mart_and_prints_the_summary(demo_build: Built) -> None:
    counts = table_counts(demo_build.warehouse, "marts")
    for mart in MARTS:
        assert counts.get(mart, 0) > 0, f"marts.{mart} is missing or empty"
    out = demo_build.run.stdout
    assert "Revenue leakage by category" in out
    assert "Renewal pipeline by window" in out
    assert "Limit breaches by threshold" in out
    for category in CATEGORIES:
        assert category in out


def test_the_warehouses_dbt_log_says_what_each_node_did(demo_build: Built) -> None:
    """dbt's own file log is off (a run's seconds): what dbt printed is the warehouse's dbt log,
    under a line naming the commands and their exit code."""
    log = (demo_build.warehouse.parent / "dbt" / "warehouse" / "logs" / "dbt.log").read_text()
    titles = [line for line in log.splitlines() if line.startswith("=====")]
    assert titles and all(line.endswith("(exit 0) =====") for line in titles), titles
    assert any("dbt build --exclude tag:migration" in line and "--full-refresh" in line for line in titles)
    assert "OK created sql table model marts.fct_revenue_leakage" in log
    assert "Completed successfully" in log
    assert "SQL status" not in log  # dbt's debug lines: DBT_LOG_LEVEL_FILE=debug gives its own log


def test_a_run_that_builds_nothing_checks_marts_not_passed_since_their_build(
    demo_build: Built, warehouse_copy: Path, tmp_path: Path
) -> None:
    """`entitlements build` checks no mart: the next run, with nothing new to build, checks them, and
    the one after, the checks passed, does not. A mart whose checks fail fails every rerun until it
    is fixed, where the rerun used to skip the checks and succeed."""

    def run() -> str:
        done = entitlements("run", demo_build.exports, "--warehouse", warehouse_copy, "--no-reports")
        return f"exit {done.returncode}\n{done.stdout}{done.stderr}"

    built = entitlements("build", "--warehouse", warehouse_copy, "--full-refresh")
    assert built.returncode == 0, built.stdout + built.stderr
    first = run()
    assert first.startswith("exit 0") and "dbt build: skipped, nothing changed since build" in first, first
    assert "mart checks: the marts have not passed them since that build: checking them" in first
    assert re.search(r"mart checks: \d+ expectations, \d+ non-critical failures", first), first
    (checked_by,) = re.findall(r"^run (\w+): as of", first, re.MULTILINE)
    second = run()
    assert second.startswith("exit 0"), second
    skipped = f"mart checks: skipped, the marts did not change since they passed them (run {checked_by})"
    assert skipped in second, second

    con = duckdb.connect(str(warehouse_copy))
    try:  # a critical expectation of fct_active_entitlements: customer_id is never null
        con.execute(
            "update marts.fct_active_entitlements set customer_id = null"
            " where entitlement_id = (select min(entitlement_id) from marts.fct_active_entitlements)"
        )
    finally:
        con.close()
    refused = entitlements(
        "validate", "--step", "marts", "--warehouse", warehouse_copy, "--reports", tmp_path / "docs"
    )
    assert refused.returncode != 0, refused.stdout + refused.stderr
    for _ in range(2):
        again = run()
        assert again.startswith("exit 1") and "checking them" in again, again
        assert "fct_active_entitlements" in again and "customer_id" in again, again


def test_schemas_are_exactly_the_five_layers(demo_build: Built) -> None:
    schemas = {
        s
        for (s,) in query(demo_build.warehouse, "select distinct table_schema from information_schema.tables")
    }
    assert schemas == {"raw", "staging", "intermediate", "marts", "audit"}


def test_every_planted_leak_is_found_and_nothing_else(demo_build: Built) -> None:
    assert_matches_ground_truth(demo_build.exports, demo_build.warehouse)


# The hard cases the generator tags in ground_truth (leaks) and decoys.csv (look-alikes that are not).
HARD_LEAKS = {
    "contract_end_day",
    "overlapping_entitlement_for_another_asset",
    "amendment_changes_limit_mid_period",
    "late_events_create_overage",
}
DECOYS = {"duplicate_events_at_limit", "overage_invoiced", "contract_start_day"}


# Every seed at some scale and both scales at two seeds; the demo build is seed 42 between the two
# scales (test_every_planted_leak_is_found_and_nothing_else), so small-42 would repeat it.
@pytest.mark.parametrize(
    ("customers", "usage_events", "seed"),
    [
        pytest.param(30, 20_000, 7, id="small-7"),
        pytest.param(30, 20_000, 123, id="small-123"),
        pytest.param(150, 400_000, 42, id="large-42"),
        pytest.param(150, 400_000, 123, id="large-123"),
    ],
)
def test_ground_truth_holds_across_seeds_and_scales(
    tmp_path: Path, seed: int, customers: int, usage_events: int
) -> None:
    """Ingest and dbt build only (the gates and report are covered by demo_build), for speed."""
    exports, warehouse = tmp_path / "exports", tmp_path / "warehouse.duckdb"
    summary = generate_demo(exports, seed=seed, customers=customers, usage_events=usage_events)
    for step in (("ingest", exports), ("build", "--as-of", summary.as_of.isoformat())):
        done = entitlements(*step, "--warehouse", warehouse)
        assert done.returncode == 0, done.stdout + done.stderr
    with (exports / "ground_truth" / "leakage.csv").open() as handle:
        planted = list(csv.DictReader(handle))
    assert all(sum(r["category"] == c for r in planted) >= 5 for c in CATEGORIES)
    assert {r["scenario"] for r in planted} >= HARD_LEAKS
    with (exports / "ground_truth" / "decoys.csv").open() as handle:
        assert {r["scenario"] for r in csv.DictReader(handle)} >= DECOYS
    assert_matches_ground_truth(exports, warehouse)


@pytest.mark.parametrize("seed", [42, 7])
def test_ground_truth_holds_on_the_demo_written_as_vendors_export_it(tmp_path: Path, seed: int) -> None:
    """The same business as Salesforce CSVs, Stripe JSON and CloudEvents, read by the entitlements.yml
    and mapping.csv the generator writes beside them (entitlements/demo/vendor.py)."""
    exports, warehouse = tmp_path / "exports", tmp_path / "warehouse.duckdb"
    summary = generate_demo(exports, seed=seed, customers=30, usage_events=20_000, shape="vendor")
    assert not list(exports.glob("crm/cases*")) and (exports / "crm" / "Case.csv").is_file()
    for step in (("ingest", exports), ("build", "--as-of", summary.as_of.isoformat())):
        done = entitlements(*step, "--warehouse", warehouse)
        assert done.returncode == 0, done.stdout + done.stderr
    families = "select distinct split_part(shape, '.', 1) from audit.ingest_manifest order by 1"
    shapes = query(warehouse, families)
    assert shapes == [("canonical",), ("meters",), ("salesforce",), ("stripe",)]
    assert_matches_ground_truth(exports, warehouse)


@pytest.mark.xdist_group("clean_build")  # the session fixture test_migration.py validates too
def test_clean_exports_yield_no_leakage(clean_build: Built) -> None:
    assert query(clean_build.warehouse, "select count(*) from marts.fct_revenue_leakage") == [(0,)]


def test_second_run_changes_nothing_and_skips_every_file(
    demo_build: Built, warehouse_copy: Path, tmp_path: Path
) -> None:
    """The whole run again, not only the ingest (whose skip by checksum is in test_ingest.py): it
    succeeds, lands nothing, dbt and the gates leave raw and the marts as they were, and it writes
    the reports (the shared demo build runs without them). Then a day of usage (one event, far
    from its limit): the incremental build changes the usage marts only, so the usage report is
    rendered again and the leakage and renewals pages are kept, saying which build they show."""
    before = {s: table_counts(warehouse_copy, s) for s in ("raw", "marts")}
    again = entitlements("run", demo_build.exports, "--warehouse", warehouse_copy, "--reports", tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert {s: table_counts(warehouse_copy, s) for s in ("raw", "marts")} == before
    files = sum(
        1
        for p in demo_build.exports.rglob("*")
        if p.is_file() and p.parts[len(demo_build.exports.parts)] in ("crm", "billing", "usage")
    )
    assert f"ingest: 0 files landed, {files} skipped (already loaded)" in again.stdout
    for name in PIPELINE_REPORTS:
        assert (tmp_path / f"{name}.html").stat().st_size > 0, name
        assert f"report: {tmp_path / name}.html" in again.stdout

    a_day_of_usage_renders_only_the_reports_whose_marts_changed(demo_build, warehouse_copy, tmp_path)


def a_day_of_usage_renders_only_the_reports_whose_marts_changed(
    demo_build: Built, warehouse: Path, reports: Path
) -> None:
    (shown,) = last_build(warehouse)
    assert {render.recorded_build(reports / f"{name}.html") for name in PIPELINE_REPORTS} == {shown}
    as_of = json.loads((demo_build.exports / "export.json").read_text())["as_of"]
    # A metered period open on the as-of date, used well under its limit: one more unit changes the
    # usage marts (its use), not the leakage marts (nothing over a limit, no upsell) nor renewals.
    customer, meter = query(
        warehouse,
        "select customer_id, entitlement_code from marts.fct_allowance_periods"
        f" where entitlement_code in ('API_CALLS', 'DATA_GB') and aggregation = 'sum'"
        f" and period_start <= date '{as_of}' and period_end > date '{as_of}' and pct_used between 10 and 60"
        " order by customer_id, entitlement_code limit 1",
    )[0]
    exports = export_view(demo_build.exports, warehouse.parent / "exports_and_a_day")
    (exports / "usage" / f"usage_{as_of}_day.jsonl").write_text(
        json.dumps(
            {
                "event_id": "evt-one-more-day",
                "customer_id": customer,
                "meter_code": meter,
                "quantity": 1,
                "occurred_at": f"{as_of}T12:00:00Z",
                "sent_at": f"{as_of}T12:05:00Z",
            }
        )
        + "\n"
    )
    pages = {name: reports / f"{name}.html" for name in PIPELINE_REPORTS}

    def marts() -> dict[str, dict[str, list[tuple]]]:
        """Per report, the rows of each mart it reads."""
        reads = render.report_reads()
        return {n: {r: sorted(query(warehouse, f"from {r}"), key=repr) for r in reads[n]} for n in pages}

    before = {name: (page.stat().st_mtime_ns, page.read_bytes()) for name, page in pages.items()}
    marts_before = marts()

    run = entitlements("run", exports, "--warehouse", warehouse, "--reports", reports)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ingest: 1 files landed" in run.stdout and "dbt build: ok (incremental" in run.stdout
    (built,) = last_build(warehouse)
    marts_after = marts()
    assert marts_after["usage"] != marts_before["usage"], "the day of usage changed the usage marts"
    for name in ("leakage", "renewals"):
        assert marts_after[name] == marts_before[name], f"the premise: the day left {name}'s marts"
        assert f"report {name}: its marts unchanged since build {shown}, kept" in run.stdout
        assert (pages[name].stat().st_mtime_ns, pages[name].read_bytes()) == before[name], name
    assert "report usage: its marts" not in run.stdout
    assert pages["usage"].stat().st_mtime_ns != before["usage"][0]
    assert render.recorded_build(pages["usage"]) == built != shown


def drop_currency_column(export: Path) -> None:
    accounts = export / "crm" / "accounts.csv"
    rows = list(csv.reader(accounts.open()))
    with accounts.open("w", newline="") as handle:
        csv.writer(handle).writerows([r[:3] + r[4:] for r in rows])


def add_invoices_repeating_a_key(export: Path) -> None:
    (export / "billing" / "invoices_late.csv").write_text(
        "invoice_id,customer_id,invoice_date,currency,status\n"
        "INV-9000001,C00001,2026-10-01,USD,open\n"
        "INV-9000001,C00002,2026-10-01,USD,open\n"
    )


@pytest.mark.parametrize(
    ("damage", "source_file", "said", "recorded"),
    [
        pytest.param(
            drop_currency_column,
            "crm/accounts.csv",
            ["crm/accounts.csv: missing required column 'currency'"],
            [],  # refused before anything is recorded
            id="missing-required-column",
        ),
        pytest.param(
            add_invoices_repeating_a_key,
            "billing/invoices_late.csv",
            [  # caught at ingest, before the landing gate: 1 row of 2 is over the 1 % a file may reject
                "billing/invoices_late.csv, line 3, column 'invoice_id'",
                "duplicate invoice_id INV-9000001 within the file: first on line 2",
            ],
            ["refused"],
            id="duplicate-key",
        ),
    ],
)
def test_a_refused_file_stops_the_run_and_leaves_raw_unchanged(
    demo_build: Built,
    warehouse_copy: Path,
    tmp_path: Path,
    damage: Callable[[Path], None],
    source_file: str,
    said: list[str],
    recorded: list[str],
) -> None:
    """What `run` makes of a file the ingest refuses (the refusals themselves, on small files, are in
    test_ingest_bad_input.py): exit 1, the problem named on stderr, raw as it was."""
    bad = tmp_path / "exports"
    shutil.copytree(demo_build.exports, bad)
    damage(bad)
    before = table_counts(warehouse_copy, "raw")
    loads = "select status from audit.ingest_manifest where source_file = ? order by loaded_at"
    loads_before = [r["status"] for r in query_rows(warehouse_copy, loads, [source_file])]

    result = entitlements("run", bad, "--warehouse", warehouse_copy, "--reports", tmp_path / "reports")

    assert result.returncode == 1, result.stdout + result.stderr
    for text in said:
        assert text in result.stderr
    assert table_counts(warehouse_copy, "raw") == before
    assert [r["status"] for r in query_rows(warehouse_copy, loads, [source_file])] == loads_before + recorded
