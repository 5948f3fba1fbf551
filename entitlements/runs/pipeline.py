"""The whole run: ingest -> landing gates -> dbt build -> mart gates -> report.

Each stage is a gate: when one fails the run stops, says why, and leaves the
warehouse as it was before the run (loads landed by this run are reverted).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from entitlements import audit
from entitlements.config import Config, ConfigError, find_config, load_config, recorded_dbt_vars
from entitlements.ingest.land import FileResult, ingest_exports, revert_load
from entitlements.quality.gates import (
    HEAVY_IMPORTS,
    GateReport,
    build_data_docs,
    data_docs_index,
    record_dbt_tests,
    validate_landing,
    validate_marts,
)
from entitlements.runs.build_plan import (
    INCREMENTAL_SELECTION,
    BuildPlan,
    fingerprint,
    plan_build,
    record_build,
    record_marts_checked,
)
from entitlements.runs.lock import run_lock
from entitlements.runs.steps import DbtFailure, StepError, Steps, require_ok
from entitlements.serve.queries import store_compiled_queries
from entitlements.transform.dbt_child import NODES_FILE
from entitlements.transform.dbt_runner import DbtSession, run_dbt_commands, target_dir
from entitlements.transform.spark import build_on_spark
from entitlements.warehouse import (
    background_priority,
    built_as_of,
    collecting_nothing,
    connect,
    freeze_heap,
    table_exists,
)

if TYPE_CHECKING:
    from entitlements.reports.render import ReportSession

# The run's build: everything but the legacy migration (built step by step by `migrate`) and the
# dbt unit tests, which test the models' logic on fixed rows, not the data: they run once per
# change of the project (tests/test_dbt_unit_tests.py in `make test`), not once per run.
# The stages of a run, in order, as run_pipeline's on_stage names them. The data docs stage starts GX
# writing them on a thread; they are written while the reports render, and the reports stage waits.
STAGES = ("ingest", "landing checks", "dbt build", "mart checks", "data docs", "reports")
BUILD_SELECTION = ("--exclude", "tag:migration", "--exclude-resource-type", "unit_test")
ANALYSES = ("--select", "path:analyses")  # compiled SQL the check and as-of commands execute


class PipelineError(StepError):
    """A gate of `entitlements run` failed; the message says which stage, what, and what to do."""


@dataclass
class RunResult:
    run_id: str
    as_of: date
    files: list[FileResult] = field(default_factory=list)
    landing: GateReport | None = None
    build: BuildPlan | None = None
    marts: GateReport | None = None
    reports: list[Path] = field(default_factory=list)


def export_as_of(export_dir: Path) -> date | None:
    """The as-of date a demo export declares in export.json, if any."""
    meta = Path(export_dir) / "export.json"
    if meta.exists():
        return date.fromisoformat(json.loads(meta.read_text())["as_of"])
    return None


def recorded_as_of(warehouse: Path) -> date | None:
    """The as-of date of the warehouse's last build (warehouse.built_as_of), if it has one."""
    if not Path(warehouse).exists():
        return None
    con = connect(warehouse, read_only=True)
    try:
        return built_as_of(con)
    finally:
        con.close()


def _landed_loads(warehouse: Path) -> list[str]:
    """Load ids currently landed but not yet validated, in the order they landed."""
    if not Path(warehouse).exists():
        return []
    con = connect(warehouse, read_only=True)
    try:
        if not table_exists(con, "audit", "ingest_manifest"):
            return []
        rows = con.execute(
            "select load_id from audit.ingest_manifest where status = 'landed' and superseded_by is null"
            " order by loaded_at, load_id"
        ).fetchall()
        return [load_id for (load_id,) in rows]
    finally:
        con.close()


def _record_step(
    warehouse: Path, run_id: str, step: str, as_of: date | None, status: str, detail: str
) -> None:
    if not Path(warehouse).exists():  # an export refused before anything landed leaves no warehouse
        return
    con = connect(warehouse)
    try:
        audit.ensure(con, "pipeline_runs")
        con.execute(
            "insert into audit.pipeline_runs (run_id, step, as_of_date, status, detail, finished_at)"
            " values (?, ?, ?, ?, ?, current_timestamp::timestamp)",
            [run_id, step, as_of, status, detail[:4000]],
        )
    finally:
        con.close()


def _steps(warehouse: Path, run_id: str, as_of: date | None = None) -> Steps:
    return Steps(
        PipelineError,
        lambda step, status, detail: _record_step(warehouse, run_id, step, as_of, status, detail),
    )


