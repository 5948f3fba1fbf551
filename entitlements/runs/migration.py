"""Validate a legacy contract migration, step by step, each step guarded (docs/migration.md).

    entitlements migrate validate LEGACY_DIR [--phase NAME] [--as-of DATE]

The new model (the CRM export, built by `entitlements run`) is what the legacy contracts were
migrated into; the legacy export is what they came from. The steps, in order:

extract    land the legacy export as it is (ingest, family ``legacy``: every field as text) and
           check it: completeness against the control totals, keys, duplicates, orphans, blank
           and unreadable values (suites ``migration.extract.*``).
map        map it to the canonical model (product codes, crosswalk ids, serial numbers, dates,
           minor units) and check the mapping: no fan-out, every code mapped (``migration.map.*``).
load       compare the mapped legacy contracts with the new model per account and currency: row
           counts, contract value sums, date ranges (``migration.load.*``).
reconcile  reconcile record by record (fct_migration_reconciliation, fct_migration_differences),
           run both systems' entitlements in parallel on one date (fct_migration_parallel_run),
           list accounts for manual review (fct_migration_review_list) (``migration.reconcile.*``).

Each step builds its dbt models (tag ``migration_<step>``) and runs its Great Expectations
suites; results go to audit.dq_results under step ``migration.<step>``. A critical failure
stops the migration at that step (MigrationError names the step, the check and sample rows);
when the extract fails, the legacy files this run landed are reverted. Every run is recorded in
audit.migration_runs.

A phase is a subset of accounts from the migration plan (phases.yml). Validating one touches
only its accounts: checks, marts and the report take its records only, and its rows in the
migration marts replace those of its previous validation (so re-running is idempotent). The
plan's phases partition the accounts, so validated phases add up to the whole (phase ``all``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from entitlements import audit
from entitlements.config import project_dbt_vars
from entitlements.ingest.exports import MIGRATION_PLAN
from entitlements.ingest.land import FileResult, revert_load
from entitlements.quality.gates import (
    MIGRATION_STEPS,
    GateReport,
    migration_step_name,
    record_gate_failure,
    validate_migration_step,
)
from entitlements.runs.lock import run_lock
from entitlements.runs.pipeline import PipelineError, ingest_step
from entitlements.runs.steps import DbtFailure, StepError, Steps
from entitlements.transform.dbt_runner import DbtResult, run_dbt
from entitlements.transform.spark import build_on_spark
from entitlements.warehouse import connect, table_exists

ALL = "all"  # the phase of every account: a validation without --phase
PHASE_ATTRIBUTES = ("segment", "country", "currency")  # what a phase's `where` may select on
# The options' defaults are the dbt vars' (dbt_project.yml, their one definition).
_DBT_VARS = project_dbt_vars()
DEFAULT_MAX_FAULT_SHARE: float = _DBT_VARS["migration_max_fault_share"]
DEFAULT_REVIEW_VALUE: float = _DBT_VARS["migration_review_value"]
DEFAULT_REVIEW_MIN_CONTRACTS: int = _DBT_VARS["migration_review_min_contracts"]
_PHASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")

RUNS_TABLE = audit.table("migration_runs")
PHASES_TABLE = audit.table("migration_phases")
PHASE_ACCOUNTS_TABLE = audit.table("migration_phase_accounts")
CURRENT_RUN_TABLE = audit.table("migration_current_run")
_TABLES = ("migration_runs", "migration_phases", "migration_phase_accounts", "migration_current_run")


class MigrationError(StepError):
    """The migration stopped: the message names the step, the check and sample rows, and what to do."""

    kind = "migration "


class MigrationPlanError(ValueError):
    """The migration plan (phases.yml) or the --phase asked for is unusable; nothing was run."""


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Phase:
    name: str
    description: str = ""
    accounts: tuple[str, ...] = ()
    where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    remainder: bool = False

    @property
    def rule(self) -> str:
        if self.remainder:
            return "every account no other phase takes"
        if self.where:
            return " and ".join(f"{key} in ({', '.join(values)})" for key, values in self.where.items())
        return f"{len(self.accounts)} listed accounts"


def load_plan(path: Path) -> list[Phase]:
    """Read and check a migration plan; MigrationPlanError names the file, the phase and the fix."""
    if not path.is_file():
        raise MigrationPlanError(
            f"{path}: migration plan not found (pass --phases FILE, or put a {MIGRATION_PLAN}"
            " beside the legacy export; docs/migration.md shows the format)"
        )
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise MigrationPlanError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("phases"), list) or not doc["phases"]:
        raise MigrationPlanError(f"{path}: expected a top-level `phases:` list of phases")
    phases: list[Phase] = []
    for position, item in enumerate(doc["phases"], start=1):
        phases.append(_phase(path, position, item))
    names = [p.name for p in phases]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise MigrationPlanError(f"{path}: phase name(s) used twice: {', '.join(duplicated)}")
    remainders = [p.name for p in phases if p.remainder]
    if len(remainders) > 1 or (remainders and not phases[-1].remainder):
        raise MigrationPlanError(
            f"{path}: only the last phase may be `remainder: true` (found: {', '.join(remainders)})"
        )
    return phases


def _phase(path: Path, position: int, item: Any) -> Phase:
    where = f"{path}, phase {position}"
    if not isinstance(item, dict):
        raise MigrationPlanError(f"{where}: expected a mapping with name and accounts, where or remainder")
    unknown = sorted(set(item) - {"name", "description", "accounts", "where", "remainder"})
    if unknown:
        raise MigrationPlanError(f"{where}: unknown key(s) {', '.join(unknown)}")
    name = str(item.get("name") or "")
    if not _PHASE_NAME.match(name) or name == ALL:
        raise MigrationPlanError(
            f"{where}: `name` must be letters, digits, - or _ (and not {ALL!r}: the whole migration);"
            f" got {name!r}"
        )
    where = f"{path}, phase {name}"
    kinds = [k for k in ("accounts", "where", "remainder") if item.get(k)]
    if len(kinds) != 1:
        raise MigrationPlanError(
            f"{where}: give exactly one of accounts (a list), where (a rule) or remainder: true"
        )
    accounts = item.get("accounts") or []
    if not isinstance(accounts, list) or not all(isinstance(a, str | int) for a in accounts):
        raise MigrationPlanError(f"{where}: `accounts` must be a list of customer ids")
    rule = item.get("where") or {}
    if not isinstance(rule, dict):
        raise MigrationPlanError(f"{where}: `where` must map an attribute to a list of values")
    bad = sorted(set(rule) - set(PHASE_ATTRIBUTES))
    if bad:
        raise MigrationPlanError(
            f"{where}: `where` may select on {', '.join(PHASE_ATTRIBUTES)}; not on {', '.join(bad)}"
        )
    values = {
        key: tuple(str(v) for v in (value if isinstance(value, list) else [value]))
        for key, value in rule.items()
    }
    return Phase(
        name=name,
        description=str(item.get("description") or ""),
        accounts=tuple(str(a) for a in accounts),
        where=values,
        remainder=bool(item.get("remainder")),
    )


def resolve_plan(warehouse: Path, phases: Sequence[Phase]) -> dict[str, list[str]]:
    """Each phase's accounts: an account belongs to the first phase that takes it.

    Accounts are the new model's (staging.stg_crm__accounts); a listed account it lacks is an error.
    """
    con = connect(warehouse, read_only=True)
    try:
        rows = con.execute(
            "select customer_id, segment, country, currency from marts.dim_customers order by customer_id"
        ).fetchall()
    finally:
        con.close()
    accounts = {r[0]: dict(zip(("segment", "country", "currency"), r[1:], strict=True)) for r in rows}
    taken: set[str] = set()
    members: dict[str, list[str]] = {}
    for phase in phases:
        unknown = [a for a in phase.accounts if a not in accounts]
        if unknown:
            raise MigrationPlanError(
                f"phase {phase.name} lists account(s) the new model does not have: {', '.join(unknown[:10])}"
            )
        if phase.remainder:
            chosen = [a for a in accounts if a not in taken]
        elif phase.where:
            chosen = [
                a
                for a, attrs in accounts.items()
                if a not in taken and all(str(attrs[k]) in v for k, v in phase.where.items())
            ]
        else:
            chosen = [a for a in dict.fromkeys(phase.accounts) if a not in taken]
        members[phase.name] = chosen
        taken.update(chosen)
    return members


def _write_plan(
    warehouse: Path,
    phases: Sequence[Phase],
    members: Mapping[str, list[str]],
    current: tuple[str, str, bool, date],
) -> None:
    """Replace the recorded plan (every phase and its accounts) and the run being validated (run
    id, phase, whether it is the remainder, date) in one transaction."""
    con = connect(warehouse)
    try:
        con.execute("begin")
        audit.ensure(con, *_TABLES)
        con.execute(f"delete from {PHASES_TABLE}")
        con.execute(f"delete from {PHASE_ACCOUNTS_TABLE}")
        con.execute(f"delete from {CURRENT_RUN_TABLE}")
        con.execute(f"insert into {CURRENT_RUN_TABLE} values (?, ?, ?, ?)", list(current))
        for position, phase in enumerate(phases, start=1):
            con.execute(
                f"insert into {PHASES_TABLE} values (?, ?, ?, ?, ?, ?)",
                [
                    phase.name,
                    position,
                    phase.description,
                    phase.rule,
                    phase.remainder,
                    len(members[phase.name]),
                ],
            )
            if members[phase.name]:
                con.executemany(
                    f"insert into {PHASE_ACCOUNTS_TABLE} values (?, ?)",
                    [(phase.name, customer) for customer in members[phase.name]],
                )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        con.close()


# --------------------------------------------------------------------------- the run


@dataclass
class MigrationResult:
    run_id: str
    phase: str
    as_of: date
    files: list[FileResult] = field(default_factory=list)
    steps: dict[str, GateReport] = field(default_factory=dict)


@dataclass(frozen=True)
class MigrationOptions:
    phase: str | None = None
    phases_file: Path | None = None
    max_fault_share: float = DEFAULT_MAX_FAULT_SHARE
    review_value: float = DEFAULT_REVIEW_VALUE
    review_min_contracts: int = DEFAULT_REVIEW_MIN_CONTRACTS
    engine: str = "duckdb"  # where dbt builds the steps' models: duckdb or spark (docs/engines.md)


def _require_new_model(warehouse: Path, engine: str = "duckdb") -> None:
    """The warehouse holds a new model to compare with, built by the engine the migration builds on:
    on Spark the migration's models read the new model's tables from Spark's own metastore, which
    only a Spark build fills (its marts are then views over Spark's Parquet in the warehouse; a
    later DuckDB build makes them tables again)."""
    if not Path(warehouse).exists():
        raise MigrationPlanError(
            f"warehouse {warehouse} does not exist: build the new model first (`entitlements run EXPORT_DIR`)"
        )
    con = connect(warehouse, read_only=True)
    try:
        if not table_exists(con, "marts", "fct_active_entitlements"):
            raise MigrationPlanError(
                f"warehouse {warehouse} holds no new model to compare with: run `entitlements run EXPORT_DIR`"
                " on the new system's export first"
            )
        kind = con.execute(
            "select table_type from information_schema.tables"
            " where table_schema = 'marts' and table_name = 'fct_active_entitlements'"
        ).fetchall()
    finally:
        con.close()
    if engine == "spark" and kind != [("VIEW",)]:
        raise MigrationPlanError(
            f"warehouse {warehouse}: its new model was built on DuckDB, and a migration on Spark compares"
            f" with the new model Spark built: run `entitlements build --warehouse {warehouse} --engine"
            " spark` first (or validate with --engine duckdb)"
        )


def _record_run(warehouse: Path, values: Sequence[Any]) -> None:
    con = connect(warehouse)
    try:
        audit.ensure(con, *_TABLES)
        con.execute(f"insert into {RUNS_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", list(values))
    finally:
        con.close()


def validate_migration(
    legacy_dir: Path,
    warehouse: Path,
    as_of: date,
    options: MigrationOptions | None = None,
    *,
    echo: Callable[[str], None] = print,
) -> MigrationResult:
    """Run extract, map, load and reconcile for a phase (None: the whole migration); see the module doc.

    Holds the warehouse's run lock throughout (entitlements.runs.lock)."""
    with run_lock(warehouse, "migrate validate"):
        return _validate_migration(legacy_dir, warehouse, as_of, options or MigrationOptions(), echo)


