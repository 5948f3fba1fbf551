"""Shared fixtures: demo exports and a warehouse built by the real pipeline; the test tiers.

Building is the slow part (about a minute), so it happens once per session: the demo is shared
by the parallel workers (pytest-xdist) through a lock file; the canonical and clean runs are built
by the one worker their tests' xdist_group sends them to. Tests that change a warehouse work on a
copy.

Every test is in exactly one tier (a marker, usually the module's `pytestmark`):
  unit         no warehouse: pure Python, files, a parse of the dbt project
  integration  reads the shared demo warehouse, or lands/builds a small fixture of its own
  e2e          full runs of the CLI on their own exports, killed runs, reports in a browser
`make test-fast` runs unit and integration (`-m "not e2e"`); `make test` runs all three.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest

from entitlements.demo import generate_demo

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
BIN = Path(sys.executable).parent


def entitlements(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the installed `entitlements` command as a user would."""
    return subprocess.run(
        [str(BIN / "entitlements"), *map(str, args)], capture_output=True, text=True, check=False
    )


@dataclass(frozen=True)
class Built:
    exports: Path
    warehouse: Path
    reports: Path
    run: subprocess.CompletedProcess[str]


def build(root: Path, *, reports: bool = True, **demo_args: object) -> Built:
    """Generate a demo export and run it (without Data Docs and reports when reports is False)."""
    exports, warehouse, written = root / "exports", root / "warehouse.duckdb", root / "reports"
    generate_demo(exports, **demo_args)
    options = ("--reports", written) if reports else ("--no-reports",)
    run = entitlements("run", exports, "--warehouse", warehouse, *options)
    return Built(exports, warehouse, written, run)


TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test outside the tiers would be left out by `make test-fast` without anyone noticing.

    A module's `pytestmark` gives its tier; a test marked e2e in a faster module is e2e (the fast
    tier is `-m "not e2e"`).
    """
    untiered = [item.nodeid for item in items if not any(item.get_closest_marker(tier) for tier in TIERS)]
    if untiered:
        raise pytest.UsageError(f"tests need a tier marker of {TIERS}: {untiered[:10]}")
    # Slowest tier first, so the workers are not left with a tail of full runs at the end.
    items.sort(key=lambda item: 0 if item.get_closest_marker("e2e") else 1)


@pytest.hookimpl(trylast=True)  # after xdist's own hook, which appends "@group" to the node id
def pytest_collection_finish(session: pytest.Session) -> None:
    """--dist loadgroup groups by a suffix xdist appends to node ids; a pytest that drops it (9.2,
    pytest-xdist#1386) spreads a group over the workers, each building its session fixture."""
    if not getattr(session.config.option, "loadgroup", False):
        return
    lost = [i.nodeid for i in session.items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
    if lost:
        message = f"--dist loadgroup lost the xdist_group of {lost[:3]}: check pytest's version"
        print(message, file=sys.stderr)  # a worker's UsageError shows as an internal error only
        raise pytest.UsageError(message)


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The demo (seed 42) run once for the whole session, whichever worker asks first."""
    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker has its own basetemp inside the run's common one.
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root = shared / "demo_build"
    with (shared / "demo_build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = root / "run.json"
        if done.exists():
            run = subprocess.CompletedProcess(**json.loads(done.read_text()))
            built = Built(root / "exports", root / "warehouse.duckdb", root / "reports", run)
        else:
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            built = build(root, reports=False, seed=42)  # the reports: test_report.py, test_pipeline.py
            record = {"args": [], "returncode": built.run.returncode, "stdout": built.run.stdout}
            done.write_text(json.dumps(record | {"stderr": built.run.stderr}))
    assert built.run.returncode == 0, built.run.stdout + built.run.stderr
    return built


@pytest.fixture(scope="session")
def clean_build(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A small demo export with nothing planted (no leaks, no migration faults), run without
    reports. Its tests share the xdist_group "clean_build", so one worker builds it."""
    built = build(
        tmp_path_factory.mktemp("clean"),
        reports=False,
        seed=7,
        customers=24,
        usage_events=5000,
        plant_leaks=False,
    )
    assert built.run.returncode == 0, built.run.stdout + built.run.stderr
    return built


FIXTURES = Path(__file__).parent / "fixtures" / "exports"  # hand-written exports, one per source shape
CANONICAL_AS_OF = "2026-10-31"  # the as-of date the fixtures' answers are computed for


def copy_fixture(name: str, target: Path) -> Path:
    """A fixture export copied where a test may change it (without its .READY marker)."""
    shutil.copytree(FIXTURES / name, target, ignore=shutil.ignore_patterns(".READY"))
    return target


@pytest.fixture(scope="session")
def canonical_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The hand-written canonical export (tests/fixtures/exports/canonical) landed with a plain
    `ingest`, then `run` (no reports): the export's copy and the warehouse. Its tests share the
    xdist_group "canonical_run", so one worker builds it; a test that writes works on a copy."""
    root = tmp_path_factory.mktemp("canonical")
    export, warehouse = copy_fixture("canonical", root / "export"), root / "warehouse.duckdb"
    ingested = entitlements("ingest", export, "--warehouse", warehouse)
    assert ingested.returncode == 0, ingested.stdout + ingested.stderr
    run = entitlements("run", export, "--warehouse", warehouse, "--no-reports", "--as-of", CANONICAL_AS_OF)
    assert run.returncode == 0, run.stdout + run.stderr
    return export, warehouse


@pytest.fixture(scope="session")
def demo_warehouse(demo_build: Built) -> Path:
    return demo_build.warehouse


# Session scope: a module fixture is rebuilt whenever another module's test runs in between
# on the same xdist worker; this one renders every report once. Its tests (test_report.py,
# test_report_layout.py) share the xdist_group "test_report.reports".
@pytest.fixture(scope="session")
def reports(demo_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every report, written as a user would (`entitlements report all`); how fast is `make bench`'s job."""
    out = tmp_path_factory.mktemp("reports")
    run = entitlements("report", "all", "--warehouse", demo_warehouse, "--out", out)
    assert run.returncode == 0, run.stdout + run.stderr
    return out


@pytest.fixture
def warehouse_copy(demo_build: Built, tmp_path: Path) -> Path:
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(demo_build.warehouse, copy)
    return copy


@pytest.fixture(scope="session")
def as_of(demo_build: Built) -> date:
    """The as-of date the demo export declares (export.json), which the run built for."""
    return date.fromisoformat(json.loads((demo_build.exports / "export.json").read_text())["as_of"])


def query_rows(warehouse: Path, sql: str, params: list | None = None) -> list[dict]:
    """Rows of a query on the warehouse, read-only, as dicts by column name."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        cursor = con.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def read_csv(path: Path) -> list[dict[str, str]]:
    """A CSV's rows as dicts by header (the reports' tables, the generator's ground truth)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
