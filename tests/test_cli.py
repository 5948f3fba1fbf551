"""The command line: every subcommand has --help; bad usage exits 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import entitlements

pytestmark = pytest.mark.integration

SUBCOMMANDS = (
    "demo",
    "run",
    "ingest",
    "validate",
    "build",
    "report",
    "summary",
    "check",
    "check-batch",
    "as-of",
    "statement",
    "check-catalog",
    "migrate",
    "migrate validate",
    "docs",
)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command: str) -> None:
    result = entitlements(*command.split(), "--help")
    assert result.returncode == 0
    assert "Usage: entitlements " + command in result.stdout


def test_warehouse_commands_take_a_warehouse_option() -> None:
    for command in ("run", "ingest", "validate", "build", "report", "summary"):
        assert "--warehouse" in entitlements(command, "--help").stdout


def test_run_on_a_missing_directory_is_a_usage_error(tmp_path) -> None:
    result = entitlements("run", tmp_path / "nope")
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_a_warehouse_held_by_a_reader_is_refused_clearly_and_left_unchanged(warehouse_copy: Path) -> None:
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1], read_only=True);"
            " print('reading', flush=True); time.sleep(60)",
            str(warehouse_copy),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    before = warehouse_copy.read_bytes()
    try:
        assert reader.stdout.readline().strip() == "reading"
        for args in (("build",), ("validate",)):
            result = entitlements(*args, "--warehouse", warehouse_copy)
            assert result.returncode == 2, (args, result.stdout, result.stderr)
            assert f"warehouse {warehouse_copy} is locked by" in result.stderr
            assert "cannot write it" in result.stderr and "Traceback" not in result.stderr
    finally:
        reader.kill()
        reader.wait()
    assert warehouse_copy.read_bytes() == before


# What a check must not pay for at start: pandas (0.3 s), the pipeline and the ingest behind it (1 s),
# the duckdb package's Python layer around its engine module _duckdb (~80 ms; entitlements.warehouse).
NOT_FOR_A_CHECK = (
    "pandas",
    "entitlements.runs",
    "entitlements.ingest",
    "entitlements.reports",
    "papermill",
    "duckdb",
)


def test_the_command_line_imports_the_pipeline_only_for_the_commands_that_run_it() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, entitlements.cli; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert not [m for m in loaded if m.startswith(NOT_FOR_A_CHECK)]
    # the defaults read from those modules when a command shows them
    help_text = " ".join(entitlements("migrate", "validate", "--help").stdout.split())
    from entitlements.runs.migration import DEFAULT_MAX_FAULT_SHARE, DEFAULT_REVIEW_MIN_CONTRACTS

    assert f"[default: {DEFAULT_MAX_FAULT_SHARE}; 0<=x<=1]" in help_text
    assert f"[default: {DEFAULT_REVIEW_MIN_CONTRACTS}; x>=1]" in help_text


def test_a_check_runs_without_pandas_or_the_pipeline(demo_warehouse: Path) -> None:
    script = (
        "import sys\n"
        "from entitlements.cli import main\n"
        "sys.argv = ['entitlements', 'check', '--customer', 'C00001', '--entitlement', 'INCIDENT',"
        f" '--warehouse', {str(demo_warehouse)!r}]\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    print('exit', exit.code)\n"
        "print(' '.join(sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    exit_line, modules = result.stdout.rsplit("\n", 3)[-3:-1]
    assert "C00001 / INCIDENT on " in result.stdout, result.stdout + result.stderr
    assert exit_line in ("exit 0", "exit 1")
    assert not [m for m in modules.split() if m.startswith(NOT_FOR_A_CHECK)]