def _validate_migration(
    legacy_dir: Path,
    warehouse: Path,
    as_of: date,
    options: MigrationOptions,
    echo: Callable[[str], None],
) -> MigrationResult:
    legacy_dir, warehouse = Path(legacy_dir), Path(warehouse)
    _require_new_model(warehouse, options.engine)
    plan_file = options.phases_file or legacy_dir / MIGRATION_PLAN
    phases = load_plan(plan_file) if (options.phases_file or plan_file.is_file()) else []
    phase = options.phase or ALL
    if phase != ALL and phase not in {p.name for p in phases}:
        known = ", ".join(p.name for p in phases) or f"none ({plan_file} not found)"
        raise MigrationPlanError(f"no phase {phase!r} in the migration plan; phases: {known}")
    run_id = uuid.uuid4().hex[:12]
    remainder = any(p.remainder and p.name == phase for p in phases)
    members = resolve_plan(warehouse, phases) if phases else {}
    _write_plan(warehouse, phases, members, (run_id, phase, remainder, as_of))
    started = datetime.now(UTC).replace(tzinfo=None)
    result = MigrationResult(run_id, phase, as_of)
    # The run's own facts are in audit.migration_current_run; vars only for what the user may set.
    dbt_vars = {
        "migration_max_fault_share": options.max_fault_share,
        "migration_review_value": options.review_value,
        "migration_review_min_contracts": options.review_min_contracts,
    }
    echo(
        f"migration run {run_id}: phase {phase}, as of {as_of}, legacy {legacy_dir}, warehouse {warehouse}"
        + (f", engine {options.engine}" if options.engine != "duckdb" else "")
    )

    def finish(status: str, step: str | None = None, message: str = "") -> None:
        finished = datetime.now(UTC).replace(tzinfo=None)
        row = [run_id, phase, as_of, str(legacy_dir), options.max_fault_share, started, finished]
        _record_run(warehouse, [*row, status, step, message[:4000]])

    def stop(step: str, message: str) -> MigrationError:
        finish("failed", step, message)
        return MigrationError(step, message)

    def record(step: str, status: str, detail: str) -> None:
        if status == "failed":
            finish(status, step, detail)

    steps = Steps(MigrationError, record)

    try:
        result.files = ingest_step(warehouse, legacy_dir, run_id, ingest_options={"file_format": "legacy"})
    except PipelineError as exc:
        cause = str(exc.__cause__ or exc)
        record_gate_failure(
            warehouse,
            run_id=run_id,
            step=migration_step_name("extract"),
            suite="migration.extract.legacy_files",
            table="raw.legacy_*",
            expectation="expect_file_to_match_the_legacy_layout",
            observed=cause[:4000],
        )
        raise stop(
            "extract", f"check legacy file layout failed: {cause}\nNothing of this extract was kept."
        ) from exc
    landed = [f.load_id for f in result.files if f.status == "landed" and f.load_id]

    def undo_extract(_: Exception) -> str:
        if not landed:
            return ""
        revert_load(warehouse, landed, f"migration run {run_id}: extract failed")
        return "The legacy files of this run were not kept."

    # The extract, map and load models are the run's scratch tables: built together, checked step by
    # step. The reconciliation's marts keep every phase's results, so they are built only once the
    # three steps passed.
    built = _build(warehouse, ("extract", "map", "load"), dbt_vars, options.engine)
    for step in MIGRATION_STEPS:
        if step == "reconcile":
            built = _build(warehouse, ("reconcile",), dbt_vars, options.engine)

        def check(step: str = step, built: _Built = built) -> GateReport:
            if built.failures.get(step):
                raise DbtFailure("dbt build of the step's models", built.result, built.failures[step])
            return validate_migration_step(
                warehouse,
                step,
                phase=phase,
                run_id=run_id,
                validated_loads=landed if step == "extract" else (),
            )

        report = steps.guard(
            step,
            check,
            undo=undo_extract if step == "extract" else None,
            advice="Fix the legacy export (or the mapping) and validate again.",
        )
        result.steps[step] = report
        warnings = len(report.failures)
        echo(
            f"{step}: {len(report.results)} checks" + (f", {warnings} warning(s)" if warnings else " passed")
        )
    finish("ok")
    return result


