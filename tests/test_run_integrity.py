"""Run integrity: each numbered failure of the run-integrity issue, reproduced as a hostile or unlucky
user met it (odd folder names, odd bytes, kill -9, two runs at once), and what the user sees now.

The kill and concurrency tests start real `entitlements run` processes on the canonical fixture
export (tests/fixtures/exports/README.md computes its leaks by hand: 6.00 + 80.00 USD unbilled
overage, 315.00 EUR uncovered service, 64.00 GBP unbilled service) and kill them with SIGKILL.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from entitlements.reports.common import ReportTables
from tests.conftest import BIN, CANONICAL_AS_OF, copy_fixture, entitlements, query_rows, read_csv

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
AS_OF = CANONICAL_AS_OF
EXPECTED_LEAKS = [  # tests/fixtures/exports/README.md, computed by hand
    ("EUR", "uncovered_service", Decimal("315.00")),
    ("GBP", "unbilled_service", Decimal("64.00")),
    ("USD", "unbilled_overage", Decimal("6.00")),
    ("USD", "unbilled_overage", Decimal("80.00")),
]


def leaks(warehouse: Path) -> list[tuple]:
    return [
        (r["currency"], r["category"], r["amount"])
        for r in query_rows(
            warehouse,
            "select currency, category, amount from marts.fct_revenue_leakage"
            " order by currency, category, amount",
        )
    ]


def manifest(warehouse: Path) -> list[dict]:
    return query_rows(warehouse, "select * from audit.ingest_manifest order by loaded_at, source_file")


def assert_rows_accounted(warehouse: Path) -> None:
    """Every load: rows in = landed + rejected + reverted (a refused file: nothing landed, its problem
    rows rejected), and raw holds exactly the landed rows."""
    for load in manifest(warehouse):
        if load["status"] == "skipped":
            continue
        if load["status"] == "refused":
            assert load["row_count"] == 0 and load["rows_rejected"] > 0, load
        else:
            reverted = load["rows_reverted"] or 0
            assert load["rows_in"] == load["row_count"] + load["rows_rejected"] + reverted, load
        (in_raw,) = query_rows(
            warehouse,
            f'select count(*) as n from raw."{load["table_name"]}" where _load_id = ?',
            [load["load_id"]],
        )
        assert in_raw["n"] == load["row_count"], load


# --------------------------------------------------------------------------- 1. SQL injection

SQL_TEXT = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|COPY|FROM|WHERE)\b|read_(csv|json|parquet)\(")
FILE_DERIVED = re.compile(r"\b(path|relative|source_file|export_dir|mapping_name|header|file)\b")
QUOTERS = {"quote_literal", "quote_ident", "struct_literal"}


def sql_fstrings_with_file_values() -> list[str]:
    """f-strings that look like SQL and interpolate a value derived from a file or folder name,
    unquoted: the code must bind such values as parameters or quote them with entitlements.ingest._sql."""
    found = []
    for package in ("entitlements", "ingest", "expectations"):
        for source in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(source.read_text())):
                if not isinstance(node, ast.JoinedStr):
                    continue
                text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
                if not SQL_TEXT.search(text) or " the " in text:  # " the ": a message to a person
                    continue
                for value in node.values:
                    if not isinstance(value, ast.FormattedValue):
                        continue
                    expr = value.value
                    called = getattr(getattr(expr, "func", None), "id", None)
                    if called in QUOTERS:
                        continue
                    if FILE_DERIVED.search(ast.unparse(expr)):
                        found.append(f"{source.relative_to(REPO)}:{value.lineno}: {ast.unparse(expr)}")
    return found


def test_no_sql_is_built_from_file_derived_values() -> None:
    assert sql_fstrings_with_file_values() == []


@pytest.mark.parametrize(
    "folder",
    ["O'Brien exports", "x' || (SELECT count(*) FROM duckdb_tables()) || '"],
    ids=["quote", "subquery"],
)
def test_hostile_folder_names_are_data_not_sql(tmp_path: Path, folder: str) -> None:
    """The mapping file's path is quoted in the reason of an unmapped id (it ran as SQL before)."""
    export = copy_fixture("salesforce", tmp_path / folder)
    mapping = export / "mapping.csv"
    mapping.write_text(
        "".join(line for line in mapping.read_text().splitlines(True) if "Incident" not in line)
    )
    warehouse = tmp_path / "w.duckdb"

    done = entitlements("ingest", export, "--warehouse", warehouse, "--quarantine-unmapped")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    reasons = query_rows(
        warehouse, "select reason from audit.rejected_rows where reason_kind = 'unmapped' order by line"
    )
    assert reasons and all(r["reason"].endswith(f" to {mapping}") for r in reasons), reasons
    assert query_rows(warehouse, "select count(*) as n from raw.crm_accounts") == [{"n": 3}]


