"""The legacy migration: every planted fault found, each step's critical faults stop it, phases add up.

The demo generator writes a legacy export of the same contracts as its CRM export, planting
faults and writing what it planted to ground_truth/migration_faults.csv; these tests hold
`entitlements migrate validate` (real ingest, dbt build, Great Expectations) to that answer key.
Faults that must stop a step are planted here, by editing a copy of the legacy export the way a
broken extract or mapping would (a truncated file, a crosswalk fan-out, amounts at the wrong
scale, allowances the catalog does not grant).
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from entitlements.demo import generate_demo
from entitlements.demo.catalog import resolved_terms
from entitlements.runs.migration import MigrationPlanError, Phase, load_plan, resolve_plan
from entitlements.warehouse import DEFAULT_REPORTS, PROJECT_ROOT
from tests.browser import browse, open_report
from tests.conftest import Built, entitlements, query_rows, read_csv

pytestmark = pytest.mark.e2e

LEGACY_DELIMITER = "|"


@dataclass(frozen=True)
class Migrated:
    build: Built
    warehouse: Path
    reports: Path
    stdout: str
    stderr: str
    returncode: int


def migrate(built: Built, root: Path, legacy: Path | None = None, *args: str) -> Migrated:
    """Copy the built warehouse (the new model) and validate a legacy export against it, as a user would.

    Pass "--no-report" where the test does not read the report (it renders the notebook).
    """
    root.mkdir(parents=True, exist_ok=True)
    warehouse, reports = root / "warehouse.duckdb", root / "reports"
    if not warehouse.exists():
        shutil.copy(built.warehouse, warehouse)
    run = entitlements(
        "migrate",
        "validate",
        legacy or built.exports / "legacy",
        "--warehouse",
        warehouse,
        "--reports",
        reports,
        *args,
    )
    return Migrated(built, warehouse, reports, run.stdout, run.stderr, run.returncode)


def read_legacy(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter=LEGACY_DELIMITER)
        return list(reader.fieldnames or []), list(reader)


def write_legacy(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, delimiter=LEGACY_DELIMITER, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)


def recount_control(legacy: Path) -> None:
    """Control totals as the legacy system would write them for the files as they now are."""
    columns, control = read_legacy(legacy / "CONTROL.csv")
    for row in control:
        _, rows = read_legacy(legacy / row["FILE_NAME"])
        row["RECORD_COUNT"] = str(len(rows))
        if row["FILE_NAME"] == "CONTRACTS.csv":
            row["HASH_TOTAL"] = str(sum(int(r["FEE_MINOR"]) for r in rows))
    write_legacy(legacy / "CONTROL.csv", columns, control)


def edited_legacy(built: Built, tmp_path: Path, edit: Callable[[Path], None]) -> Path:
    legacy = tmp_path / "legacy"
    shutil.copytree(built.exports / "legacy", legacy)
    edit(legacy)
    return legacy


# Session scope: a module fixture is rebuilt whenever another module's test runs in between
# on the same xdist worker; this one is a full run, built once.
@pytest.fixture(scope="session")
def migrated(demo_build: Built, tmp_path_factory: pytest.TempPathFactory) -> Migrated:
    result = migrate(demo_build, tmp_path_factory.mktemp("migrated"))
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def truth(demo_build: Built) -> list[dict[str, str]]:
    return read_csv(demo_build.exports / "ground_truth" / "migration_faults.csv")


# --------------------------------------------------------------------------- the answer key


def test_the_generator_plants_every_kind_of_fault_on_its_own_contract(truth):
    kinds = {row["fault"] for row in truth}
    assert kinds == {
        "duplicate_rows",
        "duplicate_contract",
        "orphan",
        "dropped",
        "unexpected",
        "overlapping_terms",
        "missing_field",
        "mapping_gap",
        "value_drift",
        "date_shift",
    }
    assert {row["status"] for row in truth} == {
        "changed",
        "duplicate",
        "missing_in_new",
        "unexpected_in_new",
    }
    keys = [(row["legacy_contract_id"], row["new_contract_id"]) for row in truth]
    assert len(keys) == len(set(keys)), "one fault per contract"


def assert_faults_reported(warehouse: Path, truth: list[dict[str, str]]) -> None:
    """Every planted fault, and nothing else, reported with its status and field (precision and recall
    1.0): the migration's ground truth, on whichever engine built the marts (test_spark too)."""
    rows = query_rows(
        warehouse,
        "select legacy_contract_id, new_contract_id, status from marts.fct_migration_reconciliation"
        " where phase = 'all'",
    )
    reported = {
        (r["legacy_contract_id"] or "", r["new_contract_id"] or "", r["status"])
        for r in rows
        if r["status"] != "matched"
    }
    planted = {(t["legacy_contract_id"], t["new_contract_id"], t["status"]) for t in truth}
    true_positives = reported & planted
    assert len(true_positives) / len(reported) == 1.0, f"reported, not planted: {reported - planted}"
    assert len(true_positives) / len(planted) == 1.0, f"planted, not reported: {planted - reported}"
    assert sum(r["status"] == "matched" for r in rows) == len(rows) - len(planted)

    differences = query_rows(
        warehouse,
        "select distinct legacy_contract_id, field from marts.fct_migration_differences where phase = 'all'",
    )
    reported_fields = {(d["legacy_contract_id"], d["field"]) for d in differences}
    planted_fields = {(t["legacy_contract_id"], t["field"]) for t in truth if t["status"] == "changed"}
    assert reported_fields == planted_fields


