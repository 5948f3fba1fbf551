"""End to end on a second export nobody here wrote (tests/fixtures/real_exports_b/: Salesforce Data
Loader CSVs, the Stripe Dashboard's customers CSV and API lists, CloudEvents), written by someone new
to the project from the vendors' docs and configured from ours. Its README has the leaks computed by
hand. What it found: a billing customer whose metadata names the 15-character form of a Salesforce
account id, or no account at all, and invoice lines naming contracts by their 15-character ids."""

from __future__ import annotations

import csv
import json
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.conftest import entitlements

# One worker for the module: its fixtures are full runs, built once.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("test_real_exports_b")]

FIXTURE = Path(__file__).parent / "fixtures" / "real_exports_b" / "export"
AS_OF = "2026-11-15"
ACME, BIRCH, COBALT = "001Hs00003XkAcmIAF", "001Hs00003XkBirIAF", "001Hs00003XkCobIAF"
QA_SANDBOX = "cus_QvZzInternalT3"

# The README's table, computed by hand from the files.
ACME_OVERAGE = ("unbilled_overage", ACME, Decimal("60.00"), "EUR")
EXPECTED_LEAKS = sorted(
    [
        ACME_OVERAGE,
        ("under_billed", BIRCH, Decimal("500.00"), "USD"),
        ("premium_service_on_standard", BIRCH, Decimal("100.00"), "USD"),
        ("over_allowance_service", BIRCH, Decimal("300.00"), "USD"),
        ("unbilled_service", BIRCH, Decimal("300.00"), "USD"),
        ("uncovered_service", COBALT, Decimal("250.00"), "GBP"),
    ]
)