# --------------------------------------------------------------------------- 2. encoding per record


def accounts_csv(names: list[str]) -> str:
    header = "customer_id,customer_name,country,currency,segment,created_date\n"
    return header + "".join(f"A{k:05d},{name},DE,EUR,smb,2024-01-15\n" for k, name in enumerate(names, 1))


def test_one_bad_byte_after_the_first_mib_rejects_its_record_not_the_file(tmp_path: Path) -> None:
    names = ["Müller GmbH", "Société Générale"] + [f"Customer {k:05d} {'x' * 40}" for k in range(20_000)]
    content = accounts_csv(names).encode("utf-8")
    content += b"A99999,M\xfcller Latin,DE,EUR,smb,2024-01-15\n"  # one Latin-1 record, past 1 MiB
    assert len(content) > 1 << 20
    export = tmp_path / "export"
    (export / "crm").mkdir(parents=True)
    (export / "crm" / "accounts.csv").write_bytes(content)
    warehouse = tmp_path / "w.duckdb"

    done = entitlements("ingest", export, "--warehouse", warehouse)

    assert done.returncode == 0, done.stderr
    assert query_rows(
        warehouse,
        "select customer_name from raw.crm_accounts where customer_id in ('A00001', 'A00002')"
        " order by customer_id",
    ) == [{"customer_name": "Müller GmbH"}, {"customer_name": "Société Générale"}]
    (rejected,) = query_rows(warehouse, "select line, reason, raw_content from audit.rejected_rows")
    assert rejected["line"] == len(names) + 2
    assert rejected["reason"].startswith("not valid utf-8: byte(s) fc")
    assert rejected["raw_content"] == "A99999,M\\xfcller Latin,DE,EUR,smb,2024-01-15"
    (load,) = manifest(warehouse)
    assert (load["rows_in"], load["row_count"], load["rows_rejected"]) == (len(names) + 1, len(names), 1)
    assert "latin-1" not in load["message"]


def test_a_declared_encoding_is_used_and_noted(tmp_path: Path) -> None:
    export = tmp_path / "export"
    (export / "crm").mkdir(parents=True)
    # cp1252's euro sign (0x80) is a control character in latin-1.
    (export / "crm" / "accounts.csv").write_bytes(accounts_csv(["Café €uro", "Plain"]).encode("cp1252"))
    warehouse = tmp_path / "w.duckdb"

    done = entitlements("ingest", export, "--warehouse", warehouse, "--encoding", "cp1252")

    assert done.returncode == 0, done.stderr
    assert query_rows(warehouse, "select customer_name from raw.crm_accounts order by customer_id") == [
        {"customer_name": "Café €uro"},
        {"customer_name": "Plain"},
    ]
    assert "read as cp1252 (declared with --encoding)" in manifest(warehouse)[0]["message"]
    unknown = entitlements("ingest", export, "--warehouse", warehouse, "--encoding", "klingon")
    assert unknown.returncode == 2 and "unknown encoding 'klingon'" in unknown.stderr


# --------------------------------------------------------------------------- runs on the canonical export


# --------------------------------------------------------------------------- 3. the landing gate


@pytest.mark.xdist_group("canonical_run")  # conftest.canonical_run: one worker builds it
def test_loads_landed_by_a_plain_ingest_are_validated_before_they_reach_the_marts(
    canonical_run: tuple[Path, Path],
) -> None:
    _, warehouse = canonical_run
    loads = [m for m in manifest(warehouse) if m["status"] != "skipped"]
    assert len(loads) == 14 and {m["status"] for m in loads} == {"validated"}
    validated = {
        r["batch"] for r in query_rows(warehouse, "select batch from audit.dq_results where step = 'landing'")
    }
    assert {m["load_id"] for m in loads} <= validated
    assert leaks(warehouse) == EXPECTED_LEAKS


# --------------------------------------------------------------------------- 4 and 5: kill -9, two runs


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        state = next(
            line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State")
        )
    except (OSError, StopIteration):
        return False
    return " Z" not in state and "zombie" not in state


def _dbt_child(pid: int) -> int | None:
    for child in _children(pid):
        try:
            if b"dbt" in Path(f"/proc/{child}/cmdline").read_bytes():
                return child
        except OSError:
            pass
    return None


