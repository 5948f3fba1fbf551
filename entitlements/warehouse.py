"""Where things live, and the one way to open the warehouse."""

from __future__ import annotations

import contextlib
import gc
import os
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

try:
    # DuckDB's engine module itself. The duckdb package re-exports it (the same classes, functions and
    # exceptions) and adds a Python layer (relational helpers, typing, its version looked up through
    # importlib.metadata) that costs a one-check `entitlements check` ~80 ms of its start to import,
    # for nothing a connection here uses (issue 17). Modules that need that layer import duckdb.
    import _duckdb as duckdb
except ImportError:  # a DuckDB that names its engine module otherwise
    import duckdb

# The dbt project, the report notebooks and the GX suites: inside the package when it was installed
# from a wheel (setup.py bundles them), beside it in a checkout or an editable install.
_PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED = (_PACKAGE_DIR / "_project").is_dir()
PROJECT_ROOT = _PACKAGE_DIR / "_project" if BUNDLED else _PACKAGE_DIR.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
GX_DIR = PROJECT_ROOT / "expectations" / "gx"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
DEFAULT_WAREHOUSE = Path("data/warehouse.duckdb")
DEFAULT_REPORTS = Path("data/reports")

SCHEMAS = ("raw", "staging", "intermediate", "marts", "audit")

# DuckDB's own default is 80 % of the machine's memory for every process that opens the file. The
# project sets one limit for its processes and dbt's (profiles.yml reads the same variables), past
# which DuckDB spills to its temp directory: memory stays flat however large the data grows.
# Both are machine facts, not business ones, so environment variables set them, not entitlements.yml.
MEMORY_LIMIT_ENV = "ENTITLEMENTS_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "1536MB"  # profiles.yml's default too (tests/test_dbt_project.py keeps them equal)
TEMP_DIRECTORY_ENV = "ENTITLEMENTS_TEMP_DIRECTORY"  # default: <warehouse>.tmp, DuckDB's own


def memory_limit() -> str:
    """The memory limit every connection to a warehouse gets (ENTITLEMENTS_MEMORY_LIMIT)."""
    return os.environ.get(MEMORY_LIMIT_ENV) or DEFAULT_MEMORY_LIMIT


# Work a run does ahead of need (warm-up imports, the report kernel starting) runs at this niceness,
# so on a small machine it takes the cores dbt's child leaves idle, not the ones it builds on.
BACKGROUND_NICENESS = 10


def background_priority() -> None:
    """Lower the calling thread's CPU priority to BACKGROUND_NICENESS, never raise it (Linux:
    niceness is per thread, and a process it starts inherits it); elsewhere, or if refused, nothing."""
    import threading

    with contextlib.suppress(AttributeError, OSError):
        thread = threading.get_native_id()
        now = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, max(now, BACKGROUND_NICENESS))


def freeze_heap() -> None:
    """Take every object alive now out of the cyclic garbage collector's walks (gc.freeze): the
    modules imported, dbt's parsed project, a kernel's pandas and plotly. Each collection of the
    oldest generation walks every tracked object, and with dbt, Great Expectations or plotly loaded
    that is most of a second over a run; frozen, it walks what was made since. Objects freed by their
    reference counts are freed as before; only a cycle of garbage alive now stays. Called where a
    process has loaded what it keeps: the report kernel after its warm-up, a run at each stage, and
    at the end of collecting_nothing."""
    gc.freeze()