def _rows(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


LEAKS = "select category, customer_id, amount, currency from marts.fct_revenue_leakage"
UNRESOLVED = "select used_in, source_id, record_count from marts.fct_unresolved_customer_ids order by 1, 2"


def _leaks(warehouse: Path) -> list[tuple]:
    return sorted(_rows(warehouse, LEAKS))


def _unresolved(warehouse: Path) -> list[tuple]:
    return _rows(warehouse, UNRESOLVED)


UNENTITLED = (
    "select customer_id, meter_code, cast(period_start as varchar), used_quantity, finding"
    " from marts.fct_unentitled_usage order by 1, 3"
)
QA_USAGE = (QA_SANDBOX, "API_CALLS", "2026-10-01", Decimal("500"), "customer_unresolved")


def _run(exports: Path, warehouse: Path, *options: str) -> str:
    run = entitlements("run", exports, "--as-of", AS_OF, "--warehouse", warehouse, "--no-reports", *options)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("real_b")
    shutil.copytree(FIXTURE, root / "exports")
    stdout = _run(root / "exports", root / "warehouse.duckdb")
    return root / "exports", root / "warehouse.duckdb", stdout


@pytest.fixture
def second(built: tuple[Path, Path, str]) -> Path:
    return built[1]


def test_every_hand_computed_leak_is_found_to_the_cent_on_the_crm_account(second):
    # Birch's Stripe metadata names its account by the 15-character id: its leaks are Birch's, one
    # customer, not two.
    assert _leaks(second) == EXPECTED_LEAKS


def test_a_15_character_account_id_in_stripe_metadata_resolves_to_the_account(second):
    assert _rows(
        second,
        "select source_id, customer_id, resolved_by from intermediate.int_customer_identities"
        " where source_system = 'billing' order by 1",
    ) == [
        ("cus_QvAcmeR0b0t1c5", ACME, "billing_customer"),
        ("cus_QvB1rchL0g1st1", BIRCH, "billing_customer"),
        (QA_SANDBOX, None, None),
    ]
    assert _unresolved(second) == [("billing_customers", QA_SANDBOX, 1), ("usage_events", QA_SANDBOX, 1)]
    # Its 500 calls are no one's: listed with why, not only counted among unresolved ids.
    assert _rows(second, UNENTITLED) == [QA_USAGE]


def test_explanations_name_only_what_the_records_hold(second):
    # The case names no asset and no site: the explanation says neither (it printed "asset ? at ?").
    assert _rows(
        second, "select explanation from marts.fct_revenue_leakage where category = 'uncovered_service'"
    ) == [
        (
            "PHONE_SUPPORT delivered free on 2026-08-10 with no active entitlement covering it:"
            " 1 x 250.00 GBP = 250.00 GBP",
        )
    ]


def test_the_run_names_the_failed_check_and_a_rerun_names_no_file_it_did_not_read(built):
    exports, warehouse, stdout = built
    # September's leakage is 40 % of what USD billed that month: a warning the run names.
    named = "mart checks: 46 expectations, 1 non-critical failures\n  [warning] marts.fct_leakage_kpis:"
    assert named in stdout
    assert "expect_column_values_to_be_between on leakage_share (1 of 9 row(s) unexpected" in stdout
    assert stdout.count("ingest: landing ") == 14
    again = _run(exports, warehouse)
    assert "ingest: landing" not in again
    assert "ingest: 0 files landed, 14 skipped (already loaded)" in again


def test_metadata_naming_no_account_is_unresolved_and_15_character_contract_ids_still_match(tmp_path):
    exports = tmp_path / "exports"
    shutil.copytree(FIXTURE, exports)
    customers = exports / "billing" / "unified_customers.csv"
    acme_line = next(line for line in customers.read_bytes().split(b"\r\n") if b"cus_QvAcmeR0b0t1c5" in line)
    # An Opportunity's id where the account's belongs: a mistake a person makes in Stripe's dashboard.
    customers.write_bytes(
        customers.read_bytes().replace(acme_line, acme_line.replace(ACME.encode(), b"006Hs00000OppA1IAA"))
    )
    for name in ("invoices.json", "subscriptions.json"):
        path = exports / "billing" / name
        text = path.read_text(encoding="utf-8")
        assert '"810Hs0000004GpRIAU"' in text and '"811Hs000000Bq1bIAC"' in text
        path.write_text(
            text.replace('"810Hs0000004GpRIAU"', '"810Hs0000004GpR"').replace(
                '"811Hs000000Bq1bIAC"', '"811Hs000000Bq1b"'
            ),
            encoding="utf-8",
        )
    warehouse = tmp_path / "warehouse.duckdb"
    stdout = _run(exports, warehouse)

    # Acme's billing customer, its invoices and its usage are listed, not counted as resolved.
    acme = "cus_QvAcmeR0b0t1c5"
    assert _unresolved(warehouse) == [
        ("billing_customers", acme, 1),
        ("billing_customers", QA_SANDBOX, 1),
        ("invoices", acme, 3),
        ("usage_events", acme, 7),
        ("usage_events", QA_SANDBOX, 1),
    ]
    summary = stdout.split("Customer ids resolving to no CRM account")[1].splitlines()
    assert [line.split() for line in summary[1:5]] == [
        ["used_in", "ids", "records"],
        ["billing_customers", "2", "2"],
        ["invoices", "1", "3"],
        ["usage_events", "2", "8"],
    ]
    # Birch's lines name contract 810Hs0000004GpR: the CRM's 810Hs0000004GpRIAU, priced as before.
    assert _rows(
        warehouse,
        "select distinct contract_id, contract_line_id from intermediate.int_invoice_lines"
        " where contract_line_id is not null and customer_id = '" + BIRCH + "'",
    ) == [("810Hs0000004GpRIAU", "811Hs000000Bq1bIAC")]
    assert _leaks(warehouse) == [leak for leak in EXPECTED_LEAKS if leak != ACME_OVERAGE]


def _acme_line_rejected(tmp_path: Path) -> Path:
    """The export with Acme's only contract line dated '1/1/2026' (as a report export might write it):
    the row is rejected at ingest, the rest lands (run with --max-rejected-share 0.5)."""
    exports = tmp_path / "exports"
    shutil.copytree(FIXTURE, exports)
    lines = exports / "crm" / "ContractLineItem.csv"
    text = lines.read_text(encoding="utf-8")
    assert text.count('"2026-01-01","2026-12-31"') == 1 and '"811Hs000000Bq1aIAC"' in text
    lines.write_text(text.replace('"2026-01-01","2026-12-31"', '"1/1/2026","2026-12-31"'), encoding="utf-8")
    return exports


def test_a_subscription_naming_a_contract_line_the_crm_export_lacks_grants_in_its_place(tmp_path):
    exports = _acme_line_rejected(tmp_path)
    warehouse = tmp_path / "warehouse.duckdb"
    stdout = _run(exports, warehouse, "--max-rejected-share", "0.5")
    assert "crm/ContractLineItem.csv: 1 of 3 rows rejected" in stdout
    assert _rows(warehouse, "select line, column_name, reason from audit.rejected_rows") == [
        (2, "valid_from", "cannot read '1/1/2026' as DATE (expected YYYY-MM-DD)")
    ]
    # Acme's Stripe subscription names the rejected line: with no CRM line to be the agreement, its
    # item grants the package (API_PLATFORM: 100,000 calls a month) until its period ends, and the
    # October overage is found as before, against that grant.
    assert _rows(
        warehouse,
        "select entitlement_id, contract_type, cast(valid_from as varchar), cast(valid_to as varchar),"
        " limit_quantity from intermediate.int_entitlement_grants where customer_id = '" + ACME + "'",
    ) == [("si_QvAcme00000001/v1/API_CALLS", "subscription", "2026-01-01", "2026-12-01", Decimal("100000"))]
    assert _leaks(warehouse) == EXPECTED_LEAKS
    assert _rows(warehouse, UNENTITLED) == [QA_USAGE]


def test_usage_no_contract_line_or_subscription_grants_is_listed_as_never_entitled(tmp_path):
    exports = _acme_line_rejected(tmp_path)
    subscriptions = exports / "billing" / "subscriptions.json"
    listed = json.loads(subscriptions.read_text(encoding="utf-8"))
    listed["data"] = [s for s in listed["data"] if s["customer"] != "cus_QvAcmeR0b0t1c5"]
    subscriptions.write_text(json.dumps(listed), encoding="utf-8")
    warehouse = tmp_path / "warehouse.duckdb"
    stdout = _run(exports, warehouse, "--max-rejected-share", "0.5")
    # Acme's usage has no grant at all now: no leak, no breach, but every month of it is listed.
    # September 50,000 + 60,000; October 40,000 + 50,000 + 40,000 (evt-1003 again in November's
    # file counts once); November 40,000.
    assert _rows(warehouse, UNENTITLED) == [
        (ACME, "API_CALLS", "2026-09-01", Decimal("110000"), "never_entitled"),
        (ACME, "API_CALLS", "2026-10-01", Decimal("130000"), "never_entitled"),
        (ACME, "API_CALLS", "2026-11-01", Decimal("40000"), "never_entitled"),
        QA_USAGE,
    ]
    assert ACME_OVERAGE not in _leaks(warehouse)
    summary = stdout.split("Usage no entitlement covers (marts.fct_unentitled_usage)")[1].splitlines()
    assert [line.split() for line in summary[1:4]] == [
        ["finding", "meter_code", "customers", "months", "quantity"],
        ["customer_unresolved", "API_CALLS", "1", "1", "500.0000"],
        ["never_entitled", "API_CALLS", "1", "3", "280000.0000"],
    ]


def test_check_answers_for_an_account_named_by_another_systems_id(built, tmp_path):
    # A support agent copies the id from Salesforce's URL (15 characters) or from Stripe (cus_...).
    _, warehouse, _ = built
    for named in ("001Hs00003XkBir", "cus_QvB1rchL0g1st1", BIRCH):
        answer = entitlements(
            "check", "--warehouse", warehouse, "--customer", named, "--entitlement", "PHONE_SUPPORT",
            "--on", "2026-11-01",
        )  # fmt: skip
        assert answer.returncode == 0, answer.stdout + answer.stderr
        assert answer.stdout.startswith(f"{BIRCH} / PHONE_SUPPORT on 2026-11-01: ENTITLED\n"), answer.stdout
    unknown = entitlements(
        "check", "--warehouse", warehouse, "--customer", "001Hs00003XkZzz", "--entitlement", "PHONE_SUPPORT"
    )
    assert unknown.returncode != 0 and "unknown customer '001Hs00003XkZzz'" in unknown.stdout + unknown.stderr
    requests = tmp_path / "requests.csv"
    requests.write_text(
        "customer_id,entitlement_code,on\n001Hs00003XkBir,PHONE_SUPPORT,2026-11-01\n"
        "cus_QvAcmeR0b0t1c5,API_CALLS,2026-11-01\n"
    )
    batch = entitlements("check-batch", requests, "--warehouse", warehouse, "--out", tmp_path / "answers.csv")
    assert batch.returncode == 0, batch.stdout + batch.stderr
    with (tmp_path / "answers.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    # Each answer row echoes its request's id (to join back), answered for the account it names.
    assert [(r["customer_id"], r["entitlement_code"], r["entitled"], r["error"]) for r in rows] == [
        ("001Hs00003XkBir", "PHONE_SUPPORT", "True", ""),
        ("cus_QvAcmeR0b0t1c5", "API_CALLS", "True", ""),
    ]


def test_a_data_exports_other_objects_are_left_out_by_the_ignore_list(tmp_path):
    # A weekly Data Export unzips to every object of the org (and attachments): entitlements.yml's
    # ignore list leaves out what this project does not read, and the run says so.
    exports = tmp_path / "exports"
    shutil.copytree(FIXTURE, exports)
    crm = exports / "crm"
    (crm / "Opportunity.csv").write_text(
        '"Id","AccountId","Name","StageName","CloseDate","Amount","CurrencyIsoCode"\n'
        f'"006Hs00000OppA1IAA","{ACME}","Acme API Platform 2026","Closed Won","2025-12-10","24000.00","EUR"\n'
    )
    (crm / "Product2.csv").write_text('"Id","Name"\n"01tHs00000AbCdEIAV","API Platform"\n')
    (exports / "Attachments").mkdir()
    (exports / "Attachments" / "00PHs000001Abc.pdf").write_bytes(b"%PDF-1.4\n")
    refused = entitlements("run", exports, "--as-of", AS_OF, "--warehouse", tmp_path / "w0.duckdb")
    assert refused.returncode != 0 and "Attachments/00PHs000001Abc.pdf" in refused.stdout + refused.stderr

    config = exports / "entitlements.yml"
    config.write_text(config.read_text() + "\nignore: [Opportunity*, Product2*, Attachments/*]\n")
    stdout = _run(exports, tmp_path / "warehouse.duckdb")
    assert (
        "ingest: 14 files landed, 0 skipped (already loaded), 3 not read (entitlements.yml ignore:"
        " Attachments/00PHs000001Abc.pdf, crm/Opportunity.csv, crm/Product2.csv)"
    ) in stdout
    assert _leaks(tmp_path / "warehouse.duckdb") == EXPECTED_LEAKS


def _blank(exports: Path, name: str, key: str, ids: set[str], fields: tuple[str, ...]) -> None:
    """Blank these fields of the rows of crm/<name> whose column key is one of ids."""
    path = exports / "crm" / name
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if row[key] in ids:
            row.update(dict.fromkeys(fields, ""))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), quoting=csv.QUOTE_ALL)
        writer.writeheader()
        writer.writerows(rows)


