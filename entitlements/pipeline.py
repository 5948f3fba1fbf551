"""The whole run: ingest -> landing gates -> dbt build -> mart gates -> report.

Each stage is a gate: when one fails the run stops, says why, and leaves the
warehouse as it was before the run (loads landed by this run are reverted).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from entitlements.dbt_runner import run_dbt, target_dir
from entitlements.queries import store_compiled_queries
from entitlements.warehouse import connect, table_exists
from expectations.gates import GateFailure, GateReport, build_data_docs, validate_landing, validate_marts
from ingest.errors import IngestError
from ingest.land import FileResult, ingest_exports, revert_load


class PipelineError(Exception):
    """A gate failed; the message says which stage, what, and what to do."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"[{stage}] {message}")
        self.stage = stage


@dataclass
class RunResult:
    run_id: str
    as_of: date
    files: list[FileResult] = field(default_factory=list)
    landing: GateReport | None = None
    marts: GateReport | None = None
    reports: list[Path] = field(default_factory=list)


def export_as_of(export_dir: Path) -> date | None:
    """The as-of date a demo export declares in export.json, if any."""
    meta = Path(export_dir) / "export.json"
    if meta.exists():
        return date.fromisoformat(json.loads(meta.read_text())["as_of"])
    return None


def recorded_as_of(warehouse: Path) -> date | None:
    """The as-of date of the warehouse's last build, from audit.pipeline_runs."""
    if not Path(warehouse).exists():
        return None
    con = connect(warehouse, read_only=True)
    try:
        if not table_exists(con, "audit", "pipeline_runs"):
            return None
        row = con.execute(
            "select as_of_date from audit.pipeline_runs where step = 'build' and status = 'ok'"
            " order by finished_at desc limit 1"
        ).fetchone()
        return row[0] if row else None
    finally:
        con.close()


def _landed_loads(warehouse: Path) -> set[str]:
    """Load ids currently landed but not yet validated."""
    if not Path(warehouse).exists():
        return set()
    con = connect(warehouse, read_only=True)
    try:
        if not table_exists(con, "audit", "ingest_manifest"):
            return set()
        return {
            r[0]
            for r in con.execute(
                "select load_id from audit.ingest_manifest where status = 'landed' and superseded_by is null"
            ).fetchall()
        }
    finally:
        con.close()


def _record_step(
    warehouse: Path, run_id: str, step: str, as_of: date | None, status: str, detail: str
) -> None:
    con = connect(warehouse)
    try:
        con.execute("create schema if not exists audit")
        con.execute(
            "create table if not exists audit.pipeline_runs (run_id varchar, step varchar, as_of_date date,"
            " status varchar, detail varchar, finished_at timestamp)"
        )
        con.execute(
            "insert into audit.pipeline_runs values (?, ?, ?, ?, ?, current_timestamp::timestamp)",
            [run_id, step, as_of, status, detail[:4000]],
        )
    finally:
        con.close()


def ingest_step(
    warehouse: Path,
    export_dir: Path,
    run_id: str,
    *,
    progress: bool | None = None,
    ingest_options: dict[str, Any] | None = None,
) -> list[FileResult]:
    """Land the export; if a file is refused, revert the files this run landed before it.

    ingest_options: keyword arguments of ingest_exports (file_format, mapping, max_rejected_share,
    quarantine_unmapped).
    """
    before = _landed_loads(warehouse)
    try:
        files = ingest_exports(warehouse, export_dir, progress=progress, **(ingest_options or {}))
    except IngestError as exc:
        partial = sorted(_landed_loads(warehouse) - before)
        if partial:
            revert_load(warehouse, partial, f"run {run_id}: {exc.source_file} was refused")
        raise PipelineError("ingest", f"{exc}\nNothing of this export was kept.") from exc
    _record_step(
        warehouse,
        run_id,
        "ingest",
        None,
        "ok",
        f"{sum(f.status == 'landed' for f in files)} landed, "
        f"{sum(f.status == 'skipped' for f in files)} skipped",
    )
    return files