def _start_build(warehouse: Path, run_id: str, as_of: date) -> None:
    con = connect(warehouse)
    try:
        audit.ensure(con, "pipeline_runs")
        con.execute(
            "insert into audit.pipeline_runs (run_id, step, as_of_date, status, detail, started_at)"
            " values (?, 'build', ?, 'running', '', current_timestamp::timestamp)",
            [run_id, as_of],
        )
    finally:
        con.close()


def _finish_build(
    warehouse: Path, run_id: str, status: str, detail: str, build_fingerprint: str | None = None
) -> None:
    """Close the build's row; a successful one also records what it was built from (build_plan)."""
    con = connect(warehouse)
    try:
        con.execute("begin")
        con.execute(
            "update audit.pipeline_runs set status = ?, detail = ?,"
            " finished_at = current_timestamp::timestamp"
            " where run_id = ? and step = 'build' and status = 'running'",
            [status, detail[:4000], run_id],
        )
        if build_fingerprint is not None:
            record_build(con, run_id, build_fingerprint)
        con.execute("commit")
    finally:
        con.close()


def run_config(export_dir: Path, config_file: Path | None) -> Config:
    """The configuration an ingest of the export applies (--config, else the export's entitlements.yml)."""
    try:
        return load_config(find_config(export_dir, config_file))
    except ConfigError as exc:
        raise PipelineError("configuration", str(exc)) from exc


def ingest_step(
    warehouse: Path,
    export_dir: Path,
    run_id: str,
    *,
    progress: bool | None = None,
    ingest_options: dict[str, Any] | None = None,
    echo: Callable[[str], None] | None = None,
) -> list[FileResult]:
    """Land the export; if a file is refused, revert the files this run landed before it.

    ingest_options: keyword arguments of ingest_exports (file_format, mapping, max_rejected_share,
    quarantine_unmapped, encoding), and config: the configuration file (default entitlements.yml in
    the export, if any), checked before anything lands (the ingest records it in the warehouse, so
    every dbt command on it applies the same rules). echo: told each file's name as its landing starts.
    """
    options = dict(ingest_options or {})
    config = run_config(export_dir, options.pop("config", None))
    with run_lock(warehouse, "ingest"):
        before = set(_landed_loads(warehouse))

        def undo(exc: Exception) -> str:
            partial = [load_id for load_id in _landed_loads(warehouse) if load_id not in before]
            if partial:
                refused = getattr(exc, "source_file", None) or "a file"
                revert_load(warehouse, partial, f"run {run_id}: {refused} was refused")
            return "Nothing of this export was kept."

        return _steps(warehouse, run_id).guard(
            "ingest",
            lambda: ingest_exports(
                warehouse, export_dir, progress=progress, on_file=echo, config=config, **options
            ),
            undo=undo,
            record_ok=lambda files: (
                f"{sum(f.status == 'landed' for f in files)} landed, "
                f"{sum(f.status == 'skipped' for f in files)} skipped"
            ),
        )


def landing_step(warehouse: Path, run_id: str) -> GateReport:
    """Validate every current load not yet validated, whoever landed it (this run, a plain `ingest`,
    a run that crashed); on a critical failure revert all of them, so raw is as it was validated."""
    with run_lock(warehouse, "validate"):
        pending = _landed_loads(warehouse)
        if not pending:
            return GateReport(run_id=run_id, step="landing", results=[])

        def undo(_: Exception) -> str:
            revert_load(warehouse, pending, f"landing checks failed in run {run_id}")
            return (
                f"The {len(pending)} file(s) awaiting validation were not kept: fix the export and run again."
            )

        return _steps(warehouse, run_id).guard(
            "landing checks", lambda: validate_landing(warehouse, pending, run_id=run_id), undo=undo
        )


def _plan(warehouse: Path, as_of: date, full_refresh: bool, engine: str) -> tuple[BuildPlan, str]:
    build_fingerprint = fingerprint(as_of, recorded_dbt_vars(warehouse), engine)
    con = connect(warehouse, read_only=True)
    try:
        return plan_build(con, build_fingerprint, full_refresh=full_refresh), build_fingerprint
    finally:
        con.close()