@dataclass(frozen=True)
class _Built:
    result: DbtResult
    failures: dict[str, list[str]]  # by step: what failed


def _build(warehouse: Path, steps: Sequence[str], dbt_vars: Mapping[str, Any], engine: str) -> _Built:
    """dbt build of the steps' models (tags migration_<step>); what failed, by step. On Spark the
    raw layer (the legacy files just landed, the plan) is exported first and the tables Spark built
    are published to the warehouse (entitlements.transform.spark), where the checks read them."""
    selection = ["--select", *(f"tag:migration_{step}" for step in steps)]
    if engine == "spark":
        built = build_on_spark(warehouse, None, ["build", *selection], dbt_vars=dict(dbt_vars))
    else:
        built = run_dbt("build", warehouse, None, *selection, dbt_vars=dict(dbt_vars))
    if built.ok:
        return _Built(built, {})
    by_step: dict[str, list[str]] = {}
    for node in built.failures:
        step = next((s for s in MIGRATION_STEPS if f"migration_{s}" in node.tags), steps[0])
        by_step.setdefault(step, []).append(node.line())
    return _Built(built, by_step or {steps[0]: built.error_lines(30)})


# --------------------------------------------------------------------------- what it found


def summary_lines(warehouse: Path, phase: str = ALL) -> list[str]:
    """The phase's reconciliation in a few lines: contracts by status, value reconciled, review list."""
    con = connect(warehouse, read_only=True)
    try:
        statuses = con.execute(
            "select status, count(*) from marts.fct_migration_reconciliation where phase = ?"
            " group by status order by count(*) desc",
            [phase],
        ).fetchall()
        values = con.execute(
            "select currency, sum(legacy_value) filter (where status = 'matched'),"
            " sum(legacy_value) filter (where legacy_contract_id is not null)"
            " from marts.fct_migration_reconciliation where phase = ? group by currency order by currency",
            [phase],
        ).fetchall()
        parallel = con.execute(
            "select count(*), count(*) filter (where status <> 'matched')"
            " from marts.fct_migration_parallel_run where phase = ?",
            [phase],
        ).fetchone()
        review = con.execute(
            "select count(*) from marts.fct_migration_review_list where phase = ?", [phase]
        ).fetchone()
    finally:
        con.close()
    total = sum(n for _, n in statuses)
    lines = [f"phase {phase}: {total} contracts reconciled: " + ", ".join(f"{n} {s}" for s, n in statuses)]
    for currency, matched, legacy in values:
        if legacy:
            lines.append(
                f"  {currency or '(no currency)'}: {matched or 0:,.2f} of {legacy:,.2f} legacy contract value"
                f" matched ({(matched or 0) / legacy:.1%})"
            )
    lines.append(f"parallel run: {parallel[1]} of {parallel[0]} entitlements differ")
    lines.append(f"review list: {review[0]} accounts for manual sign-off")
    return lines