def assert_faults_explained(warehouse: Path, truth: list[dict[str, str]]) -> None:
    """Each planted fault's reason code and reason say what was planted."""
    by_pair = {
        r["legacy_contract_id"] or f"new:{r['new_contract_id']}": r
        for r in query_rows(warehouse, "select * from marts.fct_migration_reconciliation where phase = 'all'")
    }
    differences = query_rows(
        warehouse, "select legacy_contract_id, reason from marts.fct_migration_differences"
    )
    reason_of = {d["legacy_contract_id"]: d["reason"] for d in differences}
    expected_codes = {
        "duplicate_rows": "duplicate_rows",
        "duplicate_contract": "duplicate_contract",
        "orphan": "orphan",
        "unexpected": "no_legacy_source",
    }
    for fault in truth:
        row = by_pair[fault["legacy_contract_id"] or f"new:{fault['new_contract_id']}"]
        if fault["fault"] in expected_codes:
            assert row["reason_code"] == expected_codes[fault["fault"]], fault
        elif fault["fault"] == "dropped":
            expected = "not_in_new_model" if "crosswalk names" in fault["note"] else "not_in_crosswalk"
            assert row["reason_code"] == expected, fault
        else:
            assert row["reason_code"] == "fields_differ" and fault["field"] in row["changed_fields"], fault
        assert row["reason"], fault
    contains = {
        "mapping_gap": "is not in the product map",
        "overlapping_terms": "overlaps the next",
        "missing_field": "missing in the legacy export",
    }
    for fault in truth:
        if fault["fault"] in contains:
            assert contains[fault["fault"]] in reason_of[fault["legacy_contract_id"]], fault
    duplicate_of = {f["legacy_contract_id"]: f for f in truth if f["fault"] == "duplicate_contract"}
    for number, fault in duplicate_of.items():
        original = fault["note"].split(" as ")[1].split(" and ")[0]
        assert original in by_pair[number]["reason"] and by_pair[original]["status"] == "matched"


@pytest.mark.xdist_group("test_migration.migrated")  # shares the session fixture: one worker
def test_every_planted_fault_is_reported_with_its_status_and_fields(migrated, truth):
    assert_faults_reported(migrated.warehouse, truth)


@pytest.mark.xdist_group("test_migration.migrated")  # shares the session fixture: one worker
def test_each_fault_is_explained(migrated, truth):
    assert_faults_explained(migrated.warehouse, truth)


