"""The command line: every subcommand has --help; bad usage exits 2."""

from __future__ import annotations

import pytest

from tests.conftest import entitlements

SUBCOMMANDS = ("demo", "run", "ingest", "validate", "build", "report", "summary")


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command: str) -> None:
    result = entitlements(command, "--help")
    assert result.returncode == 0
    assert "Usage: entitlements " + command in result.stdout


def test_warehouse_commands_take_a_warehouse_option() -> None:
    for command in ("run", "ingest", "validate", "build", "report", "summary"):
        assert "--warehouse" in entitlements(command, "--help").stdout


def test_run_on_a_missing_directory_is_a_usage_error(tmp_path) -> None:
    result = entitlements("run", tmp_path / "nope")
    assert result.returncode == 2
    assert "does not exist" in result.stderr
