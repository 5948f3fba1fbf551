"""Run dbt against a warehouse file.

dbt runs in a child process: dbt-duckdb keeps its connection for the life of
the process, and the gates that follow open the same file read-only, which
DuckDB refuses while another connection with other settings is open in-process.
The child stays in the caller's process group and is killed when the caller dies
(even by kill -9), so a killed run never leaves a dbt writing the warehouse.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from entitlements import audit
from entitlements.transform.dbt_child import NODES_FILE
from entitlements.warehouse import BUNDLED, DBT_PROJECT_DIR, connect


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
    warehouse's parse differ, and each run parse the whole project again. The same for the Spark
    target's folder (`<warehouse stem>.spark`, entitlements.transform.spark)."""
    env = dict(os.environ)
    env["ENTITLEMENTS_WAREHOUSE"] = Path(warehouse).name
    env["ENTITLEMENTS_SPARK_DIR"] = f"{Path(warehouse).stem}.spark"
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env.setdefault("DBT_LOG_FORMAT", "text")
    # dbt's own file log is off: having it at all (any level) costs a run 0.4 s at 10M events for a
    # day of usage and 0.6 s on a tiny export (alternating pairs, 2026-12-06; debug vs info is
    # noise), dbt's Python per node. What dbt prints (info: each node's status, errors naming the
    # SQL file under target/run/) is appended to <warehouse dir>/dbt/<stem>/logs/dbt.log instead
    # (DbtSession). DBT_LOG_LEVEL_FILE=debug gives dbt's own log there: every SQL statement run.
    env.setdefault("DBT_LOG_LEVEL_FILE", "none")
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
    session: DbtSession | None = None,
    target: str | None = None,
) -> DbtResult:
    """Run dbt commands (e.g. ["build", "--exclude", ...]) one after the other in one child process
    that parses the project once; stop at the first that fails. The result is that command's (or
    the last one's): its node results come from its run_results.json.

    session: a child started earlier for the warehouse (DbtSession), parsed already; used when it
    parsed with the vars and target these commands need, else closed and a child started as usual.
    target: the profile's output (default duckdb; `spark`: entitlements.transform.spark)."""
    all_vars = dbt_vars_for(warehouse, as_of, dbt_vars)
    if session is not None and session.dbt_vars == all_vars and session.target_name == target:
        return session.run(commands)
    if session is not None:
        session.close()
    return DbtSession(warehouse, all_vars, target).run(commands)


def dbt_vars_for(warehouse: Path, as_of: date | None = None, dbt_vars: dict | None = None) -> dict:
    """The vars a dbt command on the warehouse gets: the configuration last recorded in it
    (entitlements.config), then as_of_date, then the caller's own."""
    from entitlements.config import recorded_dbt_vars

    as_of_var = {"as_of_date": as_of.isoformat()} if as_of is not None else {}
    return recorded_dbt_vars(warehouse) | as_of_var | (dbt_vars or {})