def build_step(
    warehouse: Path,
    run_id: str,
    as_of: date,
    *,
    full_refresh: bool = False,
    session: DbtSession | None = None,
    on_build: Callable[[BuildPlan], None] = lambda _: None,
    engine: str = "duckdb",
) -> BuildPlan:
    """Landing gate for any load not yet validated, dbt build, then compile the analyses and store
    them in the warehouse (entitlements.serve.queries). No unvalidated row reaches a mart.

    What is built follows entitlements.runs.build_plan: nothing when nothing changed since the last
    build, the models downstream of usage when only usage loads changed (incremental), else
    everything (the incremental models from scratch: --full-refresh). session: a dbt child the
    caller started ahead (run_pipeline), used if it parsed with the vars the build needs. on_build:
    told the plan as a build starts (run_pipeline starts what the later stages need meanwhile).

    The build's row in audit.pipeline_runs is written as it starts (status running) and closed
    when it ends, so readers refuse marts a killed or failed build left half-built.
    The legacy migration's models (tag migration) are built by `entitlements migrate`, step by step.

    engine `spark`: the build runs on a local Spark from the raw layer exported as Parquet, always
    in full (entitlements.transform.spark, docs/engines.md); the warehouse's marts then read the
    Parquet tables Spark wrote, and the analyses are compiled for DuckDB as before.
    """
    with run_lock(warehouse, "build"):
        landing_step(warehouse, run_id)
        plan, build_fingerprint = _plan(warehouse, as_of, full_refresh or engine == "spark", engine)
        if plan.mode == "skip":
            if session is not None:
                session.close()
            _record_step(warehouse, run_id, "build skipped", as_of, "ok", plan.reason)
            return plan
        _start_build(warehouse, run_id, as_of)
        on_build(plan)
        # One dbt process, one parse: the build, then the analyses compiled for this warehouse. An
        # incremental build has the project, vars and as-of date of the last build (else it would be
        # full), so the analyses that build stored are still what dbt would compile: kept.
        incremental = plan.mode == "incremental"
        if engine == "spark":  # always a full build (_plan above)
            result = build_on_spark(warehouse, as_of, ["build", *BUILD_SELECTION], session=session)
            build_results = result.run_results[1:2]  # after the sources' registration
        else:
            if incremental:
                commands = [["build", *INCREMENTAL_SELECTION, *BUILD_SELECTION]]
            else:
                commands = [["build", *BUILD_SELECTION, "--full-refresh"], ["compile", *ANALYSES]]
            result = run_dbt_commands(commands, warehouse, as_of, session=session)
            build_results = result.run_results[:1]
        warnings: tuple[str, ...] = ()
        if build_results:  # the build's data tests, pass or fail, feed audit.dq_results
            tested = record_dbt_tests(warehouse, run_id, build_results[0], target_dir(warehouse) / NODES_FILE)
            warnings = tuple(tested.failure_lines())
        try:
            require_ok("dbt build", result)
        except DbtFailure as exc:
            _finish_build(warehouse, run_id, "failed", exc.result.output[-4000:])
            raise PipelineError("dbt build", str(exc)) from exc
        if engine == "spark":
            # The analyses (check, as-of) run on the warehouse: DuckDB SQL, over its staging views
            # (Spark's staging models are Spark views) and the published intermediate tables.
            views = ["run", "--select", "path:models/staging", "--exclude", "tag:migration"]
            require_ok("dbt compile", run_dbt_commands([views, ["compile", *ANALYSES]], warehouse, as_of))
        if not incremental:
            store_analyses(warehouse)
        _finish_build(
            warehouse,
            run_id,
            "ok",
            f"{plan.mode} build: {plan.reason}\n{result.output[-3900:]}",
            build_fingerprint,
        )
        return replace(plan, warnings=warnings)


def store_analyses(warehouse: Path) -> None:
    """Keep the analyses dbt compiled for the warehouse in it (entitlements.serve.queries)."""
    store_compiled_queries(warehouse, target_dir(warehouse) / "compiled" / "entitlements" / "analyses")


def marts_step(warehouse: Path, run_id: str) -> GateReport:
    """The mart checks, recorded as passed on the last build's marts (no critical failure) or not
    (build_plan.record_marts_checked): a run that builds nothing checks them again until they pass."""
    try:
        report = Steps(PipelineError, lambda *_: None).guard(
            "mart checks", lambda: validate_marts(warehouse, run_id=run_id)
        )
    except PipelineError:
        _record_marts_checked(warehouse, None)
        raise
    _record_marts_checked(warehouse, run_id)
    return report