@pytest.mark.xdist_group("test_migration.migrated")  # shares the session fixture: one worker
def test_value_differences_follow_the_planted_drift(migrated, truth, demo_build):
    """A drifted fee shows as new - legacy over the drifted segment's term, computed from the exports."""
    lines = read_csv(demo_build.exports / "crm" / "contract_lines.csv")
    for fault in (f for f in truth if f["fault"] == "value_drift"):
        segment = int(fault["note"].split()[1]) - 1
        factor = float(fault["note"].split(" x ")[1])
        versions = sorted(
            (r for r in lines if r["contract_id"] == fault["new_contract_id"]),
            key=lambda r: (r["valid_from"], r["contract_line_id"], int(r["version_no"])),
        )
        version = versions[segment]
        start, end = date.fromisoformat(version["valid_from"]), date.fromisoformat(version["valid_to"])
        months = (end.year - start.year) * 12 + end.month - start.month
        price = float(version["annual_price"])
        drifted = round(price * factor, 2)
        expected = round(price * months / 12, 2) - round(drifted * months / 12, 2)
        (row,) = query_rows(
            migrated.warehouse,
            "select value_difference from marts.fct_migration_reconciliation where phase = 'all'"
            " and legacy_contract_id = ?",
            [fault["legacy_contract_id"]],
        )
        assert float(row["value_difference"]) == pytest.approx(expected, abs=0.01)


@pytest.mark.xdist_group("test_migration.migrated")  # shares the session fixture: one worker
def test_the_run_says_what_it_found_and_writes_the_report(migrated, truth):
    assert "reconcile: " in migrated.stdout and "contracts reconciled" in migrated.stdout
    counts = {
        r["status"]: int(r["contracts"]) for r in read_csv(migrated.reports / "migration_status_counts.csv")
    }
    expected = {
        r["status"]: r["n"]
        for r in query_rows(
            migrated.warehouse,
            "select status, count(*) as n from marts.fct_migration_reconciliation"
            " where phase = 'all' group by 1",
        )
    }
    assert counts == expected
    assert counts["matched"] + sum(counts.get(s, 0) for s in ("changed", "duplicate", "missing_in_new")) > 0
    review = read_csv(migrated.reports / "migration_review_list.csv")
    assert (
        len(review)
        == query_rows(
            migrated.warehouse,
            "select count(*) as n from marts.fct_migration_review_list where phase = 'all'",
        )[0]["n"]
    )


@pytest.mark.xdist_group("test_migration.migrated")  # shares the session fixture: one worker
def test_the_report_links_each_check_to_its_data_docs_page(migrated):
    failing = read_csv(migrated.reports / "migration_failing_checks.csv")
    assert failing, "the demo's record faults are warnings"
    assert {row["result"] for row in failing} == {"warning"}
    for row in failing:
        assert (migrated.reports / row["data_docs"]).is_file(), row


@pytest.mark.xdist_group("test_migration.migrated")  # shares the session fixture: one worker
def test_the_migration_report_renders_offline_in_chromium(migrated):
    html = migrated.reports / "migration.html"
    page = open_report(html, PROJECT_ROOT / DEFAULT_REPORTS / "migration.png")
    assert page.errors == [] and page.external_requests == []
    assert len(page.plots) == 3, page.plots
    assert all(p["mainSvg"] and p["traces"] and p["data"] for p in page.plots), page.plots
    assert "Traceback" not in html.read_text(encoding="utf-8")


@pytest.mark.xdist_group("test_migration.migrated")  # shares the session fixture: one worker
def test_the_migration_reports_first_screen_says_whether_each_step_passed(migrated):
    """At 1400 x 900: each step's result, contracts and value that arrived intact, the accounts to sign
    off, then the status chart; the figures equal audit.dq_results and the marts (this test's SQL)."""
    with browse(migrated.reports / "migration.html", 1400, 900) as page:
        plots = page.wait_for_plots()
        page.screenshot(PROJECT_ROOT / DEFAULT_REPORTS / "migration_first_screen.png")
        shown = page.headline_figures()
        chart_top = page.evaluate("document.querySelector('.plotly-graph-div').getBoundingClientRect().top")
        assert page.errors == [] and page.external_requests == []
    assert plots and chart_top < 900 - 200
    expected = {}
    for r in query_rows(
        migrated.warehouse,
        "select replace(step, 'migration.', '') as step,"
        " count(*) filter (where not success and critical) as c,"
        " count(*) filter (where not success and not critical) as w from audit.dq_results where run_id ="
        " (select run_id from audit.migration_runs where phase = 'all' order by finished_at desc limit 1)"
        " and step like 'migration.%' group by all",
    ):
        expected["step_result", r["step"]] = "failed" if r["c"] else ("warnings" if r["w"] else "passed")
    (contracts,) = query_rows(
        migrated.warehouse,
        "select count(*) filter (where status = 'matched') as n from marts.fct_migration_reconciliation"
        " where phase = 'all'",
    )
    expected["contracts_matched", ""] = str(contracts["n"])
    for r in query_rows(
        migrated.warehouse,
        "select currency, round(100 * sum(case when status = 'matched' then legacy_value else 0 end)"
        " / sum(legacy_value), 2) as pct from marts.fct_migration_reconciliation where phase = 'all'"
        " group by currency",
    ):
        expected["matched_value_pct", r["currency"]] = f"{r['pct']:.2f}"
    (review,) = query_rows(
        migrated.warehouse, "select count(*) as n from marts.fct_migration_review_list where phase = 'all'"
    )
    expected["review_accounts", ""] = str(review["n"])
    assert len([k for k in expected if k[0] == "step_result"]) == 4
    assert shown == expected


