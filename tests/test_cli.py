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