@contextlib.contextmanager
def collecting_nothing() -> Iterator[None]:
    """No cyclic collection inside, then freeze_heap: for a process loading what it keeps for its
    life (the dbt child importing dbt and parsing; a run importing and starting what its later stages
    need while dbt's child builds, where its collections would take CPU from the build).
    A day of usage at 10M events, 2026-12-06, alternating pairs: the dbt child's collections 0.21 s
    in its parse and 0.31-0.36 s in the build, down to 0.09-0.13 s; the run 8.57 -> 8.04 s with
    freezing alone (median of 4), then -0.2 to -1.0 s more (4 of 4 pairs) with none during the build;
    a tiny full run 9.5 -> 8.2 s."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        freeze_heap()
        if was_enabled:
            gc.enable()


def _apply_settings(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Set the memory limit and temp directory on a new connection (see DEFAULT_MEMORY_LIMIT).

    Set, not given to duckdb.connect: a process's connections to one file share one database, which
    refuses a second connection opened with other settings (a reader's plain duckdb.connect, say).
    The temp directory is set only when asked for and not already in use: DuckDB refuses to change
    one it has spilled to, and its default is already <warehouse>.tmp.
    """
    con.execute(f"SET memory_limit = '{memory_limit()}'")
    wanted = os.environ.get(TEMP_DIRECTORY_ENV)
    current = con.execute("select current_setting('temp_directory')").fetchall()[0][0]
    if wanted and wanted != current:
        try:
            con.execute("SET temp_directory = ?", [wanted])
        except duckdb.NotImplementedException:  # this process has spilled to the other one: keep it
            return


class WarehouseLockedError(RuntimeError):
    """Another process holds the warehouse file: a writer excludes everyone, readers exclude a writer."""


def connect(path: Path | str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file. Readers use read_only=True so they never alter a build.

    DuckDB locks the file per process: any number of read-only processes, or one writer.
    A conflict raises WarehouseLockedError naming the holder and what to do.
    """
    path = Path(path)
    if read_only and not path.exists():
        raise FileNotFoundError(f"warehouse {path} does not exist: run `entitlements run` or `ingest` first")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise
        holder = re.search(r"held in (.*?\(PID \d+\))", str(exc))
        by = f" by {holder.group(1)}" if holder else ""
        wanted = "read" if read_only else "write"
        raise WarehouseLockedError(
            f"warehouse {path} is locked{by}, so this process cannot {wanted} it. "
            + (
                "A build or run is writing it: try again when it has finished."
                if read_only
                else "Close what reads it (a notebook, `entitlements check`, a report) or wait for the"
                " other build to finish, then run again; nothing was changed."
            )
        ) from exc
    _apply_settings(con, path)
    return con


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


class IncompleteBuildError(RuntimeError):
    """The warehouse's last build did not finish: its marts may be half-built, or from two dates."""


BUILDS_TABLE = "audit.pipeline_runs"  # one row per step of a run; a build's row is written as it starts


def last_build(con: duckdb.DuckDBPyConnection) -> tuple[str, str, object, object] | None:
    """(run_id, status, as_of_date, started_at) of the warehouse's latest build, if any."""
    if not table_exists(con, "audit", "pipeline_runs"):
        return None
    rows = con.execute(
        f"select run_id, status, as_of_date, coalesce(started_at, finished_at) from {BUILDS_TABLE}"
        " where step = 'build' order by coalesce(started_at, finished_at) desc limit 1"
    ).fetchall()
    return rows[0] if rows else None


def built_as_of(con: duckdb.DuckDBPyConnection) -> date | None:
    """The date the marts answer for: the as-of date of the last build, if it finished ok.

    The one definition of a warehouse's as-of date (check, statement, reports and the CLI use it).
    """
    build = last_build(con)
    return build[2] if build is not None and build[1] == "ok" else None


def require_complete_build(con: duckdb.DuckDBPyConnection, path: Path | str) -> None:
    """Refuse to read marts that the last build left unfinished (killed, or failed half way)."""
    build = last_build(con)
    if build is None or build[1] == "ok":
        return
    run_id, status, as_of, started = build
    what = "is still running or was killed" if status == "running" else "failed"
    raise IncompleteBuildError(
        f"warehouse {path}: the last build (run {run_id}, as of {as_of}, started {started} UTC) {what},"
        " so its marts may be half-built or from two dates and are not shown. Build again"
        " (`entitlements build`, or `entitlements run EXPORT_DIR`) and read them when it has finished."
    )


def connect_marts(path: Path | str) -> duckdb.DuckDBPyConnection:
    """Open the warehouse read-only for reading marts: refused while the last build is unfinished."""
    con = connect(path, read_only=True)
    try:
        require_complete_build(con, path)
    except BaseException:
        con.close()
        raise
    return con