@pytest.mark.xdist_group("test_migration.migrated")  # shares the session fixture: one worker
def test_checks_are_recorded_per_step(migrated):
    rows = query_rows(
        migrated.warehouse,
        "select step, count(*) as checks, bool_or(not success and critical) as critical_failed"
        " from audit.dq_results where step like 'migration.%' group by step",
    )
    steps = {r["step"]: r for r in rows}
    assert set(steps) == {"migration.extract", "migration.map", "migration.load", "migration.reconcile"}
    assert not any(r["critical_failed"] for r in rows)
    (run,) = query_rows(migrated.warehouse, "select status, stopped_at_step from audit.migration_runs")
    assert run == {"status": "ok", "stopped_at_step": None}


# --------------------------------------------------------------------------- a clean legacy export


# Session scope: a module fixture is rebuilt whenever another module's test runs in between
# on the same xdist worker; this one is a full run, built once.
@pytest.fixture(scope="session")
def clean(clean_build: Built, tmp_path_factory: pytest.TempPathFactory) -> Migrated:
    result = migrate(clean_build, tmp_path_factory.mktemp("clean_migration"))
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.mark.xdist_group("clean_build")  # shares the session fixture: one worker
def test_a_clean_legacy_export_reconciles_completely(clean):
    assert read_csv(clean.build.exports / "ground_truth" / "migration_faults.csv") == []
    statuses = query_rows(
        clean.warehouse, "select status, count(*) as n from marts.fct_migration_reconciliation group by 1"
    )
    contracts = read_csv(clean.build.exports / "crm" / "service_contracts.csv")
    assert statuses == [{"status": "matched", "n": len(contracts)}]
    assert (
        query_rows(clean.warehouse, "select count(*) as n from marts.fct_migration_differences")[0]["n"] == 0
    )
    parallel = query_rows(
        clean.warehouse, "select status, count(*) as n from marts.fct_migration_parallel_run group by 1"
    )
    assert [p["status"] for p in parallel] == ["matched"] and parallel[0]["n"] > 0
    failed = query_rows(
        clean.warehouse,
        "select suite, expectation from audit.dq_results where step like 'migration.%' and not success",
    )
    assert failed == []