def test_an_evergreen_contract_covers_until_it_gets_an_end_and_a_line_without_dates_takes_its_contracts(
    tmp_path,
):
    # Acme's contract has no EndDate and no Term (evergreen), nor has its line; Birch's line has no
    # dates of its own, its contract runs 2025-12-01 to 2026-11-30. All used to be refused at ingest.
    acme_contract, birch_contract = "810Hs0000004GpQIAU", "810Hs0000004GpRIAU"
    exports = tmp_path / "exports"
    shutil.copytree(FIXTURE, exports)
    _blank(exports, "ServiceContract.csv", "Id", {acme_contract}, ("EndDate", "Term"))
    _blank(exports, "ContractLineItem.csv", "ServiceContractId", {acme_contract}, ("EndDate",))
    _blank(exports, "ContractLineItem.csv", "ServiceContractId", {birch_contract}, ("StartDate", "EndDate"))
    warehouse = tmp_path / "warehouse.duckdb"
    _run(exports, warehouse)
    # Same leaks, to the cent: Acme's October overage is still over an allowance in force; Birch's
    # line (30,000 for its 12 months, priced per year) still under-billed in September.
    assert _leaks(warehouse) == EXPECTED_LEAKS
    assert _rows(
        warehouse,
        "select customer_id, cast(valid_from as varchar), cast(valid_to as varchar)"
        " from intermediate.int_entitlement_grants"
        " where entitlement_code in ('API_CALLS', 'PHONE_SUPPORT') and customer_id <> '" + COBALT + "'"
        " order by 1",
    ) == [(ACME, "2026-01-01", None), (BIRCH, "2025-12-01", "2026-12-01")]
    # Nothing of Acme's is due to renew; Birch's line counts in its contract's closing value.
    assert _rows(
        warehouse,
        "select contract_id, renewal_window, annual_value from marts.fct_renewal_pipeline order by 1",
    ) == [
        (birch_contract, "0-30", Decimal("30000.00")),
        ("810Hs0000004GpSIAU", "expired_not_renewed", Decimal("20000.00")),
    ]
    # Years on, Acme is still covered; Birch is not once its contract ended.
    acme = entitlements(
        "check",
        "--warehouse",
        warehouse,
        "--customer",
        ACME,
        "--entitlement",
        "API_CALLS",
        "--on",
        "2030-06-15",
    )
    assert acme.returncode == 0, acme.stdout + acme.stderr
    assert "ENTITLED\n" in acme.stdout
    assert f"(contract {acme_contract}, package API_PLATFORM), with no end date" in acme.stdout
    assert "in the period 2030-06-01 to 2030-07-01 (exclusive)" in acme.stdout
    birch = entitlements(
        "check", "--warehouse", warehouse, "--customer", BIRCH, "--entitlement", "PHONE_SUPPORT",
        "--on", "2026-12-15",
    )  # fmt: skip
    assert birch.returncode == 1, birch.stdout + birch.stderr
    assert "NOT ENTITLED: expired on 2026-12-01" in birch.stdout
    statement = tmp_path / "acme.html"
    written = entitlements("statement", "--warehouse", warehouse, "--customer", ACME, "--out", statement)
    assert written.returncode == 0, written.stdout + written.stderr
    html = statement.read_text(encoding="utf-8")
    assert "Term from 1 Jan 2026 (no end date)" in html
    assert '<td class="date valid-through">no end date</td>' in html