class DbtSession:
    """A dbt child process for one warehouse and one set of vars, started before its commands are
    known: it imports dbt and parses the project (seconds) while the caller does other work (the
    run's ingest and landing gate), then runs the commands `run` sends it, once. `close` ends a
    session that will not be used (the build was skipped, the run stopped); a caller that dies
    takes the child with it (_die_with_parent)."""

    def __init__(self, warehouse: Path, dbt_vars: dict, target: str | None = None) -> None:
        """target: the profile's output to build with (profiles.yml), default its own (duckdb);
        `spark` builds on a local Spark (entitlements.transform.spark)."""
        self.warehouse = Path(warehouse).resolve()
        self.dbt_vars = dict(dbt_vars)
        self.target_name = target
        self.target = target = target_dir(self.warehouse)
        self.warehouse.parent.mkdir(parents=True, exist_ok=True)  # the child runs in it
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
        if self.dbt_vars:
            common += ["--vars", json.dumps(self.dbt_vars)]
        if self.target_name is not None:
            common += ["--target", self.target_name]
        # A command that stops before running a node writes no run_results.json: never read a stale one.
        for stale in (*target.glob("run_results*.json"), target / NODES_FILE):
            stale.unlink(missing_ok=True)
        env = dbt_env(self.warehouse)
        # dbt's own file log off (dbt_env): what the child prints goes to the warehouse's dbt log.
        self.log = target.parent / "logs" / "dbt.log" if env["DBT_LOG_LEVEL_FILE"] == "none" else None
        self.cached = _parse_cache(self.warehouse, self.dbt_vars, self.target_name)
        _restore_parse(self.cached, target)
        # Output to a file: a pipe nobody reads while the child parses could fill and stall it.
        self.output = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed by run or close)
        spec = json.dumps({"common": common, "target": str(target)})
        self.proc: subprocess.Popen[str] | None = subprocess.Popen(
            # The child leaves with os._exit (dbt_child): multiprocessing's resource tracker then
            # removes the semaphores dbt made, as it is there to, and need not warn that it did.
            [
                sys.executable,
                "-W",
                "ignore:resource_tracker:UserWarning",
                "-m",
                "entitlements.transform.dbt_child",
                spec,
            ],
            env=env,
            cwd=self.warehouse.parent,
            stdin=subprocess.PIPE,
            stdout=self.output,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=_die_with_parent(os.getpid()),
        )

    def run(self, commands: Sequence[Sequence[str]]) -> DbtResult:
        """Send the commands, wait for them, and read what they did from run_results.json."""
        _ensure_audit_sources(self.warehouse)
        proc = self._take()
        with contextlib.suppress(BrokenPipeError):  # the child ended early (no parse): its exit code says
            proc.stdin.write(json.dumps([list(command) for command in commands]) + "\n")
            proc.stdin.close()
        returncode = proc.wait()
        self.output.seek(0)
        output = self.output.read()
        self.output.close()
        _keep_parse(self.target, self.cached)
        if self.log is not None:
            ran_commands = " && ".join("dbt " + " ".join(command) for command in commands)
            _append_log(self.log, f"{ran_commands} (exit {returncode})", output)
        ran = sorted(self.target.glob("run_results.*.json"), key=lambda path: int(path.stem.split(".")[1]))
        results, failures = _read_results(ran[-1] if ran else self.target / "run_results.json", self.target)
        name = " && ".join(" ".join(command[:2]) for command in commands)
        return DbtResult(name, returncode, output, results, failures, tuple(ran))

    def close(self) -> None:
        """End an unused session at once: the child has written nothing but its parse to target/
        (the project's saved parse is only kept after a run), so it is killed, not waited for."""
        if self.proc is None:
            return
        proc = self._take()
        proc.kill()
        proc.wait()
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        self.output.close()

    def _take(self) -> subprocess.Popen[str]:
        if self.proc is None or self.proc.stdin is None:
            raise RuntimeError("this dbt session has already run or been closed")
        proc, self.proc = self.proc, None
        return proc

    def __enter__(self) -> DbtSession:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


# Audit tables the main build reads (a source) or writes (the incremental models' keys) that a
# warehouse may not have yet (one only ingested into has never recorded a build); the ingest and
# `migrate` create the others.
AUDIT_SOURCES = ("built_loads", "incremental_keys")


def _ensure_audit_sources(warehouse: Path) -> None:
    con = connect(warehouse)
    try:
        audit.ensure(con, *AUDIT_SOURCES)
    finally:
        con.close()


LOG_MAX_BYTES = 10 * 2**20  # then the log moves to dbt.log.1 (replacing it), as dbt's own rotates


def _append_log(log: Path, title: str, output: str) -> None:
    """Append a session's output to the warehouse's dbt log, under a line saying what ran and when."""
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        if log.exists() and log.stat().st_size > LOG_MAX_BYTES:
            log.replace(log.with_name(log.name + ".1"))
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        with log.open("a", encoding="utf-8") as handle:
            handle.write(f"===== {stamp} UTC {title} =====\n{output.rstrip()}\n")
    except OSError:  # a log that cannot be written fails no build: its output is in the result
        return


PARSE_FILE = "partial_parse.msgpack"


def _parse_cache(warehouse: Path, dbt_vars: dict, target: str | None = None) -> Path:
    """Where the project keeps its parse for these vars and this database name.

    dbt parses the whole project again (4-7 s of a 20-30 s run) when the target folder holds no
    partial_parse.msgpack, and every warehouse has a target folder of its own: the parse is kept
    per project instead. dbt checks a saved parse against the project's files, its version, the
    vars and the profile (see dbt_env) and parses again when one differs; the key keeps one parse
    per vars and database name, so runs with other vars (a migration's phases) do not evict it.
    Kept in the project's target folder in a checkout; installed, in the user's cache, not in the
    package (each installed project apart).
    """
    key = json.dumps([warehouse.stem, dbt_vars] + ([target] if target else []), sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return _parse_cache_dir() / f"{digest}.msgpack"


def _parse_cache_dir() -> Path:
    if not BUNDLED:
        return DBT_PROJECT_DIR / "target" / "parse_cache"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    project = hashlib.sha256(str(DBT_PROJECT_DIR).encode()).hexdigest()[:12]
    return cache / "entitlements" / f"dbt_parse_{project}"


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
        nodes = json.loads((target / NODES_FILE).read_text())["nodes"]
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