@pytest.mark.xdist_group("clean_build")  # shares the session fixture: one worker
def test_the_parallel_run_compares_both_systems_on_the_date_asked(clean, tmp_path):
    """Legacy says a subscription ended before the as-of date; the new model still grants it."""
    exports = clean.build.exports
    as_of = date.fromisoformat(json.loads((exports / "export.json").read_text())["as_of"])
    contracts = read_csv(exports / "crm" / "service_contracts.csv")
    lines = read_csv(exports / "crm" / "contract_lines.csv")

    def in_force(row: dict[str, str], day: date) -> bool:
        return date.fromisoformat(row["valid_from"]) <= day < date.fromisoformat(row["valid_to"])

    api_lines = [r for r in lines if r["package_code"].startswith("API_")]
    chosen = next(
        c
        for c in sorted(contracts, key=lambda c: c["contract_id"])
        if c["contract_type"] == "subscription"
        and [r for r in lines if r["contract_id"] == c["contract_id"]]
        == [r for r in lines if r["contract_id"] == c["contract_id"] and in_force(r, as_of)]
        and len([r for r in lines if r["contract_id"] == c["contract_id"]]) == 1
        and date.fromisoformat(c["start_date"]) < as_of.replace(day=1) - timedelta(days=40)
        and sum(
            in_force(r, as_of)
            for r in api_lines
            if next(x for x in contracts if x["contract_id"] == r["contract_id"])["customer_id"]
            == c["customer_id"]
        )
        == 1
    )
    (line,) = [r for r in lines if r["contract_id"] == chosen["contract_id"]]
    legacy_no = next(
        r["LEGACY_KEY"]
        for r in read_legacy(exports / "legacy" / "XREF.csv")[1]
        if r["OBJ_TYPE"] == "CONTR" and r["NEW_KEY"] == chosen["contract_id"]
    )
    last_day = as_of.replace(day=1) - timedelta(days=1)  # the legacy end: before the as-of month

    def end_early(legacy: Path) -> None:
        columns, rows = read_legacy(legacy / "CONTRACTS.csv")
        for row in rows:
            if row["CONTR_NO"] == legacy_no:
                row["END_DT"] = row["SEG_TO"] = last_day.strftime("%d.%m.%Y")
        write_legacy(legacy / "CONTRACTS.csv", columns, rows)

    legacy = edited_legacy(clean.build, tmp_path, end_early)
    result = migrate(clean.build, tmp_path / "w", legacy, "--no-report")
    assert result.returncode == 0, result.stdout + result.stderr

    terms = resolved_terms()[line["package_code"]]
    expected = {
        (chosen["customer_id"], code, "only_in_new", float(term.limit)) for code, term in terms.items()
    }
    rows = query_rows(result.warehouse, "select * from marts.fct_migration_parallel_run where phase = 'all'")
    differing = {
        (r["customer_id"], r["entitlement_code"], r["status"], float(r["new_limit_quantity"]))
        for r in rows
        if r["status"] != "matched"
    }
    assert differing == expected
    assert {r["as_of_date"] for r in rows} == {as_of}
    (reconciled,) = query_rows(
        result.warehouse,
        "select status, changed_fields from marts.fct_migration_reconciliation where legacy_contract_id = ?",
        [legacy_no],
    )
    assert reconciled == {"status": "changed", "changed_fields": "end_date, valid_to"}

    # On a day the legacy contract still ran, both systems agree.
    earlier = last_day - timedelta(days=10)
    again = migrate(clean.build, tmp_path / "w", legacy, "--as-of", earlier.isoformat(), "--no-report")
    assert again.returncode == 0, again.stdout + again.stderr
    rows = query_rows(again.warehouse, "select status, as_of_date from marts.fct_migration_parallel_run")
    assert {r["status"] for r in rows} == {"matched"} and {r["as_of_date"] for r in rows} == {earlier}


# --------------------------------------------------------------------------- critical faults stop their step


def _truncate_contracts(legacy: Path) -> None:
    columns, rows = read_legacy(legacy / "CONTRACTS.csv")
    write_legacy(legacy / "CONTRACTS.csv", columns, rows[:-5])  # the control still counts them


def _drop_contracts_column(legacy: Path) -> None:
    columns, rows = read_legacy(legacy / "CONTRACTS.csv")
    columns.remove("SEG_TO")
    write_legacy(legacy / "CONTRACTS.csv", columns, [{k: r[k] for k in columns} for r in rows])


def _crosswalk_fan_out(legacy: Path) -> None:
    columns, rows = read_legacy(legacy / "XREF.csv")
    first = next(r for r in rows if r["OBJ_TYPE"] == "CONTR")
    rows.append(first | {"NEW_KEY": "SC-000001" if first["NEW_KEY"] != "SC-000001" else "SC-000002"})
    write_legacy(legacy / "XREF.csv", columns, rows)
    recount_control(legacy)