def test_renewal_tables_name_the_contract_and_the_customer(second):
    # Finance reads names, not Salesforce ids: the CRM's Name of the contract and of the account.
    from entitlements.reports.renewals import alerts_due, missed_renewals, renewal_filter, upcoming_renewals
    from entitlements.warehouse import connect_marts

    con = connect_marts(second)
    try:
        flt = renewal_filter(con)
        named = [
            table[["contract_name", "customer_name"]].drop_duplicates().values.tolist()
            for table in (upcoming_renewals(con, flt), missed_renewals(con, flt), alerts_due(con, flt))
        ]
    finally:
        con.close()
    acme, birch = (
        ["Acme API Platform 2026", "Acme Robotics GmbH"],
        ["Birch Premier Support FY26", "Birch Logistics, Inc."],
    )
    cobalt = ["Cobalt Premier Support", "Cobalt Health Ltd"]
    # Upcoming by days left: Birch's ends 2026-11-30 (16 days), Acme's 2026-12-31 (47). Alerts due,
    # latest first: Acme's 60-day (2026-11-02), Birch's 30-day (2026-11-01), ...; Cobalt's missed.
    assert named == [[birch, acme], [cobalt], [acme, birch, cobalt]]  # fmt: skip


ENTITLEMENTS_CSV = (
    '"Id","Name","AccountId","Type","ServiceContractId","ContractLineItemId","AssetId","StartDate","EndDate",'
    '"IsPerIncident","CasesPerEntitlement","RemainingCases","Status"\n'
    # Cobalt's support after its contract ended: an entitlement of its own, one case.
    f'"550Hs00000EnT01IAF","Cobalt bridge support","{COBALT}","Phone Support","","","","2026-07-01",'
    '"2026-12-31","true","1","1","Active"\n'
    # Birch's, created from its contract line: the line is the agreement.
    f'"550Hs00000EnT02IAF","Birch premier phone","{BIRCH}","Phone Support","810Hs0000004GpRIAU",'
    '"811Hs000000Bq1bIAC","","2025-12-01","2026-11-30","false","","","Active"\n'
    # Acme's support for one robot arm, open-ended.
    f'"550Hs00000EnT03IAF","Acme arm support","{ACME}","Phone Support","","","02iHs00000AcmA1IAJ",'
    '"2026-01-01","","false","","","Active"\n'
)
ASSET_CSV = (
    '"Id","Name","AccountId","SerialNumber","InstallDate","Status"\n'
    f'"02iHs00000AcmA1IAJ","Robot arm 7","{ACME}","RA-7","2025-12-01","Installed"\n'
)