def landing_step(warehouse: Path, run_id: str, load_ids: list[str] | None = None) -> GateReport:
    """Validate landed files; on a critical failure revert those loads so raw is as it was."""
    try:
        return validate_landing(warehouse, load_ids, run_id=run_id)
    except GateFailure as exc:
        if load_ids:
            revert_load(warehouse, load_ids, f"landing checks failed in run {run_id}")
        _record_step(warehouse, run_id, "landing", None, "failed", str(exc))
        raise PipelineError(
            "landing checks", f"{exc}\nThe files of this run were not kept: fix the export and run again."
        ) from exc


def build_step(warehouse: Path, run_id: str, as_of: date) -> None:
    """dbt build, then compile the analyses and store them in the warehouse (entitlements.queries).

    The legacy migration's models (tag migration) are built by `entitlements migrate`, step by step.
    """
    result = run_dbt("build", warehouse, as_of, "--exclude", "tag:migration")
    if result.ok:
        compiled = run_dbt("compile", warehouse, as_of, "--select", "path:analyses")
        if compiled.ok:
            analyses = target_dir(warehouse) / "compiled" / "entitlements" / "analyses"
            store_compiled_queries(warehouse, analyses)
        result = compiled if not compiled.ok else result
    _record_step(warehouse, run_id, "build", as_of, "ok" if result.ok else "failed", result.output[-4000:])
    if not result.ok:
        failing = [line for line in result.output.splitlines() if "ERROR" in line or "FAIL" in line]
        raise PipelineError(
            "dbt build", "dbt build failed:\n" + "\n".join(failing[-20:] or result.output.splitlines()[-20:])
        )


def marts_step(warehouse: Path, run_id: str) -> GateReport:
    try:
        return validate_marts(warehouse, run_id=run_id)
    except GateFailure as exc:
        raise PipelineError("mart checks", str(exc)) from exc


def run_pipeline(
    export_dir: Path,
    warehouse: Path,
    reports_dir: Path,
    as_of: date,
    *,
    progress: bool | None = None,
    echo: Callable[[str], None] = print,
    ingest_options: dict[str, Any] | None = None,
) -> RunResult:
    run_id = uuid.uuid4().hex[:12]
    result = RunResult(run_id, as_of)
    echo(f"run {run_id}: as of {as_of}, exports {export_dir}, warehouse {warehouse}")
    result.files = ingest_step(
        warehouse, export_dir, run_id, progress=progress, ingest_options=ingest_options
    )
    landed = [f.load_id for f in result.files if f.status == "landed" and f.load_id]
    echo(f"ingest: {len(landed)} files landed, {len(result.files) - len(landed)} skipped (already loaded)")
    for file in result.files:
        if file.rows_rejected:
            echo(
                f"  {file.source_file}: {file.rows_rejected} of {file.rows_in} rows rejected ({file.message})"
            )
    try:
        result.landing = landing_step(warehouse, run_id, landed)
    except PipelineError:
        raise
    echo(
        f"landing checks: {len(result.landing.results)} expectations passed"
        if not result.landing.failures
        else f"landing checks: {result.landing.summary()}"
    )
    build_step(warehouse, run_id, as_of)
    echo("dbt build: ok")
    result.marts = marts_step(warehouse, run_id)
    echo(
        f"mart checks: {len(result.marts.results)} expectations, "
        f"{len(result.marts.failures)} non-critical failures"
    )
    reports_dir.mkdir(parents=True, exist_ok=True)
    result.reports.append(build_data_docs(reports_dir, warehouse))
    from entitlements.report import PIPELINE_REPORTS, render_report  # late: nbconvert is slow to import

    for name in PIPELINE_REPORTS:
        result.reports.append(render_report(name, warehouse, reports_dir, {"as_of": as_of.isoformat()}))
    return result
