"""Run dbt against a warehouse file.

dbt runs in a child process: dbt-duckdb keeps its connection for the life of
the process, and the gates that follow open the same file read-only, which
DuckDB refuses while another connection with other settings is open in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from entitlements.warehouse import DBT_PROJECT_DIR


@dataclass(frozen=True)
class DbtResult:
    command: str
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def dbt_env(warehouse: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["ENTITLEMENTS_WAREHOUSE"] = str(Path(warehouse).resolve())
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env.setdefault("DBT_LOG_FORMAT", "text")
    return env


def target_dir(warehouse: Path) -> Path:
    """dbt's target folder for a warehouse: beside it, so runs on two warehouses never mix."""
    warehouse = Path(warehouse).resolve()
    return warehouse.parent / "dbt" / warehouse.stem / "target"


def run_dbt(command: str, warehouse: Path, as_of: date | None = None, *extra: str) -> DbtResult:
    """Run `dbt <command>` for the warehouse; target and logs go beside the warehouse."""
    warehouse = Path(warehouse).resolve()
    work = target_dir(warehouse).parent
    args = [
        str(Path(sys.executable).with_name("dbt")),
        command,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(work / "logs"),
    ]
    if as_of is not None:
        args += ["--vars", json.dumps({"as_of_date": as_of.isoformat()})]
    args += list(extra)
    proc = subprocess.run(args, env=dbt_env(warehouse), capture_output=True, text=True, check=False)
    return DbtResult(command, proc.returncode, proc.stdout + proc.stderr)