def test_a_salesforce_entitlement_of_its_own_covers_its_account_and_one_of_a_line_adds_nothing(tmp_path):
    exports = tmp_path / "exports"
    shutil.copytree(FIXTURE, exports)
    (exports / "crm" / "Entitlement.csv").write_text(ENTITLEMENTS_CSV, encoding="utf-8")
    (exports / "crm" / "Asset.csv").write_text(ASSET_CSV, encoding="utf-8")
    refused = entitlements(
        "run", exports, "--as-of", AS_OF, "--warehouse", tmp_path / "w0.duckdb", "--no-reports"
    )
    # Cobalt's record grants a package: which one, only the mapping can say.
    assert refused.returncode != 0
    assert (
        "crm/Entitlement.csv, line 2, column 'package_code': unmapped entitlement id 'Phone Support':"
        ' add a row "entitlement,Phone Support,<package_code>"'
    ) in refused.stdout + refused.stderr
    with (exports / "mapping.csv").open("a", encoding="utf-8") as mapping:
        mapping.write("entitlement,Phone Support,PREMIER_SUPPORT\n")
    warehouse = tmp_path / "warehouse.duckdb"
    _run(exports, warehouse)
    # Case 00001026 (2026-08-10) is Cobalt's one per-incident case: covered, no longer a leak. Birch's
    # third case is still over its line's allowance of 2 a year: its record granted nothing more.
    assert _leaks(warehouse) == [leak for leak in EXPECTED_LEAKS if leak[0] != "uncovered_service"]
    assert _rows(
        warehouse,
        "select entitlement_id, contract_type, limit_period, limit_quantity, cast(valid_to as varchar)"
        " from intermediate.int_entitlement_grants where contract_line_id = '550Hs00000EnT01IAF'"
        " and entitlement_code = 'PHONE_SUPPORT'",
    ) == [("550Hs00000EnT01IAF/v1/PHONE_SUPPORT", "entitlement", "term", Decimal("1"), "2027-01-01")]
    # Cobalt's statement names the entitlement as its CRM does, not by its id.
    statement = tmp_path / "cobalt.html"
    written = entitlements("statement", "--warehouse", warehouse, "--customer", COBALT, "--out", statement)
    assert written.returncode == 0, written.stdout + written.stderr
    assert '<span class="id">Cobalt bridge support</span><span class="kind">Entitlement</span>' in (
        statement.read_text(encoding="utf-8")
    )
    # Acme's record covers its robot arm, named as the user interface shows it (15 characters) too;
    # not another asset.
    for asset, code in (("02iHs00000AcmA1IAJ", 0), ("02iHs00000AcmA1", 0), ("02iHs00000AcmZ9", 1)):
        answer = entitlements(
            "check", "--warehouse", warehouse, "--customer", ACME, "--entitlement", "PHONE_SUPPORT",
            "--asset", asset, "--on", AS_OF,
        )  # fmt: skip
        assert answer.returncode == code, (asset, answer.stdout + answer.stderr)