def _fees_in_major_units(legacy: Path) -> None:
    columns, rows = read_legacy(legacy / "CONTRACTS.csv")
    for row in rows:
        row["FEE_MINOR"] = str(int(row["FEE_MINOR"]) // 100)
    write_legacy(legacy / "CONTRACTS.csv", columns, rows)
    recount_control(legacy)


def _allowances_the_catalog_does_not_grant(legacy: Path) -> None:
    columns, rows = read_legacy(legacy / "CONTRACTS.csv")
    for row in rows:
        if row["PROD_CD"] == "GS-01":
            row["ALW_INCIDENT"] = "10"  # the catalog's Gold Support grants 12
    write_legacy(legacy / "CONTRACTS.csv", columns, rows)


CRITICAL_FAULTS = {
    # name: (edit, step it stops, what the message must name)
    "truncated_extract": (
        _truncate_contracts,
        "extract",
        [
            "expect_column_pair_values_to_be_equal",
            "landed_records,control_records",
            '"file_name": "CONTRACTS.csv"',
        ],
    ),
    "missing_column": (
        _drop_contracts_column,
        "extract",
        ["legacy file layout", "missing required column 'SEG_TO'"],
    ),
    "crosswalk_fan_out": (_crosswalk_fan_out, "map", ["crosswalk_targets", '"crosswalk_targets": 2']),
    "fees_at_the_wrong_scale": (
        _fees_in_major_units,
        "load",
        ["is_value_mismatch_systematic", '"currency": '],
    ),
    "allowances_differ": (
        _allowances_the_catalog_does_not_grant,
        "reconcile",
        ["is_systematic", '"entitlement_code": "INCIDENT"'],
    ),
}


@pytest.mark.parametrize("fault", sorted(CRITICAL_FAULTS))
def test_a_critical_fault_stops_the_migration_at_its_step(fault, demo_build, tmp_path):
    edit, step, named = CRITICAL_FAULTS[fault]
    legacy = edited_legacy(demo_build, tmp_path, edit)
    result = migrate(demo_build, tmp_path / "w", legacy, "--no-report")

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"[migration {step}]" in result.stderr
    for text in named:
        assert text in result.stderr, (text, result.stderr)
    if fault != "missing_column":
        assert "sample rows:" in result.stderr and "check: " in result.stderr
    steps = ["extract", "map", "load", "reconcile"]
    for earlier in steps[: steps.index(step)]:
        assert f"{earlier}: " in result.stdout  # the steps before it passed
    (run,) = query_rows(result.warehouse, "select run_id, status, stopped_at_step from audit.migration_runs")
    assert (run["status"], run["stopped_at_step"]) == ("failed", step)
    checked = {
        r["step"]
        for r in query_rows(
            result.warehouse, "select distinct step from audit.dq_results where run_id = ?", [run["run_id"]]
        )
    }
    assert checked == {f"migration.{s}" for s in steps[: steps.index(step) + 1]}
    if step == "extract":  # the extract's files were taken back out: raw is as it was
        assert query_rows(result.warehouse, "select count(*) as n from raw.legacy_contracts")[0]["n"] == 0
        current = query_rows(
            result.warehouse,
            "select count(*) as n from audit.ingest_manifest where table_name like 'legacy%'"
            " and status in ('landed', 'validated')",
        )
        assert current[0]["n"] == 0


# --------------------------------------------------------------------------- phases


def _phase_accounts(built: Built) -> dict[str, set[str]]:
    """Each phase's accounts, from phases.yml and the CRM accounts file (not from the warehouse)."""
    plan = yaml.safe_load((built.exports / "legacy" / "phases.yml").read_text())["phases"]
    accounts = {r["customer_id"]: r for r in read_csv(built.exports / "crm" / "accounts.csv")}
    taken: set[str] = set()
    members = {}
    for phase in plan:
        if phase.get("remainder"):
            chosen = set(accounts) - taken
        elif "where" in phase:
            chosen = {
                a for a, r in accounts.items() if all(r[k] in v for k, v in phase["where"].items())
            } - taken
        else:
            chosen = set(phase["accounts"]) - taken
        members[phase["name"]] = chosen
        taken |= chosen
    return members


RECONCILED = "select pair_id, customer_id, status, reason, changed_fields, legacy_value, new_value,"
RECONCILED += " value_difference, run_id from marts.fct_migration_reconciliation where phase = ?"
DIFFERENCES = "select pair_id, field, segment_no, legacy_value, new_value, reason"
DIFFERENCES += " from marts.fct_migration_differences where phase = ?"
PARALLEL = "select customer_id, entitlement_code, asset_id, location_id, status, legacy_limit_quantity,"
PARALLEL += " new_limit_quantity from marts.fct_migration_parallel_run where phase = ?"


def _without_run(rows: list[dict]) -> list[tuple]:
    return sorted(tuple((k, str(v)) for k, v in r.items() if k != "run_id") for r in rows)


@pytest.mark.xdist_group("test_migration.migrated")  # shares the session fixture: one worker
def test_phases_add_up_to_the_whole_and_rerunning_one_changes_nothing(migrated, demo_build, tmp_path):
    shutil.copytree(migrated.warehouse.parent, tmp_path / "w", dirs_exist_ok=True)
    warehouse = tmp_path / "w" / "warehouse.duckdb"
    members = _phase_accounts(demo_build)
    for phase in members:
        result = migrate(demo_build, tmp_path / "w", None, "--phase", phase, "--no-report")
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"phase {phase}: " in result.stdout

    for sql in (RECONCILED, DIFFERENCES, PARALLEL):
        whole = _without_run(query_rows(warehouse, sql, ["all"]))
        parts = [row for phase in members for row in _without_run(query_rows(warehouse, sql, [phase]))]
        assert sorted(parts) == whole, sql  # every row in exactly one phase, equal to the whole's
    for phase, accounts in members.items():
        customers = {r["customer_id"] for r in query_rows(warehouse, RECONCILED, [phase])}
        if phase == "rest":  # the remainder also takes legacy contracts of no known account
            customers.discard(None)
        assert customers <= accounts, phase

    before = {phase: query_rows(warehouse, RECONCILED, [phase]) for phase in members}
    again = migrate(demo_build, tmp_path / "w", None, "--phase", "pilot", "--no-report")
    assert again.returncode == 0, again.stdout + again.stderr
    after = {phase: query_rows(warehouse, RECONCILED, [phase]) for phase in members}
    assert _without_run(after["pilot"]) == _without_run(before["pilot"])
    assert {r["run_id"] for r in after["pilot"]} != {r["run_id"] for r in before["pilot"]}
    for phase in members.keys() - {"pilot"}:
        assert after[phase] == before[phase], f"validating pilot touched {phase}"
    plan = query_rows(warehouse, "select phase, accounts from audit.migration_phases order by position")
    assert [(p["phase"], p["accounts"]) for p in plan] == [(name, len(a)) for name, a in members.items()]


@pytest.mark.xdist_group("test_migration.migrated")  # shares the session fixture: one worker
def test_an_unknown_phase_is_refused_naming_the_phases(migrated, tmp_path):
    result = migrate(migrated.build, tmp_path, None, "--phase", "wave9", "--no-report")
    assert result.returncode == 2
    assert "no phase 'wave9'" in result.stderr and "pilot, smb, rest" in result.stderr


def test_validating_without_a_new_model_is_refused(demo_build, tmp_path):
    run = entitlements(
        "migrate",
        "validate",
        demo_build.exports / "legacy",
        "--warehouse",
        tmp_path / "none.duckdb",
        "--as-of",
        "2026-10-31",
    )
    assert run.returncode == 2
    assert "build the new model first" in run.stderr
    assert not (tmp_path / "none.duckdb").exists()


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ("phases: []\n", "top-level `phases:` list"),
        ("phases:\n  - name: a\n    accounts: [C00001]\n    where: {segment: [smb]}\n", "exactly one of"),
        (
            "phases:\n  - name: a\n    remainder: true\n  - name: b\n    accounts: [C00001]\n",
            "only the last phase",
        ),
        ("phases:\n  - name: a\n    accounts: [C00001]\n  - name: a\n    accounts: [C00002]\n", "used twice"),
        ("phases:\n  - name: all\n    accounts: [C00001]\n", "not 'all'"),
        ("phases:\n  - name: a\n    where: {region: [EMEA]}\n", "not on region"),
        ("phases:\n  - name: a\n    acounts: [C00001]\n", "unknown key(s) acounts"),
    ],
)
def test_an_unusable_plan_is_refused_naming_the_phase(tmp_path, plan, message):
    path = tmp_path / "phases.yml"
    path.write_text(plan)
    with pytest.raises(MigrationPlanError, match=r"phases\.yml") as raised:
        load_plan(path)
    assert message in str(raised.value)