@pytest.fixture
def big_export(tmp_path: Path) -> Path:
    """The canonical export plus a usage file of 1,000,000 copies of an event the export already has
    (delivered again and again: de-duplicated, so the leaks stay those computed by hand), so that
    landing takes long enough to be killed in the middle of."""
    export = copy_fixture("canonical", tmp_path / "export")
    first = (export / "usage" / "usage_2026-08.jsonl").read_text().splitlines()[0]
    with (export / "usage" / "usage_2026-08_resent.jsonl").open("w") as out:
        out.writelines([first + "\n"] * 1_000_000)
    return export


def _run_args(
    export: Path, warehouse: Path, reports: Path, command: Path = BIN / "entitlements"
) -> list[str]:
    options = {"--warehouse": warehouse, "--reports": reports, "--as-of": AS_OF}
    return [str(command), "run", str(export), *(str(x) for pair in options.items() for x in pair)]


def _start_run(export: Path, warehouse: Path, reports: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _run_args(export, warehouse, reports),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 180) -> list[str]:
    seen, deadline = [], time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return seen
    raise AssertionError(f"never printed {marker!r}:\n{''.join(seen)}")


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)  # the run's process only: its children are not signalled
    proc.wait(timeout=30)


def _rerun_recovers(export: Path, warehouse: Path, reports: Path) -> subprocess.CompletedProcess[str]:
    rerun = entitlements("run", export, "--warehouse", warehouse, "--reports", reports, "--as-of", AS_OF)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "note: cleared a stale lock" in rerun.stderr
    assert {m["status"] for m in manifest(warehouse) if m["status"] != "skipped"} == {"validated"}
    assert_rows_accounted(warehouse)
    assert leaks(warehouse) == EXPECTED_LEAKS
    return rerun


def test_kill_mid_ingest_then_rerun(big_export: Path, tmp_path: Path) -> None:
    warehouse, reports = tmp_path / "w.duckdb", tmp_path / "reports"
    proc = _start_run(big_export, warehouse, reports)
    _read_until(proc, "ingest: landing usage/usage_2026-08_resent.jsonl")  # printed as it starts
    time.sleep(0.1)
    assert proc.poll() is None, "the run ended before it could be killed mid-ingest"
    _kill(proc)

    landed = {m["source_file"] for m in manifest(warehouse) if m["status"] == "landed"}
    assert "usage/usage_2026-08.jsonl" in landed, "the files before the big one had landed"
    assert "usage/usage_2026-08_resent.jsonl" not in landed, "the big file landed before the kill"
    _rerun_recovers(big_export, warehouse, reports)


def test_kill_mid_landing_gate_then_rerun_validates_what_was_left(tmp_path: Path) -> None:
    export = copy_fixture("canonical", tmp_path / "export")
    warehouse, reports = tmp_path / "w.duckdb", tmp_path / "reports"
    proc = _start_run(export, warehouse, reports)
    _read_until(proc, "landing checks: running")
    _kill(proc)

    # The gate judges each load in one query (a fraction of a second for this export) and writes
    # every verdict in one transaction: the kill finds all loads landed or all validated, never a mix.
    assert {m["status"] for m in manifest(warehouse)} in ({"landed"}, {"validated"})
    rerun = _rerun_recovers(export, warehouse, reports)
    assert "ingest: 0 files landed, 14 skipped" in rerun.stdout