def test_a_contract_line_whose_contract_is_not_in_the_export_is_named_by_the_run(tmp_path):
    # A 12,000 line of a ServiceContract the export lacks grants nothing: the run says so.
    exports = tmp_path / "exports"
    shutil.copytree(FIXTURE, exports)
    with (exports / "crm" / "ContractLineItem.csv").open("a", encoding="utf-8") as lines:
        lines.write(
            '"811Hs000000Bq1zIAC","00000299","810Hs0000004GzzIAU","01tHs00000AbCdFIAV","01uHs00000PbE02IAF",'
            '"","1.00","12000.00","12000.00","","12000.00","2026-01-01","2026-12-31","Active","USD",'
            '"2025-11-20T13:05:00.000Z"\n'
        )
    stdout = _run(exports, tmp_path / "warehouse.duckdb")
    assert (
        "dbt build: ok (full: no build recorded)\n  [warning] dbt staging.stg_crm__contract_lines:"
        " contract_lines_name_a_contract_of_the_export on contract_id (1 failing row(s)"
    ) in stdout
    assert _leaks(tmp_path / "warehouse.duckdb") == EXPECTED_LEAKS


def test_statement_and_as_of_take_any_id_of_the_account_and_refuse_an_unknown_one(built, tmp_path):
    # As `check` does: the Stripe id or the 15-character Salesforce id name Birch's account.
    _, warehouse, _ = built
    for named in ("cus_QvB1rchL0g1st1", "001Hs00003XkBir"):
        out = tmp_path / f"{named}.html"
        written = entitlements("statement", "--warehouse", warehouse, "--customer", named, "--out", out)
        assert written.returncode == 0, written.stdout + written.stderr
        assert "Birch Logistics, Inc." in out.read_text(encoding="utf-8")
        listed = entitlements(
            "as-of", "--on", AS_OF, "--customer", named, "--warehouse", warehouse, "--csv", tmp_path / "a.csv"
        )
        assert listed.returncode == 0, listed.stdout + listed.stderr
        with (tmp_path / "a.csv").open(newline="") as handle:
            assert {r["customer_id"] for r in csv.DictReader(handle)} == {BIRCH}
    # An id naming no account is an error, not an empty answer.
    unknown = entitlements("as-of", "--on", AS_OF, "--customer", "NOPE", "--warehouse", warehouse)
    assert unknown.returncode == 2 and "unknown customer 'NOPE'" in unknown.stderr


def test_an_expired_contract_without_an_end_date_is_named_by_the_run(tmp_path):
    # Cobalt's contract, Expired, loses EndDate and Term: with no end it reads as open-ended, which
    # its status contradicts; the run names it (a warning) rather than let it pass unseen.
    exports = tmp_path / "exports"
    shutil.copytree(FIXTURE, exports)
    _blank(exports, "ServiceContract.csv", "Id", {"810Hs0000004GpSIAU"}, ("EndDate", "Term"))
    stdout = _run(exports, tmp_path / "warehouse.duckdb")
    assert (
        "  [warning] dbt staging.stg_crm__service_contracts:"
        " assert_stg_crm__service_contracts_expired_ones_have_an_end (1 failing row(s)"
    ) in stdout