def _record_marts_checked(warehouse: Path, run_id: str | None) -> None:
    con = connect(warehouse)
    try:
        record_marts_checked(con, run_id)
    finally:
        con.close()


def reports_step(
    warehouse: Path,
    reports_dir: Path,
    names: Sequence[str],
    parameters: dict,
    echo: Callable[[str], None] = print,
    session: ReportSession | None = None,
) -> list[Path]:
    """Render reports; a notebook that raises is a PipelineError naming the report and its error.
    echo: told of each page kept as it was (rendered from the same marts' content, parameters and code).
    session: the ReportSession (one kernel) to render on, closed at the end; default a new one."""
    from entitlements.reports.render import ReportSession

    written = []
    # One kernel for all the reports; a page already rendered from the same content of the marts it
    # reads, these parameters and this code is kept as it is.
    with session or ReportSession() as session:
        for name in names:
            try:
                rendered = session.render(name, warehouse, reports_dir, parameters)
            except Exception as exc:
                from papermill.exceptions import PapermillExecutionError  # late: slow to import

                if isinstance(exc, PapermillExecutionError):
                    failure = f"failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
                else:  # writing the page: a full disk, a folder where a file goes...
                    failure = f"could not be written: {type(exc).__name__}: {exc}"
            else:
                if rendered.kept:
                    echo(rendered.kept_note())
                written.append(rendered.path)
                continue
            raise PipelineError(
                "reports",
                f"report {name} {failure} (the executed notebook is {reports_dir / (name + '.ipynb')})."
                " The marts were built and checked; only the reports from this one on are missing:"
                f" fix the cause and write them with `entitlements report all --out {reports_dir}`.",
            )
    return written