def test_kill_mid_dbt_kills_dbt_and_readers_refuse_until_a_build_finishes(tmp_path: Path) -> None:
    export = copy_fixture("canonical", tmp_path / "export")
    warehouse, reports = tmp_path / "w.duckdb", tmp_path / "reports"
    proc = _start_run(export, warehouse, reports)
    _read_until(proc, "dbt build: running")
    deadline = time.monotonic() + 60
    while (dbt := _dbt_child(proc.pid)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dbt is not None, "no dbt child process was seen"
    time.sleep(3)  # dbt has parsed and is building
    _kill(proc)

    deadline = time.monotonic() + 10
    while _alive(dbt) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(dbt), "dbt outlived the run that started it"
    for reader in (("summary",), ("report", "leakage", "--out", tmp_path / "r2"), ("as-of", "--on", AS_OF)):
        refused = entitlements(*reader, "--warehouse", warehouse)
        assert refused.returncode == 2, (reader, refused.stdout, refused.stderr)
        assert "the last build" in refused.stderr and "was killed" in refused.stderr
        assert "Traceback" not in refused.stderr
    _rerun_recovers(export, warehouse, reports)
    assert entitlements("summary", "--warehouse", warehouse).returncode == 0


def test_two_runs_at_once_one_waits_for_nothing_and_changes_nothing(tmp_path: Path) -> None:
    export = copy_fixture("canonical", tmp_path / "export")
    warehouse = tmp_path / "w.duckdb"
    first = _start_run(export, warehouse, tmp_path / "r1")
    _read_until(first, "run ")  # holds the lock
    second = _start_run(export, warehouse, tmp_path / "r2")
    second_out, _ = second.communicate(timeout=120)
    first_out, _ = first.communicate(timeout=600)

    assert first.returncode == 0, first_out
    assert second.returncode == 2, second_out
    assert f"is in use by `entitlements run` (pid {first.pid}" in second_out
    assert "nothing was changed" in second_out and "ingest:" not in second_out
    loads = manifest(warehouse)
    assert len(loads) == 14 and {m["status"] for m in loads} == {"validated"}
    assert leaks(warehouse) == EXPECTED_LEAKS


# --------------------------------------------------------------------------- 6. unexpected errors


def test_deeply_nested_json_is_a_rejected_record_not_a_traceback(tmp_path: Path) -> None:
    export = copy_fixture("canonical", tmp_path / "export")
    events = export / "usage" / "usage_2026-09.jsonl"
    good = events.read_text()
    events.write_text(good + '{"event_id": "evt-deep", "data": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    warehouse = tmp_path / "w.duckdb"

    done = entitlements("ingest", export, "--warehouse", warehouse, "--max-rejected-share", "1")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    (rejected,) = query_rows(warehouse, "select source_file, line, reason from audit.rejected_rows")
    assert (
        rejected["source_file"] == "usage/usage_2026-09.jsonl"
        and rejected["line"] == len(good.splitlines()) + 1
    )
    assert "nested too deeply" in rejected["reason"]
    assert_rows_accounted(warehouse)


def test_headers_differing_only_in_case_land_and_keep_both_values(tmp_path: Path) -> None:
    export = tmp_path / "export"
    (export / "crm").mkdir(parents=True)
    (export / "crm" / "accounts.csv").write_text(
        "customer_id,customer_name,country,currency,created_date,Customer_Name\n"
        "A1,Acme,DE,EUR,2024-01-15,ACME (as billed)\n"
    )
    warehouse = tmp_path / "w.duckdb"

    done = entitlements("ingest", export, "--warehouse", warehouse)

    assert done.returncode == 0, done.stdout + done.stderr
    assert query_rows(warehouse, "select customer_name, _extra from raw.crm_accounts") == [
        {"customer_name": "Acme", "_extra": '{"Customer_Name_1":"ACME (as billed)"}'}
    ]


# --------------------------------------------------------------------------- 7. reverted loads


def test_a_reverted_load_is_reverted_and_its_rows_still_add_up(tmp_path: Path) -> None:
    """The usage file is refused (no quantity readable), so the run reverts the files landed before it."""
    export = copy_fixture("canonical", tmp_path / "export")
    usage = export / "usage" / "usage_2026-09.jsonl"
    usage.write_text(re.sub(r'"quantity":\d+', '"quantity":"lots"', usage.read_text()))
    warehouse = tmp_path / "w.duckdb"

    done = entitlements(
        "run", export, "--warehouse", warehouse, "--reports", tmp_path / "r", "--as-of", AS_OF
    )

    assert done.returncode == 1 and "Nothing of this export was kept" in done.stderr
    loads = manifest(warehouse)
    reverted = [m for m in loads if m["status"] == "reverted"]
    assert len(reverted) == 13  # every file before the refused one
    assert all(m["row_count"] == 0 and m["rows_reverted"] == m["rows_in"] > 0 for m in reverted)
    (refused,) = [m for m in loads if m["status"] == "refused"]
    assert refused["source_file"] == "usage/usage_2026-09.jsonl"
    assert_rows_accounted(warehouse)


# --------------------------------------------------------------------------- 8. CSV formula injection


@pytest.mark.xdist_group("canonical_run")  # conftest.canonical_run: one worker builds it
def test_report_and_answer_csvs_neutralise_formulas(tmp_path: Path, canonical_run: tuple[Path, Path]) -> None:
    import pandas as pd

    tables = ReportTables("leakage", tmp_path)
    frame = pd.DataFrame(
        {
            "customer_name": ['=HYPERLINK("http://evil","x")', "+SUM(1)", "@cmd", "\tTab", "-12 Inc", "Acme"],
            "amount": [-12.5, 1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    path = tables.save(frame, "top_customers")
    assert [r["customer_name"] for r in read_csv(path)] == [
        '\'=HYPERLINK("http://evil","x")',
        "'+SUM(1)",
        "'@cmd",
        "'\tTab",
        "'-12 Inc",
        "Acme",
    ]
    assert read_csv(path)[0]["amount"] == "-12.50"  # a negative number stays a number

    _, warehouse = canonical_run
    requests = tmp_path / "requests.csv"
    requests.write_text("customer_id,entitlement_code\n=1+1,INCIDENT\n")
    answers = tmp_path / "answers.csv"
    entitlements("check-batch", requests, "--out", answers, "--warehouse", warehouse)
    assert read_csv(answers)[0]["customer_id"] == "'=1+1"


# --------------------------------------------------------------------------- 9. exact values


def test_values_are_exact_or_rejected(tmp_path: Path) -> None:
    export = tmp_path / "export"
    (export / "crm").mkdir(parents=True)
    (export / "billing").mkdir()
    rows = {
        "A1": ("Exact", "2024-01-15"),
        " A2 ": ("Spaces around the id", "2024-01-15"),
        "A3\0": ("NUL in the id", "2024-01-15"),
        "A4": ("Short date", "2024-1-5"),
        "A5": ("BC date", "0044-03-15 (BC)"),
        "A6": ("Year 24", "0024-03-15"),
    }
    (export / "crm" / "accounts.csv").write_text(
        "customer_id,customer_name,country,currency,created_date\n"
        + "".join(f"{cid},{name},DE,EUR,{created}\n" for cid, (name, created) in rows.items())
    )
    (export / "billing" / "invoice_lines.csv").write_text(
        "invoice_line_id,invoice_id,line_type,item_code,period_start,period_end,quantity,amount,currency\n"
        + "".join(
            f"{line},INV1,service,INCIDENT,2024-01-01,2024-01-02,1,{amount},EUR\n"
            for line, amount in (("IL1", "12.345"), ("IL2", "1_000"), ("IL3", "1000.50"))
        )
    )
    warehouse = tmp_path / "w.duckdb"

    done = entitlements("ingest", export, "--warehouse", warehouse, "--max-rejected-share", "1")

    assert done.returncode == 0, done.stdout + done.stderr
    assert query_rows(warehouse, "select customer_id from raw.crm_accounts order by 1") == [
        {"customer_id": "A1"},
        {"customer_id": "A2"},
    ]
    reasons = {
        (r["source_file"][:4], r["line"], r["column_name"]): r["reason"]
        for r in query_rows(
            warehouse, "select source_file, line, column_name, reason from audit.rejected_rows"
        )
    }
    assert reasons[("crm/", 4, "customer_id")].startswith("an id or code with a control character")
    assert reasons[("crm/", 5, "created_date")] == "cannot read '2024-1-5' as DATE (expected YYYY-MM-DD)"
    assert reasons[("crm/", 6, "created_date")].startswith("cannot read '0044-03-15 (BC)' as DATE")
    assert reasons[("crm/", 7, "created_date")].startswith("date '0024-03-15' is outside 1900-01-01")
    assert reasons[("bill", 2, "amount")].startswith("'12.345' has more decimals than amount holds (2)")
    assert reasons[("bill", 3, "amount")].startswith("cannot read '1_000' as DECIMAL")
    assert query_rows(warehouse, "select invoice_line_id, amount from raw.billing_invoice_lines") == [
        {"invoice_line_id": "IL3", "amount": Decimal("1000.50")}
    ]
    assert_rows_accounted(warehouse)


@pytest.mark.parametrize("kind", ["dangling", "loop"])
def test_links_that_lead_nowhere_refuse_the_export_by_name(tmp_path: Path, kind: str) -> None:
    export = copy_fixture("canonical", tmp_path / "export")
    if kind == "dangling":
        (export / "crm" / "assets_2.csv").symlink_to(tmp_path / "gone.csv")
        named = "crm/assets_2.csv: a link to"
    else:
        (export / "crm" / "again").symlink_to(export)
        named = "crm/again: a link to a folder already read"
    warehouse = tmp_path / "w.duckdb"

    done = entitlements("ingest", export, "--warehouse", warehouse)

    assert done.returncode == 1 and named in done.stderr, done.stderr
    assert not warehouse.exists()


# --------------------------------------------------------------------------- 10. installed as users install


@pytest.mark.xdist_group("canonical_run")  # conftest.canonical_run: one worker builds it
def test_report_on_a_locked_warehouse_exits_2(canonical_run: tuple[Path, Path], tmp_path: Path) -> None:
    _, warehouse = canonical_run
    con = duckdb.connect(str(warehouse))  # a writer holds it
    try:
        done = entitlements("report", "leakage", "--warehouse", warehouse, "--out", tmp_path)
    finally:
        con.close()
    assert done.returncode == 2 and "is locked" in done.stderr and "Traceback" not in done.stderr


def test_a_report_that_raises_in_a_run_is_one_message_not_a_traceback(tmp_path: Path) -> None:
    """The leakage notebook cannot write one of its CSVs (a folder stands in its place)."""
    export = copy_fixture("canonical", tmp_path / "export")
    warehouse, reports = tmp_path / "w.duckdb", tmp_path / "reports"
    (reports / "leakage_top_customers.csv").mkdir(parents=True)

    done = entitlements("run", export, "--warehouse", warehouse, "--reports", reports, "--as-of", AS_OF)

    assert done.returncode == 1
    assert "[reports] report leakage failed in cell" in done.stderr
    assert "IsADirectoryError" in done.stderr and "leakage_top_customers.csv" in done.stderr
    assert "The marts were built and checked" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert leaks(warehouse) == EXPECTED_LEAKS


@pytest.fixture(scope="module")
def plain_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtual environment with the project installed as a user installs it: `pip install`
    of the repository (a wheel built from it, not an editable install), no Makefile, no kernel. From
    a copy, since building writes build/ and *.egg-info into the source folder."""
    here = tmp_path_factory.mktemp("plain")
    source, venv = here / "source", here / "venv"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "data", "build", "target", "logs", "*.egg-info", "__pycache__", ".*_cache"
        ),
    )
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run(
        # --no-compile: Python compiles each module on first import anyway; compiling every module of
        # every dependency up front is half of the install's time.
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile", str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    shutil.rmtree(source)  # what runs is what was installed
    yield venv


def test_run_works_after_a_plain_pip_install(plain_venv: Path, tmp_path: Path) -> None:
    export = copy_fixture("canonical", tmp_path / "export")
    warehouse, reports = tmp_path / "w.duckdb", tmp_path / "reports"
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_PATH", "VIRTUAL_ENV")}
    env["JUPYTER_DATA_DIR"] = str(tmp_path / "no-user-kernels")
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    assert not (plain_venv / "share" / "jupyter" / "kernels" / "entitlements").exists()
    # The dbt project, notebooks and suites the command uses are the installed package's own.
    where = subprocess.run(
        [
            plain_venv / "bin" / "python",
            "-c",
            "from entitlements import warehouse as w; print(w.PROJECT_ROOT)",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    bundled = Path(where.stdout.strip())
    assert bundled.is_relative_to(plain_venv) and bundled.name == "_project", bundled
    assert {p.name for p in bundled.iterdir()} == {"dbt_project", "notebooks", "expectations"}
    installed = sorted(bundled.rglob("*"))

    done = subprocess.run(
        _run_args(export, warehouse, reports, plain_venv / "bin" / "entitlements"),
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # away from the checkout
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    for name in ("leakage", "renewals", "usage"):
        page = (reports / f"{name}.html").read_text()
        assert "plotly" in page and "NoSuchKernel" not in page
    assert leaks(warehouse) == EXPECTED_LEAKS
    # Every file of the package's own besides its Python is installed, and a command using one works.
    site_packages = bundled.parent.parent
    for tracked in subprocess.run(
        ["git", "ls-files", "entitlements"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split():
        if not tracked.endswith(".py"):
            assert (site_packages / tracked).is_file(), f"{tracked} is not in the wheel (package-data)"
    statement = tmp_path / "statement.html"
    wrote = subprocess.run(
        [
            *(plain_venv / "bin" / "entitlements", "statement", "--customer", "001000000000001AAA"),
            *("--warehouse", warehouse, "--out", statement),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert wrote.returncode == 0, wrote.stdout + wrote.stderr
    assert "Acme Tools Inc" in statement.read_text()
    # Nothing written into the installed package: dbt's saved parse went to the user's cache.
    assert sorted(bundled.rglob("*")) == installed
    assert list((tmp_path / "cache" / "entitlements").glob("dbt_parse_*/*.msgpack"))
