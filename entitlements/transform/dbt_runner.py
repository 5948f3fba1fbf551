"""Run dbt against a warehouse file.

dbt runs in a child process: dbt-duckdb keeps its connection for the life of
the process, and the gates that follow open the same file read-only, which
DuckDB refuses while another connection with other settings is open in-process.
The child stays in the caller's process group and is killed when the caller dies
(even by kill -9), so a killed run never leaves a dbt writing the warehouse.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from entitlements.warehouse import DBT_PROJECT_DIR


@dataclass(frozen=True)
class NodeFailure:
    name: str  # e.g. "int_migration__mapped_segments" or a test's name
    tags: tuple[str, ...]
    status: str  # error, fail, skipped
    message: str

    def line(self) -> str:
        return f"{self.name}: {self.status}: {self.message}"


@dataclass(frozen=True)
class DbtResult:
    """What one dbt command did: its nodes' results come from run_results.json, never from its log.

    failures is empty when dbt stopped before running any node (a project that does not parse or
    compile); then error_lines() quotes what dbt said.
    """

    command: str
    returncode: int
    output: str
    results: tuple[dict, ...] = ()
    failures: tuple[NodeFailure, ...] = ()
    run_results: tuple[Path, ...] = ()  # each command's run_results.json, in command order (as ran)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def error_lines(self, limit: int = 20) -> list[str]:
        if self.failures:
            return [failure.line() for failure in self.failures[:limit]]
        lines = [line for line in self.output.splitlines() if line.strip()]
        start = next((i for i, line in enumerate(lines) if "Encountered an error" in line), None)
        return lines[start : start + limit] if start is not None else lines[-limit:]


def dbt_env(warehouse: Path) -> dict[str, str]:
    """The child's environment. It runs in the warehouse's folder and names the file relative to
    it: dbt hashes the profile's values into its saved parse, so an absolute path would make every
    warehouse's parse differ, and each run parse the whole project again."""
    env = dict(os.environ)
    env["ENTITLEMENTS_WAREHOUSE"] = Path(warehouse).name
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env.setdefault("DBT_LOG_FORMAT", "text")
    return env


def target_dir(warehouse: Path) -> Path:
    """dbt's target folder for a warehouse: beside it, so runs on two warehouses never mix."""
    warehouse = Path(warehouse).resolve()
    return warehouse.parent / "dbt" / warehouse.stem / "target"


def run_dbt(
    command: str, warehouse: Path, as_of: date | None = None, *extra: str, dbt_vars: dict | None = None
) -> DbtResult:
    """Run `dbt <command>` for the warehouse; target and logs go beside the warehouse.

    as_of sets the var as_of_date; dbt_vars adds other vars (the migration's phase, say); under
    both, the vars of the configuration last recorded in the warehouse (entitlements.config).
    """
    return run_dbt_commands([[*command.split(), *extra]], warehouse, as_of, dbt_vars=dbt_vars)


def run_dbt_commands(
    commands: Sequence[Sequence[str]],
    warehouse: Path,
    as_of: date | None = None,
    *,
    dbt_vars: dict | None = None,
) -> DbtResult:
    """Run dbt commands (e.g. ["build", "--exclude", ...]) one after the other in one child process
    that parses the project once; stop at the first that fails. The result is that command's (or
    the last one's): its node results come from its run_results.json."""
    from entitlements.config import recorded_dbt_vars

    warehouse = Path(warehouse).resolve()
    target = target_dir(warehouse)
    common = [
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(target),
        "--log-path",
        str(target.parent / "logs"),
    ]
    all_vars = (
        recorded_dbt_vars(warehouse)
        | ({"as_of_date": as_of.isoformat()} if as_of is not None else {})
        | (dbt_vars or {})
    )
    if all_vars:
        common += ["--vars", json.dumps(all_vars)]
    # A command that stops before running a node writes no run_results.json: never read a stale one.
    for stale in target.glob("run_results*.json"):
        stale.unlink()
    cached = _parse_cache(warehouse, all_vars)
    _restore_parse(cached, target)
    spec = {"common": common, "target": str(target), "commands": [list(command) for command in commands]}
    proc = subprocess.run(
        [sys.executable, "-m", "entitlements.transform.dbt_child", json.dumps(spec)],
        env=dbt_env(warehouse),
        cwd=warehouse.parent,
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=_die_with_parent(os.getpid()),
    )
    _keep_parse(target, cached)
    ran = sorted(target.glob("run_results.*.json"), key=lambda path: int(path.stem.split(".")[1]))
    results, failures = _read_results(ran[-1] if ran else target / "run_results.json", target)
    name = " && ".join(" ".join(command[:2]) for command in commands)
    return DbtResult(name, proc.returncode, proc.stdout + proc.stderr, results, failures, tuple(ran))


PARSE_FILE = "partial_parse.msgpack"


def _parse_cache(warehouse: Path, dbt_vars: dict) -> Path:
    """Where the project keeps its parse for these vars and this database name.

    dbt parses the whole project again (4-7 s of a 20-30 s run) when the target folder holds no
    partial_parse.msgpack, and every warehouse has a target folder of its own: the parse is kept
    per project instead. dbt checks a saved parse against the project's files, its version, the
    vars and the profile (see dbt_env) and parses again when one differs; the key keeps one parse
    per vars and database name, so runs with other vars (a migration's phases) do not evict it.
    """
    key = json.dumps([warehouse.stem, dbt_vars], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return DBT_PROJECT_DIR / "target" / "parse_cache" / f"{digest}.msgpack"


def _restore_parse(cached: Path, target: Path) -> None:
    if cached.exists():  # the warehouse's own may be for other vars (the migration's last phase)
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, target / PARSE_FILE)


def _keep_parse(target: Path, cached: Path) -> None:
    """Keep the parse dbt left for the next warehouse; a read-only project just goes without."""
    parsed = target / PARSE_FILE
    if not parsed.exists():
        return
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f"{cached.name}.{os.getpid()}")
        shutil.copyfile(parsed, partial)
        partial.replace(cached)  # atomic: a parallel run reads the old file or the new, never half
    except OSError:
        return


def _die_with_parent(parent: int):
    """A preexec function: the child gets SIGKILL when its parent dies (Linux prctl PR_SET_PDEATHSIG)."""

    def arm() -> None:
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # not Linux: the process group still ends with the run
            return
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


def _read_results(run_results: Path, target: Path) -> tuple[tuple[dict, ...], tuple[NodeFailure, ...]]:
    """A command's node results (its run_results.json) and those that did not run cleanly."""
    try:
        results = json.loads(run_results.read_text())["results"]
        nodes = json.loads((target / "manifest.json").read_text())["nodes"]
    except (OSError, ValueError, KeyError):
        return (), ()
    failures = []
    for result in results:
        if result.get("status") in ("success", "pass", "warn"):
            continue
        node = nodes.get(result["unique_id"], {})
        tags = list(node.get("tags", ()))
        if node.get("resource_type") in ("test", "unit_test"):
            # A data test carries no tags of its own: it belongs where the model it tests does.
            parents = [nodes.get(parent, {}) for parent in node.get("depends_on", {}).get("nodes", [])]
            tags += [tag for parent in parents for tag in parent.get("tags", ())]
        failures.append(
            NodeFailure(
                name=node.get("name", result["unique_id"]),
                tags=tuple(dict.fromkeys(tags)),
                status=str(result.get("status")),
                message=str(result.get("message") or ""),
            )
        )
    return tuple(results), tuple(failures)