def test_an_account_belongs_to_the_first_phase_that_takes_it(demo_warehouse, demo_build):
    accounts = read_csv(demo_build.exports / "crm" / "accounts.csv")
    smb = sorted(a["customer_id"] for a in accounts if a["segment"] == "smb")
    plan = [
        Phase("first", accounts=(smb[0], smb[1])),
        Phase("smb", where={"segment": ("smb",)}),
        Phase("rest", remainder=True),
    ]
    members = resolve_plan(demo_warehouse, plan)
    assert members["first"] == smb[:2]
    assert members["smb"] == smb[2:]
    assert sorted(members["first"] + members["smb"] + members["rest"]) == sorted(
        a["customer_id"] for a in accounts
    )
    with pytest.raises(MigrationPlanError, match="C99999"):
        resolve_plan(demo_warehouse, [Phase("typo", accounts=("C99999",))])


def test_a_stopped_validation_still_writes_its_report(demo_build, tmp_path):
    legacy = edited_legacy(demo_build, tmp_path, _crosswalk_fan_out)
    result = migrate(demo_build, tmp_path / "w", legacy)
    assert result.returncode == 1
    html = (result.reports / "migration.html").read_text(encoding="utf-8")
    assert "stopped at step map" in html and "crosswalk_targets" in html
    failing = read_csv(result.reports / "migration_failing_checks.csv")
    assert failing[0]["result"] == "CRITICAL" and failing[0]["column_name"] == "crosswalk_targets"