def run_pipeline(
    export_dir: Path,
    warehouse: Path,
    reports_dir: Path | None,
    as_of: date,
    *,
    progress: bool | None = None,
    echo: Callable[[str], None] = print,
    ingest_options: dict[str, Any] | None = None,
    full_refresh: bool = False,
    on_stage: Callable[[str], None] = lambda _: None,
    engine: str = "duckdb",
) -> RunResult:
    """The whole run under one lock (entitlements.runs.lock): no other command changes the warehouse
    between its stages. reports_dir None: no Data Docs and no reports. A run whose build finds
    nothing changed (entitlements.runs.build_plan) keeps the reports and checks no mart again once the
    marts have passed their checks on that build (else it checks them: built by `entitlements build`,
    or their checks failed).
    on_stage: told each stage's name (STAGES) as it starts (`make bench` times them so).
    engine: where dbt builds, `duckdb` (the warehouse itself) or `spark` (build_step)."""
    options = dict(ingest_options or {})
    config = run_config(export_dir, options.pop("config", None))
    # dbt starts now and parses while the files land and are checked: a few seconds off every run.
    # It parses with the vars the ingest is about to record; if they turn out other, the build
    # starts a child of its own (run_dbt_commands).
    dbt_vars = json.loads(json.dumps(config.dbt_vars())) | {"as_of_date": as_of.isoformat()}
    with (
        run_lock(warehouse, "run"),
        DbtSession(warehouse, dbt_vars, "spark" if engine == "spark" else None) as session,
        contextlib.ExitStack() as stack,
    ):
        run_id = uuid.uuid4().hex[:12]
        result = RunResult(run_id, as_of)

        def stage(name: str) -> None:
            freeze_heap()  # what the stages so far loaded stays (warehouse.freeze_heap)
            on_stage(name)

        echo(f"run {run_id}: as of {as_of}, exports {export_dir}, warehouse {warehouse}")
        stage("ingest")
        result.files = ingest_step(
            warehouse,
            export_dir,
            run_id,
            progress=progress,
            ingest_options=options | {"config": config.path},
            echo=lambda name: echo(f"ingest: landing {name}"),
        )
        landed = [f.load_id for f in result.files if f.status == "landed" and f.load_id]
        ignored = [f.source_file for f in result.files if f.status == "ignored"]
        skipped = len(result.files) - len(landed) - len(ignored)
        echo(
            f"ingest: {len(landed)} files landed, {skipped} skipped (already loaded)"
            + (f", {len(ignored)} not read (entitlements.yml ignore: {_some(ignored)})" if ignored else "")
        )
        for file in result.files:
            if file.rows_rejected:
                echo(
                    f"  {file.source_file}: {file.rows_rejected} of {file.rows_in} rows rejected"
                    f" ({file.message})"
                )
        stage("landing checks")
        echo("landing checks: running")
        result.landing = landing_step(warehouse, run_id)
        echo(
            f"landing checks: {len(result.landing.results)} expectations passed"
            if not result.landing.failures
            else f"landing checks: {result.landing.summary()}"
        )
        stage("dbt build")
        echo("dbt build: running")
        report_session = _report_session(reports_dir)
        if report_session is not None:  # a run stopped by a gate stops the kernel it started too
            stack.callback(report_session.close)

        warming: list[threading.Thread] = []

        def meanwhile(_: BuildPlan) -> None:  # dbt's child builds: this process waits, so it prepares
            warming.append(_import_in_background(HEAVY_IMPORTS))
            if report_session is not None:  # on a thread of its own: the kernel, papermill, nbconvert
                report_session.start()

        # While dbt's child builds, this process imports and starts what the later stages need
        # (meanwhile), collecting nothing: its collections would take CPU from the build.
        with collecting_nothing():
            result.build = build_step(
                warehouse,
                run_id,
                as_of,
                full_refresh=full_refresh,
                session=session,
                on_build=meanwhile,
                engine=engine,
            )
        checked_by = result.build.marts_checked_by  # set on a skip plan only
        if checked_by is not None:
            echo(f"dbt build: skipped, {result.build.reason}")
            echo(f"mart checks: skipped, the marts did not change since they passed them (run {checked_by})")
        else:
            if result.build.mode == "skip":
                # Built by `entitlements build` (no mart checks), or the checks failed: not passed yet.
                echo(f"dbt build: skipped, {result.build.reason}")
                echo("mart checks: the marts have not passed them since that build: checking them")
            else:
                echo(f"dbt build: ok ({result.build.mode}: {result.build.reason})")
                for line in result.build.warnings:  # data tests that warn: named, not only recorded
                    echo(line)
            stage("mart checks")
            _join(warming)
            result.marts = marts_step(warehouse, run_id)
            echo(
                f"mart checks: {len(result.marts.results)} expectations, "
                f"{len(result.marts.failures)} non-critical failures"
            )
            for line in result.marts.failure_lines():  # which, so nobody has to query audit.dq_results
                echo(line)
        if reports_dir is None:
            return result
        reports_dir.mkdir(parents=True, exist_ok=True)
        stage("data docs")
        docs = data_docs_index(reports_dir)
        writing: Future[Path] | None = None
        if result.marts is None and docs.exists():  # no result of this run to show
            echo("data docs: unchanged, kept")
        else:
            _join(warming)
            # Written by GX in this process while the kernel renders the reports (this process mostly
            # waits on it then); independent outputs, both after the gates that guard them.
            writing = stack.enter_context(ThreadPoolExecutor(1, "data docs")).submit(
                build_data_docs, reports_dir, warehouse
            )
        from entitlements.reports.render import PIPELINE_REPORTS, write_index

        stage("reports")
        parameters = {"as_of": as_of.isoformat()}
        try:
            pages = reports_step(
                warehouse, reports_dir, PIPELINE_REPORTS, parameters, echo, session=report_session
            )
        finally:
            if writing is not None:
                wait([writing])  # a failed report's error is the run's; the docs are written all the same
        result.reports = [writing.result() if writing is not None else docs, *pages]
        # After the Data Docs, which it links to: each report's headline figures and where to find more.
        result.reports.append(write_index(reports_dir))
        return result


def _some(names: Sequence[str], shown: int = 5) -> str:
    """The first few names, and how many more: a Data Export leaves out hundreds of objects."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _report_session(reports_dir: Path | None) -> ReportSession | None:
    if reports_dir is None:
        return None
    from entitlements.reports.render import ReportSession

    return ReportSession()


def _import_in_background(modules: Sequence[str]) -> threading.Thread:
    """Import modules on a daemon thread, at background priority. Join it before importing them on
    another thread (_join): a package imported on two threads at once can hand one of them a half
    initialised module (Great Expectations' circular imports raise ImportError then)."""

    def load() -> None:
        background_priority()
        for name in modules:
            with contextlib.suppress(ImportError):  # the step importing it for real says what is wrong
                importlib.import_module(name)

    thread = threading.Thread(target=load, name="warm-up imports", daemon=True)
    thread.start()
    return thread


def _join(threads: Sequence[threading.Thread]) -> None:
    for thread in threads:
        thread.join()