@pytest.mark.xdist_group("test_migration.migrated")  # shares the session fixture: one worker
def test_every_migration_suite_guards_a_model_of_its_step(migrated):
    from great_expectations.core import ExpectationSuite

    from entitlements.quality.gates import MIGRATION_STEPS, committed_suites

    models = {
        path.stem: path.read_text()
        for path in (PROJECT_ROOT / "dbt_project" / "models").rglob("*migration*/*.sql")
    }
    for step in MIGRATION_STEPS:
        suites = committed_suites(f"migration/{step}")
        assert suites, step
        assert any(e["meta"]["critical"] for s in suites.values() for e in s["expectations"]), step
        for name, suite in suites.items():
            schema, table = suite["meta"]["table"].split(".")
            assert name == f"migration.{step}.{table}"
            in_step = f"tags=['migration_{step}']" in models.get(table, "") or (
                step == "reconcile" and table.startswith("fct_migration_")
            )
            assert in_step, f"{name}: {table} is not built by step {step}"
            columns = {
                r["column_name"]
                for r in query_rows(
                    migrated.warehouse,
                    "select column_name from information_schema.columns"
                    " where table_schema = ? and table_name = ?",
                    [schema, table],
                )
            }
            assert set(suite["meta"]["key_columns"]) <= columns, name
            assert suite["meta"]["phase_filter"] in (None, "in_phase", "phase")
            if suite["meta"]["phase_filter"]:
                assert suite["meta"]["phase_filter"] in columns, name
            assert len(ExpectationSuite(**suite).expectations) == len(suite["expectations"]) > 0


# --------------------------------------------------------------------------- the legacy export's shape


def test_the_legacy_export_is_unlike_the_new_model(tmp_path):
    summary = generate_demo(tmp_path, seed=3, customers=12, usage_events=2000, plant_leaks=False)
    legacy = summary.out_dir / "legacy"
    assert (legacy / "CONTRACTS.csv").read_text().splitlines()[0].startswith("CONTR_NO|SEG_NO|CUST_NO|")
    contracts = {c["contract_id"]: c for c in read_csv(summary.out_dir / "crm" / "service_contracts.csv")}
    versions = read_csv(summary.out_dir / "crm" / "contract_lines.csv")
    xref = {
        r["LEGACY_KEY"]: r["NEW_KEY"] for r in read_legacy(legacy / "XREF.csv")[1] if r["OBJ_TYPE"] == "CONTR"
    }
    for row in read_legacy(legacy / "CONTRACTS.csv")[1]:
        contract = contracts[xref[row["CONTR_NO"]]]
        assert row["CONTR_NO"] != contract["contract_id"]  # other ids, through the crosswalk
        end = date.fromisoformat(contract["end_date"]) - timedelta(days=1)
        assert row["END_DT"] == end.strftime("%d.%m.%Y")  # legacy date text, inclusive end
        version = sorted(
            (v for v in versions if v["contract_id"] == contract["contract_id"]),
            key=lambda v: (v["valid_from"], v["contract_line_id"], int(v["version_no"])),
        )[int(row["SEG_NO"]) - 1]
        assert int(row["FEE_MINOR"]) == round(float(version["annual_price"]) * 100)  # minor units
        assert row["PROD_CD"] != version["package_code"]  # old product codes, through PRODMAP
