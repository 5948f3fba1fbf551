"""Data-quality gates: what no row check sees, per landed file and per mart; dbt's test results.

The pipeline calls only the public functions here (``validate_landing``,
``validate_marts``, ``validate_migration_step``, ``record_dbt_tests``,
``record_gate_failure``, ``build_data_docs``) and reads ``GateReport`` / ``GateFailure``.
Everything that touches Great Expectations stays inside this module; the landing gate already
judges its suites with a native DuckDB engine, and the callers do not notice which engine ran.

Each rule has one owner (docs/architecture.md, "Where each rule lives"):

- the ingest's row checks type every value and reject a row with a missing required value, a
  value outside its enumeration, a negative value the layout forbids, an end before its start,
  or a duplicated key; nothing here checks those again;
- a landing suite (``landing.<table>``) checks what no single row shows, per landed file: its
  rows in raw are the rows the manifest says landed (``audit.ingest_manifest.row_count``, given
  as the suite parameter ``manifest_row_count``), the raw table has exactly the layout's
  columns and the lineage columns, and warnings on volumes (a file that landed no row, an
  at-least-once feed that repeats most of its ids);
- dbt data tests and enforced contracts own a mart's invariants; a mart suite
  (``marts.<table>``) holds only what dbt does not test (distributions, cross-column sanity,
  warnings shown in Data Docs); ``record_dbt_tests`` records the build's dbt test results in
  ``audit.dq_results`` (step ``build``, suite ``dbt``) beside the suites' results.

How a gate runs
    1. Open the warehouse READ-ONLY and list the batches: one landed file (``raw.<table>
       where _load_id = X``, a superseded load's in raw_superseded), one mart table, or one
       migration step's table restricted to the phase being validated.
    2. Landing: each load is judged in DuckDB (``_LandingEngine``): one aggregate query per load
       (row count, and non-null and distinct counts of a key a suite asks about) and the table's
       columns, so no landed row reaches Python and memory stays flat however large the files.
       The suite's expectations (``LANDING_EXPECTATIONS``: the types ``landing_suite`` generates)
       are judged from those numbers by GX's rules, the manifest row count given as the
       parameter; one the engine does not compute (a hand edit) is a critical failure naming it,
       never skipped. great_expectations is not imported.
    3. Marts and migration steps: each batch is read as a pandas DataFrame when its turn comes and
       dropped once validated (GX's own batch cache cleared too), so one frame is alive at a time,
       and validated against its suite with a GX pandas datasource (GX's SQL datasource returns
       empty results on DuckDB, GX issues #10738, #11579). The process keeps one in-memory GX
       context, built from expectations/gx/great_expectations.yml (its import and set-up cost
       seconds): the marts gate, the migration steps and ``build_data_docs`` share it.
    4. Close the read-only connection, then append one row per expectation to
       ``audit.dq_results`` (and, for landing, move passing manifest rows to
       'validated') through a normal connection.
    5. Raise ``GateFailure`` if any expectation whose meta says
       ``{"critical": true}`` failed.

Validation results, GX's format from either engine (the landing engine writes them as GX's
results store would, tests/test_gates_native.py reads them back with GX), are kept (newest
``KEEP_RUNS`` runs per suite) in ``results_dir(warehouse)`` so ``build_data_docs`` can show them;
that directory is beside the warehouse (``<dir>/gx/<warehouse name>/validations``, like dbt's
target), so the Data Docs of one warehouse never show another's runs, and can be moved with the
environment variable ``ENTITLEMENTS_GX_RESULTS_DIR``.

Landing suites are generated from entitlements/ingest/layouts.py (``landing_suites()``) and
committed as JSON; ``python -m entitlements.quality.gates --write-suites`` rewrites them
and a test keeps the committed files equal to the generated ones. Mart suites are written by
hand; migration suites belong to the migration's steps.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from entitlements import audit
from entitlements.ingest.land import LINEAGE_COLUMNS, SUPERSEDED_SCHEMA
from entitlements.ingest.layouts import LAYOUTS, LAYOUTS_BY_TABLE, Layout
from entitlements.warehouse import GX_DIR, connect

# Before anything imports great_expectations (it is imported lazily below).
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.data_context import AbstractDataContext

log = logging.getLogger(__name__)

LANDING = "landing"
MARTS = "marts"
MIGRATION = "migration"
MIGRATION_STEPS = ("extract", "map", "load", "reconcile")  # in the order a migration runs them
GX_CONFIG = GX_DIR / "great_expectations.yml"
SUITES_DIR = GX_DIR / "expectations"
RESULTS_DIR_ENV = "ENTITLEMENTS_GX_RESULTS_DIR"
KEEP_RUNS = 20  # GX validation results kept per suite for Data Docs
SAMPLE_ROWS = 5  # bad rows quoted per failed expectation
MAX_MESSAGE_FAILURES = 10  # failed expectations spelled out in a GateFailure message
DQ_INSERT_ROWS = 500  # audit.dq_results rows per insert statement
# What validate_marts and build_data_docs import (seconds): a run imports it while dbt builds.
HEAVY_IMPORTS = ("great_expectations",)
LANDING_MEMORY_LIMIT = "256MB"  # DuckDB's memory for the landing gate's counts; more spills to disk

MANIFEST = "audit.ingest_manifest"
DQ_RESULTS = audit.table("dq_results")
LANDED = "landed"
VALIDATED = "validated"
# The suite parameter a landing suite compares a file's rows in raw with: its manifest row_count.
MANIFEST_ROW_COUNT = "manifest_row_count"
# At-least-once feeds (a layout whose key may repeat): below this share of distinct keys, a warning.
MIN_DISTINCT_KEY_SHARE = 0.5

# dbt's data tests, recorded by record_dbt_tests: the run's step that ran them and their suite.
BUILD = "build"
DBT_SUITE = "dbt"
# The generic test holding a model's single-column rules (dbt_project/macros/generic_tests.sql): its
# arguments, each a list of columns; recorded as one row per rule and column.
COLUMN_RULES = "column_rules"
COLUMN_RULE_NAMES = ("not_null", "non_negative", "positive")

DQ_COLUMNS = dict(audit.TABLES["dq_results"])

# Checks the gate makes itself when there is nothing for GX to validate.
TABLE_EXISTS = "expect_table_to_exist"
LAYOUT_EXISTS = "expect_table_to_have_a_layout"
SUITE_EXISTS = "expect_table_to_have_a_suite"


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one expectation on one batch (one row of audit.dq_results)."""

    step: str  # 'landing' | 'marts' | 'migration.<step>' | 'build' (dbt's tests)
    suite: str  # e.g. 'landing.crm_accounts'; 'dbt' for a dbt test
    table: str  # qualified, e.g. 'raw.crm_accounts'
    batch: str  # landing: the load_id; otherwise the table (migration: with its phase)
    expectation: str  # GX expectation type, e.g. 'expect_table_row_count_to_equal'; a dbt test's name
    column: str | None  # column(s) checked, comma separated; None for table-level checks
    success: bool
    critical: bool
    observed_value: str | None
    unexpected_sample: str | None  # JSON list of a few bad rows (key columns + bad values)
    description: str | None = None  # the expectation's own words (suite JSON), for messages only


@dataclass
class GateReport:
    run_id: str
    step: str
    results: list[CheckResult]

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success]

    @property
    def critical_failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.critical]

    @property
    def batches(self) -> list[str]:
        return list(dict.fromkeys(r.batch for r in self.results))

    def summary(self) -> str:
        failures = self.failures
        head = (
            f"{self.step} gate, run {self.run_id}: {len(self.batches)} batch(es), "
            f"{len(self.results)} check(s), {len(failures)} failed "
            f"({len(self.critical_failures)} critical)"
        )
        return "\n".join([head, *self.failure_lines()])

    def failure_lines(self) -> list[str]:
        """One indented line per failed expectation: its level, suite, batch, column and what it saw."""
        lines = []
        for r in self.failures:
            level = "CRITICAL" if r.critical else "warning"
            if r.suite == DBT_SUITE:  # a dbt test's suite is dbt: the model it tested is what names it
                batch = f" {r.table}"
            else:
                batch = "" if r.batch == r.table else f" batch {r.batch}"
            column = f" on {r.column}" if r.column else ""
            lines.append(
                f"  [{level}] {r.suite}{batch}: {r.expectation}{column} ({r.observed_value or 'failed'})"
            )
        return lines


class GateFailure(Exception):
    """A critical expectation failed. ``.report`` holds every result of the gate run."""

    def __init__(self, report: GateReport, source_files: Mapping[str, str] | None = None):
        self.report = report
        self.source_files = dict(source_files or {})  # landing: load_id -> source file
        super().__init__(_failure_message(report, self.source_files))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.report, self.source_files))


def _failure_message(report: GateReport, source_files: Mapping[str, str]) -> str:
    critical = report.critical_failures
    lines = [
        f"{report.step} gate failed (run {report.run_id}): {len(critical)} critical expectation(s) failed"
        f" of {len(report.results)} check(s) on {len(report.batches)} batch(es)"
    ]
    for r in critical[:MAX_MESSAGE_FAILURES]:
        file = source_files.get(r.batch)
        where = f"suite {r.suite}, table {r.table}"
        if r.batch != r.table:
            where += f", batch {r.batch}"
        if file:
            where += f", source file {file}"
        column = f"column {r.column}" if r.column else "the table"
        lines.append(f"- {where}: {r.expectation} failed on {column}")
        if r.description:
            lines.append(f"    check: {r.description}")
        if r.observed_value:
            lines.append(f"    observed: {r.observed_value}")
        if r.unexpected_sample:
            lines.append(f"    sample rows: {r.unexpected_sample}")
    if len(critical) > MAX_MESSAGE_FAILURES:
        lines.append(f"- ... and {len(critical) - MAX_MESSAGE_FAILURES} more critical failure(s)")
    others = len(report.failures) - len(critical)
    if others:
        lines.append(f"({others} non-critical failure(s) recorded too; see {DQ_RESULTS})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- suites


def _gx() -> Any:
    import great_expectations as gx

    return gx


def _expectation(class_name: str, *, critical: bool, description: str, **kwargs: Any) -> dict[str, Any]:
    """One expectation as suite JSON, validated by (and in the canonical form of) its GX class."""
    cls = getattr(_gx().expectations, class_name)
    exp = cls(
        **kwargs,
        meta={"critical": critical},
        severity="critical" if critical else "warning",
        description=description,
    )
    return exp.configuration.to_json_dict()


def landing_suite(layout: Layout) -> dict[str, Any]:
    """The landing suite of one raw table, derived from its layout: what no row check can see.

    The ingest's row checks (entitlements/ingest/checks.py, from the same layout) own every rule
    a single row shows: types, required values, enumerations, non-negative values, end before
    start, keys duplicated in a file or already landed. A landed file passed them all, so this
    suite checks the file as a whole (one batch = one load):

    - critical: its rows in raw equal the rows the manifest says landed (suite parameter
      ``manifest_row_count``: ``audit.ingest_manifest.row_count`` of the load, given at
      validation time), so no row was lost or added between the ingest's count and the build;
    - critical: the raw table has exactly the layout's columns and the lineage columns
      (structural drift between the layout and the warehouse);
    - warning: the file landed at least one row;
    - warning, for a feed whose key may repeat (``unique_key`` False: at-least-once delivery;
      not the legacy files, whose keys the migration's extract suites judge): at least
      ``MIN_DISTINCT_KEY_SHARE`` of the file's keys are distinct (a file delivered twice over
      repeats them all).
    """
    table = f"raw.{layout.table}"
    columns = [*layout.column_names, *(name for name, _ in LINEAGE_COLUMNS)]
    exps = [
        _expectation(
            "ExpectTableRowCountToEqual",
            critical=True,
            value={"$PARAMETER": MANIFEST_ROW_COUNT},
            description=(
                f"The file's rows in {table} (its _load_id) are the rows the ingest counted as landed"
                f" ({MANIFEST}.row_count of the load): none lost or added since."
            ),
        ),
        _expectation(
            "ExpectTableColumnsToMatchSet",
            critical=True,
            column_set=columns,
            exact_match=True,
            description=(
                f"{table} has exactly the columns of layout {layout.table}"
                " (entitlements/ingest/layouts.py) and the lineage columns."
            ),
        ),
        _expectation(
            "ExpectTableRowCountToBeBetween",
            critical=False,
            min_value=1,
            description="The file landed at least one row (an empty export is worth a look).",
        ),
    ]
    # A legacy file lands as written, duplicate keys and all: the migration's extract suites judge it.
    if not layout.unique_key and len(layout.primary_key) == 1 and layout.system != "legacy":
        key = layout.primary_key[0]
        exps.append(
            _expectation(
                "ExpectColumnProportionOfUniqueValuesToBeBetween",
                critical=False,
                column=key,
                min_value=MIN_DISTINCT_KEY_SHARE,
                description=(
                    f"{key} may repeat (delivered at least once; staging keeps one of each), but at"
                    f" least {MIN_DISTINCT_KEY_SHARE:.0%} of a file's {key} values are distinct:"
                    " fewer looks like a file delivered twice over."
                ),
            )
        )
    return {
        "name": f"{LANDING}.{layout.table}",
        "notes": (
            f"Generated from entitlements/ingest/layouts.py (layout {layout.table}) by "
            "`python -m entitlements.quality.gates --write-suites`: edit the layout, not this file. "
            "Only what no row check sees: the ingest's row checks own types, required values, "
            "enumerations, ranges and keys."
        ),
        "meta": {
            "table": table,
            "key_columns": list(layout.primary_key),
            "generated_from": "entitlements/ingest/layouts.py",
            "parameters": {MANIFEST_ROW_COUNT: f"{MANIFEST}.row_count of the load validated"},
        },
        "expectations": exps,
    }


def landing_suites() -> dict[str, dict[str, Any]]:
    """Every landing suite by name, as generated from entitlements/ingest/layouts.py."""
    return {f"{LANDING}.{layout.table}": landing_suite(layout) for layout in LAYOUTS}


def suite_path(name: str) -> Path:
    """Where GX's filesystem expectations store keeps a suite: dots become folders."""
    return SUITES_DIR.joinpath(*name.split(".")).with_suffix(".json")


def _dump(suite: Mapping[str, Any]) -> str:
    return json.dumps(suite, indent=2, sort_keys=False) + "\n"


def write_suites() -> list[Path]:
    """Write the generated landing suites to JSON and drop landing suites no layout makes any more."""
    suites = landing_suites()
    written = []
    for name, suite in suites.items():
        path = suite_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_dump(suite))
        written.append(path)
    keep = {suite_path(name) for name in suites}
    for stale in (SUITES_DIR / LANDING).glob("*.json"):
        if stale not in keep:
            stale.unlink()
    return written


def committed_suites(step: str) -> dict[str, dict[str, Any]]:
    """The suites of one step as committed under expectations/gx/expectations/<step>/."""
    out = {}
    for path in sorted((SUITES_DIR / step).glob("*.json")):
        suite = json.loads(path.read_text())
        out[suite["name"]] = suite
    return out


def suite_drift() -> list[str]:
    """Differences between the committed landing suites and the generated ones (empty: in sync)."""
    generated, committed = landing_suites(), committed_suites(LANDING)
    problems = [f"{n}: not committed" for n in generated.keys() - committed.keys()]
    problems += [f"{n}: committed but no layout generates it" for n in committed.keys() - generated.keys()]
    problems += [f"{n}: differs" for n in generated.keys() & committed.keys() if generated[n] != committed[n]]
    return sorted(problems)


# --------------------------------------------------------------------------- batches and outcomes


def results_dir(warehouse: Path) -> Path:
    """Where the GX validation results of a warehouse are kept for its Data Docs."""
    if os.environ.get(RESULTS_DIR_ENV):
        return Path(os.environ[RESULTS_DIR_ENV])
    warehouse = Path(warehouse).resolve()
    return warehouse.parent / "gx" / warehouse.stem / "validations"


@dataclass
class _Batch:
    step: str
    suite: str
    table: str  # qualified
    batch: str
    # GX engine: the query that reads the batch, run when its turn comes (one frame alive at a time).
    query: tuple[str, list[Any]] | None = None
    frame: pd.DataFrame | None = None  # GX engine: the batch's rows, only while it is being validated
    types: dict[str, str] = field(default_factory=dict)  # DuckDB type per column, for sample values
    source_file: str | None = None
    load_id: str | None = None
    problem: CheckResult | None = None  # set when the batch cannot be validated (the gate's own check)
    parameters: dict[str, Any] | None = None  # the suite's parameters ($PARAMETER) for this batch

    @property
    def label(self) -> str:
        """What Data Docs show as the batch's data asset."""
        label = self.table if self.batch == self.table else f"{self.table}, load {self.batch}"
        return f"{label}, file {self.source_file}" if self.source_file else label


@dataclass(frozen=True)
class _Outcome:
    """One expectation's outcome as a GX ExpectationValidationResult holds it, whichever engine judged it."""

    config: dict[str, Any]  # GX's expectation configuration (type, kwargs with parameters resolved, ...)
    success: bool
    result: dict[str, Any]  # GX's result dict: observed_value, unexpected_count, ...
    error: str | None = None
    critical: bool | None = None  # None: as the expectation's meta says

    @classmethod
    def of_gx(cls, r: Any) -> _Outcome:
        config = r.expectation_config
        return cls(
            config={
                "type": config.type,
                "kwargs": dict(config.kwargs),
                "meta": dict(config.meta or {}),
                "description": config.description,
            },
            success=bool(r.success),
            result=dict(r.result or {}),
            error=_exception_message(r.exception_info),
        )

    def to_gx_json(self) -> dict[str, Any]:
        """As GX's validation results store writes an ExpectationValidationResult."""
        return {
            "exception_info": {
                "exception_message": self.error,
                "exception_traceback": None,
                "raised_exception": self.error is not None,
            },
            "expectation_config": self.config,
            "meta": {},
            "result": self.result,
            "success": self.success,
        }


def _safe(name: str) -> str:
    """A store-key-safe form of a run or batch id (they become file names)."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name) or "_"


def _run_time_key(run_time: datetime) -> str:
    """A run time as GX's RunIdentifier names its folder in the results store."""
    return run_time.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def _prune_results(suite_dir: Path, keep: int) -> None:
    """Keep the newest ``keep`` runs of a suite (<suite dirs>/<run_name>/<run_time>/<batch>.json)."""
    runs = [p for run in suite_dir.iterdir() if run.is_dir() for p in run.iterdir() if p.is_dir()]
    runs.sort(key=lambda p: p.name, reverse=True)  # run_time dirs: %Y%m%dT%H%M%S.%fZ sorts by time
    for old in runs[keep:]:
        shutil.rmtree(old, ignore_errors=True)
        if not any(old.parent.iterdir()):
            old.parent.rmdir()


def _prune(results: Path, suites: Iterable[str]) -> None:
    for name in suites:
        _prune_results(results.joinpath(*name.split(".")), KEEP_RUNS)


# --------------------------------------------------------------------------- native landing engine

ROW_COUNT_EQUAL = "expect_table_row_count_to_equal"
COLUMNS_MATCH = "expect_table_columns_to_match_set"
ROW_COUNT_BETWEEN = "expect_table_row_count_to_be_between"
UNIQUE_PROPORTION = "expect_column_proportion_of_unique_values_to_be_between"
_BOUNDS = frozenset({"min_value", "max_value", "strict_min", "strict_max"})
# What the landing engine computes: every expectation type landing_suite() generates, with the
# arguments it reads (GX's names and meaning). Anything else in a landing suite (a hand edit) is a
# critical failure naming it, never skipped: the engine does not guess at a check it cannot make.
LANDING_EXPECTATIONS: dict[str, frozenset[str]] = {
    ROW_COUNT_EQUAL: frozenset({"value"}),
    COLUMNS_MATCH: frozenset({"column_set", "exact_match"}),
    ROW_COUNT_BETWEEN: _BOUNDS,
    UNIQUE_PROPORTION: _BOUNDS | {"column"},
}


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _LandingEngine:
    """Judges landed files against their landing suites in DuckDB: one aggregate query per load.

    A landing suite only checks set-based facts (row count, column set, distinct share of a key), so
    DuckDB computes them where the rows are and no row reaches Python: memory stays flat however
    large a file or the raw table. The outcomes are GX's (same expectations, observed values and
    success rules, checked against GX itself in tests/test_gates_native.py) and are stored as GX
    validation results, written as GX's results store writes them, for build_data_docs to render;
    great_expectations is never imported here (its import alone takes seconds).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, run_id: str, results: Path) -> None:
        self.con = con
        self.results = results
        self.run_name = _safe(run_id)
        self.run_time = datetime.now(UTC)
        self.stored: set[str] = set()
        self._suites: dict[str, dict[str, Any]] = {}
        self._columns: dict[str, list[str]] = {}

    def validate(self, batch: _Batch) -> list[CheckResult]:
        if batch.suite not in self._suites:
            self._suites[batch.suite] = json.loads(suite_path(batch.suite).read_text())
        suite = self._suites[batch.suite]
        columns = self._table_columns(batch.table)
        expectations = list(suite.get("expectations") or [])
        metrics = self._metrics(batch, columns, expectations)
        outcomes = [_landing_outcome(e, batch.parameters, columns, metrics) for e in expectations]
        self._store(batch, outcomes)
        key_columns = list((suite.get("meta") or {}).get("key_columns") or [])
        return [_check_result(batch, key_columns, o) for o in outcomes]

    def _table_columns(self, table: str) -> list[str]:
        if table not in self._columns:
            schema, _, name = table.partition(".")
            self._columns[table] = [
                r[0]
                for r in self.con.execute(
                    "select column_name from information_schema.columns where table_catalog ="
                    " current_database() and table_schema = ? and table_name = ? order by ordinal_position",
                    [schema, name],
                ).fetchall()
            ]
        return self._columns[table]

    def _metrics(
        self, batch: _Batch, columns: list[str], expectations: list[dict[str, Any]]
    ) -> dict[str, int]:
        """The load's row count, and non-null and distinct counts of the columns a suite asks about."""
        named = (
            _parameter((e.get("kwargs") or {}).get("column"), batch.parameters)
            for e in expectations
            if e.get("type") == UNIQUE_PROPORTION
        )
        asked = sorted({column for column in named if isinstance(column, str) and column in columns})
        select = ["count(*)"]
        for column in asked:
            select += [f"count({_ident(column)})", f"count(distinct {_ident(column)})"]
        schema, _, name = batch.table.partition(".")
        row = self.con.execute(
            f"select {', '.join(select)} from {_ident(schema)}.{_ident(name)} where _load_id = ?",
            [batch.load_id],
        ).fetchall()[0]  # an aggregate without group by: one row
        metrics = {"rows": int(row[0])}
        for i, column in enumerate(asked):
            metrics[f"nonnull:{column}"] = int(row[1 + 2 * i])
            metrics[f"distinct:{column}"] = int(row[2 + 2 * i])
        return metrics

    def _store(self, batch: _Batch, outcomes: list[_Outcome]) -> None:
        """Write the batch's validation result where and as GX's results store would."""
        successful = sum(o.success for o in outcomes)
        evaluated = len(outcomes)
        when = self.run_time.isoformat()
        document = {
            "id": None,
            "meta": {
                "batch_identifier": batch.batch,
                "batch_spec": {
                    "data_asset_name": batch.label,
                    "engine": "DuckDB: one aggregate query of the load's rows (entitlements.quality.gates)",
                },
                "great_expectations_version": _gx_version(),
                "run_id": {"run_name": self.run_name, "run_time": when},
                "table": batch.table,
                "validation_time": when,
                **({"source_file": batch.source_file} if batch.source_file else {}),
            },
            "results": [o.to_gx_json() for o in outcomes],
            "statistics": {
                "evaluated_expectations": evaluated,
                "success_percent": successful / evaluated * 100 if evaluated else None,
                "successful_expectations": successful,
                "unsuccessful_expectations": evaluated - successful,
            },
            "success": successful == evaluated,
            "suite_name": batch.suite,
            "suite_parameters": {},
        }
        path = self.results.joinpath(
            *batch.suite.split("."), self.run_name, _run_time_key(self.run_time), f"{_safe(batch.batch)}.json"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2, sort_keys=True))
        self.stored.add(batch.suite)


@functools.cache
def _gx_version() -> str:
    """The installed GX's version, read from its metadata (no import; 4 ms, so once)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("great_expectations")
    except PackageNotFoundError:
        return "unknown"


def _landing_outcome(
    expectation: Mapping[str, Any],
    parameters: Mapping[str, Any] | None,
    columns: list[str],
    metrics: Mapping[str, int],
) -> _Outcome:
    """One landing expectation judged from the load's metrics, by GX's rules for its type."""
    kind = str(expectation.get("type"))
    given = dict(expectation.get("kwargs") or {})
    kwargs = {name: _parameter(value, parameters) for name, value in given.items()}
    config = {**expectation, "kwargs": kwargs}
    values = _parameters_of(given, parameters)
    if values and config.get("description"):  # Data Docs show the description alone
        config["description"] = f"{config['description']} ({values})"

    def unjudged(why: str) -> _Outcome:
        return _Outcome(config, False, {}, error=f"not checked: {why}", critical=True)

    if kind not in LANDING_EXPECTATIONS:
        return unjudged(
            f"the landing gate computes only {', '.join(LANDING_EXPECTATIONS)}; landing suites are"
            " generated from the layouts: run `python -m entitlements.quality.gates --write-suites`"
        )
    unknown = sorted(set(kwargs) - LANDING_EXPECTATIONS[kind])
    if unknown:
        return unjudged(f"the landing gate does not compute {kind} with {', '.join(unknown)}")
    missing = sorted(v["$PARAMETER"] for v in kwargs.values() if isinstance(v, Mapping) and "$PARAMETER" in v)
    if missing:
        return unjudged(f"suite parameter(s) {', '.join(missing)} not given")
    rows = metrics["rows"]
    try:
        if kind == ROW_COUNT_EQUAL:
            return _Outcome(config, rows == kwargs.get("value"), {"observed_value": rows})
        if kind == COLUMNS_MATCH:
            return _columns_outcome(config, kwargs, columns)
        if kind == ROW_COUNT_BETWEEN:
            return _Outcome(config, _between(rows, kwargs), {"observed_value": rows})
        column = kwargs.get("column")
        if column not in columns:  # GX's words for a column the batch lacks
            return _Outcome(
                config, False, {}, error=f'Error: The column "{column}" in BatchData does not exist.'
            )
        nonnull, distinct = metrics[f"nonnull:{column}"], metrics[f"distinct:{column}"]
        share = distinct / nonnull if nonnull else 0  # GX: 0 when the column has no non-null value
        return _Outcome(config, _between(share, kwargs), {"observed_value": share})
    except TypeError as exc:  # e.g. a bound that is not a number
        return _Outcome(config, False, {}, error=str(exc))


def _columns_outcome(config: dict[str, Any], kwargs: Mapping[str, Any], columns: list[str]) -> _Outcome:
    """GX's expect_table_columns_to_match_set: observed columns sorted, mismatches in details."""
    expected, present = set(kwargs.get("column_set") or []), set(columns)
    unexpected, missing = sorted(present - expected), sorted(expected - present)
    result: dict[str, Any] = {"observed_value": sorted(present)}
    if not unexpected and not missing:
        return _Outcome(config, True, result)
    mismatched = {"unexpected": unexpected} if unexpected else {}
    mismatched |= {"missing": missing} if missing else {}
    result["details"] = {"mismatched": mismatched}
    exact = kwargs.get("exact_match", True)  # GX's default
    return _Outcome(config, False if exact else not missing, result)  # GX: any falsy value is not exact


def _between(value: Any, kwargs: Mapping[str, Any]) -> bool:
    """GX's bounds: inclusive unless strict_min / strict_max; a missing bound is no bound."""
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    above = low is None or (value > low if kwargs.get("strict_min") else value >= low)
    below = high is None or (value < high if kwargs.get("strict_max") else value <= high)
    return bool(above and below)


# --------------------------------------------------------------------------- GX engine


def _build_context(results: Path) -> AbstractDataContext:
    """An in-memory GX context configured from the committed great_expectations.yml.

    Nothing is written into expectations/gx: suites are read from the committed JSON, validation
    results go to `results`, datasources, checkpoints and validation definitions stay in memory,
    and no Data Docs site is configured until build_data_docs names one.
    """
    from great_expectations.data_context.types.base import DataContextConfig

    config = _gx_config()
    stores = config["stores"]
    stores["expectations_store"]["store_backend"]["base_directory"] = str(SUITES_DIR)
    stores["validation_results_store"]["store_backend"]["base_directory"] = str(results)
    for name in ("checkpoint_store", "validation_definition_store"):
        stores[name]["store_backend"] = {"class_name": "InMemoryStoreBackend"}
    config["data_docs_sites"] = {}
    config.pop("config_variables_file_path", None)
    config.pop("plugins_directory", None)
    return _gx().get_context(mode="ephemeral", project_config=DataContextConfig(**config))


def _gx_config() -> dict[str, Any]:
    from ruamel.yaml import YAML

    return dict(YAML(typ="safe").load(GX_CONFIG.read_text()))


class _GxSession:
    """The process's GX context, kept for the results directory it stores into.

    Importing GX and building its context cost seconds, so the marts gate, the migration steps and
    build_data_docs of one process share one (``_gx_session``); a results directory of another
    warehouse replaces it, so at most one context is alive.
    """

    def __init__(self, results: Path) -> None:
        self.results = results
        self.ctx = _build_context(results)
        self.source = self.ctx.data_sources.add_pandas("gates")
        self._definitions: dict[str, Any] = {}

    def definition(self, table: str) -> Any:
        if table not in self._definitions:
            asset = self.source.add_dataframe_asset(table)
            self._definitions[table] = asset.add_batch_definition_whole_dataframe("whole_dataframe")
        return self._definitions[table]

    def release(self) -> None:
        """Forget the batches GX's pandas engine caches: it keeps every validated DataFrame otherwise."""
        manager = self.source.get_execution_engine().batch_manager
        manager.reset_batch_cache()
        manager.batch_data_cache.clear()


_SESSIONS: dict[Path, _GxSession] = {}  # at most one entry


def _gx_session(results: Path) -> _GxSession:
    if results not in _SESSIONS:
        _SESSIONS.clear()  # the previous context goes before the next is built
        _SESSIONS[results] = _GxSession(results)
    return _SESSIONS[results]


class _GxEngine:
    """Validates pandas batches against the committed suites with the process's GX context."""

    def __init__(self, session: _GxSession, run_id: str) -> None:
        from great_expectations.core.run_identifier import RunIdentifier

        self.session = session
        self.run = RunIdentifier(run_name=_safe(run_id), run_time=datetime.now(UTC))
        self._suites: dict[str, Any] = {}
        self.stored: set[str] = set()

    def suite(self, name: str) -> Any:
        if name not in self._suites:
            self._suites[name] = self.session.ctx.suites.get(name)
        return self._suites[name]

    def validate(self, batch: _Batch) -> list[CheckResult]:
        suite = self.suite(batch.suite)
        definition = self.session.definition(batch.table)
        gx_batch = definition.get_batch(batch_parameters={"dataframe": batch.frame})
        result = gx_batch.validate(
            suite,
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_ROWS * 4},
            expectation_parameters=batch.parameters,
        )
        # A result's kwargs carry the parameters' values where the suite has {"$PARAMETER": name}.
        order = {_config_key(e.configuration, batch.parameters): i for i, e in enumerate(suite.expectations)}
        given = {
            _config_key(e.configuration, batch.parameters): _parameters_of(
                e.configuration.kwargs, batch.parameters
            )
            for e in suite.expectations
        }
        for r in result.results:
            values = given.get(_config_key(r.expectation_config))
            if values and r.expectation_config.description:  # Data Docs show the description alone
                r.expectation_config.description += f" ({values})"
        self._store(batch, result)
        checks = sorted(
            result.results, key=lambda r: order.get(_config_key(r.expectation_config), len(order))
        )
        key_columns = list(suite.meta.get("key_columns") or [])
        return [_check_result(batch, key_columns, _Outcome.of_gx(r)) for r in checks]

    def _store(self, batch: _Batch, result: ExpectationSuiteValidationResult) -> None:
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
            ValidationResultIdentifier,
        )

        suite_id = ExpectationSuiteIdentifier(name=batch.suite)
        key = ValidationResultIdentifier(
            expectation_suite_identifier=suite_id, run_id=self.run, batch_identifier=_safe(batch.batch)
        )
        spec = dict(result.meta.get("batch_spec") or {})
        spec["data_asset_name"] = batch.label  # what Data Docs show as the data asset
        result.meta["batch_spec"] = spec
        result.meta["run_id"] = self.run
        result.meta["validation_time"] = self.run.run_time
        result.meta["batch_identifier"] = batch.batch
        result.meta["table"] = batch.table
        if batch.source_file:
            result.meta["source_file"] = batch.source_file
        self.session.ctx.validation_results_store.store_validation_results(
            suite_validation_result=result,
            suite_validation_result_identifier=key,
            expectation_suite_identifier=suite_id,
        )
        self.stored.add(batch.suite)


def _config_key(config: Any, parameters: Mapping[str, Any] | None = None) -> str:
    """Identifies an expectation of a suite in its result (GX adds batch_id to the result's kwargs
    and puts the parameters' values in place of {"$PARAMETER": name}: given, they are put there too)."""
    kwargs = {k: _parameter(v, parameters) for k, v in config.kwargs.items() if k != "batch_id"}
    return json.dumps([config.type, kwargs], sort_keys=True, default=str)


def _parameters_of(kwargs: Mapping[str, Any], parameters: Mapping[str, Any] | None) -> str:
    """The parameters an expectation was given, as 'name: value, ...' ('' for none)."""
    names = [v["$PARAMETER"] for v in kwargs.values() if isinstance(v, Mapping) and "$PARAMETER" in v]
    return ", ".join(f"{name}: {(parameters or {}).get(name)}" for name in names)


def _parameter(value: Any, parameters: Mapping[str, Any] | None) -> Any:
    if parameters and isinstance(value, Mapping) and value.get("$PARAMETER") in parameters:
        return parameters[value["$PARAMETER"]]
    return value


def _columns_of(kwargs: Mapping[str, Any]) -> list[str]:
    if kwargs.get("column"):
        return [kwargs["column"]]
    if kwargs.get("column_list"):
        return list(kwargs["column_list"])
    if kwargs.get("column_A"):
        return [kwargs["column_A"], kwargs["column_B"]]
    return []


def _exception_message(info: Any) -> str | None:
    """The first exception message in GX's (possibly per-metric nested) exception_info."""
    if isinstance(info, Mapping):
        if info.get("raised_exception"):
            return str(info.get("exception_message") or "exception")
        for value in info.values():
            found = _exception_message(value)
            if found:
                return found
    return None


def _check_result(batch: _Batch, key_columns: list[str], outcome: _Outcome) -> CheckResult:
    config = outcome.config
    kind = str(config.get("type"))
    kwargs = dict(config.get("kwargs") or {})
    columns = _columns_of(kwargs)
    result = outcome.result
    error = outcome.error
    success = outcome.success and not error
    sample = None
    if error:
        observed = f"error: {error}"
    elif kind == "expect_column_to_exist":
        observed = "column present" if success else "column missing"
    elif kind == COLUMNS_MATCH:
        expected, present = set(kwargs.get("column_set") or []), set(result.get("observed_value") or [])
        missing = sorted(expected - present)
        extra = sorted(present - expected) if kwargs.get("exact_match", True) else []
        problems = [f"missing columns: {', '.join(missing)}"] if missing else []
        problems += [f"unexpected columns: {', '.join(extra)}"] if extra else []
        observed = "; ".join(problems) or "all expected columns present"
        if problems:
            columns = [*missing, *extra]
    elif kind == ROW_COUNT_EQUAL and "observed_value" in result:
        rows, expected = result["observed_value"], kwargs.get("value")
        if batch.load_id:
            observed = (
                f"{rows} row(s) of load {batch.load_id} in {batch.table};"
                f" {MANIFEST}.row_count says {expected} landed"
            )
        else:
            observed = f"{rows} row(s), expected {expected}"
    elif kind.startswith("expect_table_row_count") and "observed_value" in result:
        observed = f"{result['observed_value']} row(s)"
    elif "unexpected_count" in result:
        observed = f"{result['unexpected_count']} of {result.get('element_count')} row(s) unexpected"
        if result.get("missing_count"):
            observed += f", {result['missing_count']} null row(s) ignored"
        if not success and batch.frame is not None:
            sample = _sample(batch, key_columns, columns, result.get("partial_unexpected_index_list") or [])
    elif "observed_value" in result:
        observed = _truncate(json.dumps(_plain(result["observed_value"]), default=str))
    else:
        observed = None
    critical = outcome.critical
    if critical is None:
        critical = bool((config.get("meta") or {}).get("critical", True))
    return CheckResult(
        step=batch.step,
        suite=batch.suite,
        table=batch.table,
        batch=batch.batch,
        expectation=kind,
        column=",".join(columns) or None,
        success=success,
        critical=critical,
        observed_value=observed,
        unexpected_sample=sample,
        description=config.get("description"),
    )


def _sample(batch: _Batch, key_columns: list[str], columns: list[str], index: Sequence[Any]) -> str | None:
    """A few bad rows: their key columns and the checked column(s)."""
    frame = batch.frame
    assert frame is not None
    shown = [c for c in dict.fromkeys([*key_columns, *columns]) if c in frame.columns]
    rows = []
    for label in list(index)[:SAMPLE_ROWS]:
        if label not in frame.index:
            continue
        row = frame.loc[label]
        rows.append({c: _render(row[c], batch.types.get(c)) for c in shown})
    return json.dumps(rows, default=str) if rows else None


def _render(value: Any, duck_type: str | None) -> Any:
    """A sample value as plain JSON: DATE columns as YYYY-MM-DD, nulls as null."""
    import pandas as pd

    if value is None or (
        not isinstance(value, str | bytes) and pd.api.types.is_scalar(value) and pd.isna(value)
    ):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        if duck_type == "DATE":
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    return _plain(value)


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        try:
            value = value.item()
        except (ValueError, TypeError):
            return str(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _truncate(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _gate_check(batch: _Batch, expectation: str, observed: str) -> CheckResult:
    """A critical failure the gate records itself (no table, no layout, no suite)."""
    return CheckResult(
        step=batch.step,
        suite=batch.suite,
        table=batch.table,
        batch=batch.batch,
        expectation=expectation,
        column=None,
        success=False,
        critical=True,
        observed_value=observed,
        unexpected_sample=None,
    )


# --------------------------------------------------------------------------- warehouse I/O


def _read(con: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any] = ()) -> tuple[Any, dict]:
    cursor = con.execute(query, list(params))
    types = {d[0]: str(d[1]) for d in cursor.description}
    return cursor.df(), types


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables"
        " where table_catalog = current_database() and table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return bool(row[0][0])


@dataclass(frozen=True)
class _Load:
    """A load's row of the manifest: what the landing gate needs of it."""

    load_id: str
    source_file: str
    table_name: str
    row_count: int | None
    superseded: bool


def _manifest_rows(con: duckdb.DuckDBPyConnection, load_ids: list[str] | None) -> list[_Load]:
    if not _table_exists(con, "audit", "ingest_manifest"):
        raise ValueError(f"{MANIFEST} does not exist in the warehouse: run ingest first")
    base = f"select load_id, source_file, table_name, row_count, superseded_by is not null from {MANIFEST}"
    if load_ids is None:
        rows = con.execute(
            f"{base} where status = ? and superseded_by is null order by loaded_at, load_id", [LANDED]
        ).fetchall()
    else:
        if not load_ids:
            return []
        marks = ", ".join("?" for _ in load_ids)
        rows = con.execute(f"{base} where load_id in ({marks})", list(load_ids)).fetchall()
        unknown = sorted(set(load_ids) - {r[0] for r in rows})
        if unknown:
            raise ValueError(f"load id(s) not in {MANIFEST}: {', '.join(unknown)}")
        position = {load_id: i for i, load_id in enumerate(load_ids)}
        rows.sort(key=lambda r: position[r[0]])
    return [
        _Load(str(load_id), str(source or ""), str(table), count, bool(superseded))
        for load_id, source, table, count, superseded in rows
    ]


def _landing_batch(con: duckdb.DuckDBPyConnection, load: _Load) -> _Batch:
    """One landed file, whose rows are in raw (a superseded load's in raw_superseded, where they wait)."""
    table = load.table_name.split(".")[-1]
    schema = SUPERSEDED_SCHEMA if load.superseded else "raw"
    batch = _Batch(
        step=LANDING,
        suite=f"{LANDING}.{table}",
        table=f"{schema}.{table}",
        batch=load.load_id,
        source_file=load.source_file,
        load_id=load.load_id,
        parameters={MANIFEST_ROW_COUNT: load.row_count},
    )
    if table not in LAYOUTS_BY_TABLE:
        batch.problem = _gate_check(
            batch, LAYOUT_EXISTS, f"no layout in entitlements/ingest/layouts.py for {table!r}"
        )
    elif not suite_path(batch.suite).exists():
        batch.problem = _gate_check(batch, SUITE_EXISTS, f"no suite {batch.suite}: run --write-suites")
    elif not _table_exists(con, schema, table):
        batch.problem = _gate_check(batch, TABLE_EXISTS, f"table {batch.table} not found")
    elif load.row_count is None:
        batch.problem = _gate_check(
            batch, ROW_COUNT_EQUAL, f"{MANIFEST} has no row_count for load {load.load_id}"
        )
    return batch


def _mart_batches(con: duckdb.DuckDBPyConnection) -> list[_Batch]:
    tables = {
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables"
            " where table_catalog = current_database() and table_schema = 'marts'"
        ).fetchall()
    }
    suites = committed_suites(MARTS)
    batches = []
    for name in sorted(suites):
        table = name.split(".", 1)[1]
        batch = _Batch(step=MARTS, suite=name, table=f"marts.{table}", batch=f"marts.{table}")
        if table in tables:
            batch.query = (f"select * from marts.{_ident(table)}", [])
        else:
            batch.problem = _gate_check(batch, TABLE_EXISTS, f"table marts.{table} not found")
        batches.append(batch)
    unguarded = sorted(tables - {n.split(".", 1)[1] for n in suites})
    if unguarded:
        log.info("marts without a suite (not validated): %s", ", ".join(unguarded))
    return batches


def _write(warehouse: Path, report: GateReport, validated_loads: Sequence[str] = ()) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        (
            report.run_id,
            r.step,
            r.suite,
            r.table,
            r.batch,
            r.expectation,
            r.column,
            r.success,
            r.critical,
            r.observed_value,
            r.unexpected_sample,
            now,
        )
        for r in report.results
    ]
    columns = ", ".join(DQ_COLUMNS)
    row_marks = "(" + ", ".join("?" for _ in DQ_COLUMNS) + ")"
    con = connect(warehouse)
    try:
        con.execute("begin")
        audit.ensure(con, "dq_results")
        # A few hundred rows at most (dbt's tests): one parameterised insert per chunk, no pandas.
        for start in range(0, len(rows), DQ_INSERT_ROWS):
            chunk = rows[start : start + DQ_INSERT_ROWS]
            con.execute(
                f"insert into {DQ_RESULTS} ({columns}) values {', '.join(row_marks for _ in chunk)}",
                [value for row in chunk for value in row],
            )
        if validated_loads:
            marks = ", ".join("?" for _ in validated_loads)
            con.execute(
                f"update {MANIFEST} set status = ? where status = ? and load_id in ({marks})",
                [VALIDATED, LANDED, *validated_loads],
            )
        con.execute("commit")
    except BaseException:
        with contextlib.suppress(Exception):
            con.execute("rollback")
        raise
    finally:
        con.close()


# --------------------------------------------------------------------------- the gates


def _report(step: str, run_id: str, batches: list[_Batch], results: list[CheckResult]) -> GateReport:
    """The gate's report: its engine's results and its own checks, in batch order (suite order within)."""
    results = [*results, *(b.problem for b in batches if b.problem is not None)]
    order = {b.batch: i for i, b in enumerate(batches)}
    results.sort(key=lambda r: order[r.batch])  # stable: suite order within a batch
    return GateReport(run_id=run_id, step=step, results=results)


def _validate_natively(
    con: duckdb.DuckDBPyConnection, batches: list[_Batch], run_id: str, results_path: Path
) -> list[CheckResult]:
    """The landing batches judged in DuckDB (_LandingEngine): no row read into Python, no GX import."""
    results: list[CheckResult] = []
    engine = _LandingEngine(con, run_id, results_path)
    # Counting a file's distinct keys takes DuckDB memory in proportion to them (8M keys: 0.9 GB):
    # capped, DuckDB spills to disk instead (beside the warehouse) and the process stays flat.
    previous = con.execute("select current_setting('memory_limit')").fetchall()[0]
    con.execute(f"set memory_limit = '{LANDING_MEMORY_LIMIT}'")
    try:
        for batch in batches:
            if batch.problem is None:
                started = time.perf_counter()
                results.extend(engine.validate(batch))
                log.debug("%s batch %s in %.3fs", batch.suite, batch.batch, time.perf_counter() - started)
    finally:
        if previous:  # a connection of the caller's may share the database instance
            con.execute(f"set memory_limit = '{previous[0]}'")
    _prune(results_path, engine.stored)
    return results


def _validate_with_gx(
    con: duckdb.DuckDBPyConnection, batches: list[_Batch], run_id: str, results_path: Path
) -> list[CheckResult]:
    """Each batch read as a DataFrame when its turn comes and dropped once validated."""
    results: list[CheckResult] = []
    to_validate = [b for b in batches if b.problem is None]
    if not to_validate:
        return results
    session = _gx_session(results_path)
    engine = _GxEngine(session, run_id)
    for batch in to_validate:
        started = time.perf_counter()
        assert batch.query is not None
        batch.frame, batch.types = _read(con, *batch.query)
        rows = len(batch.frame)
        try:
            results.extend(engine.validate(batch))
        finally:
            batch.frame = None
            session.release()
        log.debug(
            "%s batch %s: %d rows in %.3fs", batch.suite, batch.batch, rows, time.perf_counter() - started
        )
    _prune(results_path, engine.stored)
    return results


def validate_landing(warehouse: Path, load_ids: list[str] | None = None, *, run_id: str) -> GateReport:
    """Validate landed files (None: every current manifest row with status 'landed').

    One batch per load, judged in DuckDB with the load's manifest row_count as the suite parameter
    ``manifest_row_count``. Results are appended to audit.dq_results; the manifest
    rows of batches without a critical failure move to 'validated' (failing ones
    stay 'landed'). Raises GateFailure afterwards if any critical expectation failed.
    """
    started = time.perf_counter()
    con = connect(warehouse, read_only=True)
    try:
        batches = [_landing_batch(con, load) for load in _manifest_rows(con, load_ids)]
        results = _validate_natively(con, batches, run_id, results_dir(warehouse))
    finally:
        con.close()
    report = _report(LANDING, run_id, batches, results)
    failed = {r.batch for r in report.critical_failures}
    passed = [b.load_id for b in batches if b.load_id and b.batch not in failed]
    if batches:
        _write(Path(warehouse), report, passed)
    log.info("%s (%.2fs)", report.summary().splitlines()[0], time.perf_counter() - started)
    if report.critical_failures:
        raise GateFailure(report, {b.batch: b.source_file for b in batches if b.source_file})
    return report


def validate_marts(warehouse: Path, *, run_id: str) -> GateReport:
    """Validate every mart that has a suite (one batch per table in schema marts).

    A suite whose mart is missing is a critical failure. Results are appended to
    audit.dq_results; raises GateFailure afterwards if any critical expectation failed.
    """
    started = time.perf_counter()
    con = connect(warehouse, read_only=True)
    try:
        batches = _mart_batches(con)
        results = _validate_with_gx(con, batches, run_id, results_dir(warehouse))
    finally:
        con.close()
    report = _report(MARTS, run_id, batches, results)
    if batches:
        _write(Path(warehouse), report)
    log.info("%s (%.2fs)", report.summary().splitlines()[0], time.perf_counter() - started)
    if report.critical_failures:
        raise GateFailure(report)
    return report


def migration_step_name(step: str) -> str:
    """The step recorded in audit.dq_results for a migration step, e.g. 'migration.extract'."""
    return f"{MIGRATION}.{step}"


def _migration_batches(con: duckdb.DuckDBPyConnection, step: str, phase: str) -> list[_Batch]:
    """One batch per suite of the step: its table, restricted to the phase (suite meta phase_filter).

    phase_filter "in_phase": the table holds every record with a boolean in_phase; "phase": the
    table holds every validated phase's rows in a column phase; null: the table is the phase's.
    """
    batches = []
    for name, suite in committed_suites(f"{MIGRATION}/{step}").items():
        table = suite["meta"]["table"]
        schema, _, bare = table.partition(".")
        batch = _Batch(
            step=migration_step_name(step), suite=name, table=table, batch=f"{table} phase {phase}"
        )
        if not _table_exists(con, schema, bare):
            batch.problem = _gate_check(batch, TABLE_EXISTS, f"table {table} not found")
        else:
            where, params = {
                "in_phase": (" where in_phase", []),
                "phase": (" where phase = ?", [phase]),
            }.get(suite["meta"].get("phase_filter") or "", ("", []))
            batch.query = (f"select * from {schema}.{_ident(bare)}{where}", params)
        batches.append(batch)
    return batches


def validate_migration_step(
    warehouse: Path, step: str, *, phase: str, run_id: str, validated_loads: Sequence[str] = ()
) -> GateReport:
    """Validate one migration step (extract, map, load, reconcile) for a phase.

    One batch per suite under expectations/gx/expectations/migration/<step>/. Results are appended
    to audit.dq_results with step 'migration.<step>'; validated_loads (the legacy files the extract
    step landed) move to 'validated' when no critical expectation failed. Raises GateFailure
    afterwards if one did.
    """
    if step not in MIGRATION_STEPS:
        raise ValueError(f"unknown migration step {step!r}; steps: {', '.join(MIGRATION_STEPS)}")
    con = connect(warehouse, read_only=True)
    try:
        batches = _migration_batches(con, step, phase)
        results = _validate_with_gx(con, batches, run_id, results_dir(warehouse))
    finally:
        con.close()
    report = _report(migration_step_name(step), run_id, batches, results)
    _write(Path(warehouse), report, () if report.critical_failures else validated_loads)
    if report.critical_failures:
        raise GateFailure(report)
    return report


def record_gate_failure(
    warehouse: Path, *, run_id: str, step: str, suite: str, table: str, expectation: str, observed: str
) -> None:
    """Record a critical check the caller made itself (e.g. a file the ingest refused) in audit.dq_results."""
    batch = _Batch(step=step, suite=suite, table=table, batch=table)
    _write(
        Path(warehouse),
        GateReport(run_id=run_id, step=step, results=[_gate_check(batch, expectation, observed)]),
    )


def record_dbt_tests(
    warehouse: Path,
    run_id: str,
    results: Iterable[Mapping[str, Any]] | Path,
    manifest_path: Path,
) -> GateReport:
    """Record the data tests of a dbt command in audit.dq_results, in one transaction.

    results: the command's node results (``run_results.json``'s "results", or that file's path);
    manifest_path: the manifest.json of the same target, or the nodes.json a run's dbt child
    writes (entitlements.transform.dbt_child: the same shape, what is read here). One row per data
    test (models, seeds, unit tests and the rest are left out): step ``build``, suite ``dbt``,
    table_name the tested model as ``<schema>.<name>`` (a singular test's models, comma
    separated), batch the same,
    expectation the test's name, column_name its column (if any), success (status pass), critical
    (severity error), observed_value the failing rows or dbt's message. Nothing raises on a
    failed test: dbt's own exit status judges the build. Returns what was recorded.

    A ``column_rules`` test (a model's not_null, non_negative and positive columns in one query)
    is recorded as one row per rule and column, named as dbt names a single-column test,
    ``<rule>_<model>_<column>`` (``not_null_fct_leakage_kpis_fx_rate``), with the test's severity.
    When it failed or warned, its compiled query is run again on the warehouse (read-only; the
    caller records right after the command, under the run's lock, so the data is what dbt tested):
    its rows are the failing rule and column pairs with their failing rows. Any other outcome (an
    error, a skip) is every pair's.
    """
    if isinstance(results, Path):
        results = json.loads(results.read_text())["results"]
    manifest = json.loads(Path(manifest_path).read_text())
    nodes = manifest.get("nodes", {})
    relations = {**manifest.get("sources", {}), **nodes}
    tested_results = [
        (result, nodes[str(result.get("unique_id"))])
        for result in results
        if nodes.get(str(result.get("unique_id")), {}).get("resource_type") == "test"
    ]
    failing_pairs = _failing_column_rules(warehouse, tested_results)
    checks = []
    for result, node in tested_results:
        tested = [node["attached_node"]] if node.get("attached_node") else node["depends_on"]["nodes"]
        table = ", ".join(_relation(relations.get(unique_id), unique_id) for unique_id in tested)
        status = str(result.get("status"))
        critical = str(node.get("config", {}).get("severity", "error")).lower() == "error"

        # What every row recorded for this test shares.
        base = {
            "step": BUILD,
            "suite": DBT_SUITE,
            "table": table,
            "batch": table,
            "critical": critical,
            "unexpected_sample": None,
        }
        if (node.get("test_metadata") or {}).get("name") != COLUMN_RULES:
            checks.append(
                CheckResult(
                    **base,
                    expectation=node["name"],
                    column=node.get("column_name") or None,
                    success=status == "pass",
                    observed_value=_dbt_observed(status, result),
                )
            )
            continue
        model = (relations.get(node.get("attached_node") or "") or {}).get("name", table)
        found = failing_pairs.get(node["unique_id"])
        for rule, column in _column_rules(node):
            if status == "pass":
                success, observed = True, _dbt_observed(status, result)
            elif isinstance(found, dict):
                failures = found.get((rule, column), 0)
                success, observed = failures == 0, f"{failures} failing row(s)"
            else:  # an error, a skip, or failing rows that could not be read again
                success, observed = False, _dbt_observed(status, result) + (found or "")
            checks.append(
                CheckResult(
                    **base,
                    expectation=f"{rule}_{model}_{column}",
                    column=column,
                    success=success,
                    observed_value=_truncate(observed),
                )
            )
    report = GateReport(run_id=run_id, step=BUILD, results=checks)
    if checks:
        _write(Path(warehouse), report)
    log.info("%s", report.summary().splitlines()[0])
    return report


def _column_rules(node: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A column_rules test's (rule, column) pairs, in rule order, then in the order listed."""
    kwargs = (node.get("test_metadata") or {}).get("kwargs") or {}
    return [(rule, str(column)) for rule in COLUMN_RULE_NAMES for column in kwargs.get(rule) or []]


def _failing_column_rules(
    warehouse: Path, tested: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]
) -> dict[str, dict[tuple[str, str], int] | str]:
    """For each column_rules test that failed or warned: {(rule, column): failing rows}, read by
    running its compiled query again; or, when that cannot tell, why (appended to dbt's message)."""
    failed = [
        (result, node)
        for result, node in tested
        if (node.get("test_metadata") or {}).get("name") == COLUMN_RULES
        and str(result.get("status")) in ("fail", "warn")
    ]
    if not failed:
        return {}
    import duckdb

    found: dict[str, dict[tuple[str, str], int] | str] = {}
    con = connect(warehouse, read_only=True)
    try:
        for result, node in failed:
            sql = result.get("compiled_code") or node.get("compiled_code")
            if not sql:
                found[node["unique_id"]] = (
                    "; its compiled query is not in the results: which column failed is unknown"
                )
                continue
            try:
                rows = con.execute(
                    f"select rule_name, column_name, failures from ({sql}) as failing"
                ).fetchall()
            except duckdb.Error as exc:
                found[node["unique_id"]] = f"; running it again failed, which column failed is unknown: {exc}"
                continue
            pairs = {(str(rule), str(column)): int(failures) for rule, column, failures in rows}
            found[node["unique_id"]] = (
                pairs or "; running it again found no failing column: the warehouse changed since dbt ran"
            )
    finally:
        con.close()
    return found


def _relation(node: Mapping[str, Any] | None, unique_id: str) -> str:
    """A manifest node (model, seed, snapshot, source) as schema.name, e.g. marts.fct_revenue_leakage."""
    if not node:
        return unique_id
    name = node.get("alias") or node.get("identifier") or node.get("name")
    return f"{node.get('schema')}.{name}"


def _dbt_observed(status: str, result: Mapping[str, Any]) -> str:
    message = str(result.get("message") or "").strip()
    if status in ("pass", "fail", "warn"):
        failures = result.get("failures") or 0
        observed = f"{failures} failing row(s)"
        return f"{observed}: {message}" if status != "pass" and message else observed
    return _truncate(f"{status}: {message}" if message else status)


def data_docs_index(reports_dir: Path) -> Path:
    """The Data Docs' index page under a reports folder."""
    return Path(reports_dir).resolve() / "data_docs" / "index.html"


def build_data_docs(reports_dir: Path, warehouse: Path) -> Path:
    """Render GX Data Docs (every suite, the warehouse's kept results) under reports_dir/data_docs.

    Incremental: pages of results already rendered are kept, pages of results
    pruned from results_dir(warehouse) are deleted, suite pages and the index are rebuilt.
    Returns the path of index.html.
    """
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    site_dir = data_docs_index(reports_dir).parent
    site_dir.mkdir(parents=True, exist_ok=True)
    results = results_dir(warehouse)
    results.mkdir(parents=True, exist_ok=True)
    ctx = _gx_session(results).ctx  # the context the gates of this process used, if any
    sites = _gx_config().get("data_docs_sites") or {}
    for site in sites.values():
        site["store_backend"]["base_directory"] = str(site_dir)
    ctx.variables.data_docs_sites = sites
    pages = {
        site_dir.joinpath("validations", *key.to_tuple()).with_suffix(".html"): key
        for key in ctx.validation_results_store.list_keys()
    }
    validations = site_dir / "validations"
    if validations.exists():
        for page in validations.rglob("*.html"):
            if page not in pages:
                page.unlink()
        for folder in sorted(validations.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    steps = (LANDING, MARTS, *(f"{MIGRATION}/{step}" for step in MIGRATION_STEPS))
    suites = [ExpectationSuiteIdentifier(name=name) for step in steps for name in committed_suites(step)]
    new_results = [key for page, key in pages.items() if not page.exists()]
    try:
        ctx.build_data_docs(resource_identifiers=[*suites, *new_results])
    finally:
        ctx.variables.data_docs_sites = {}  # the next call may render elsewhere
    index = site_dir / "index.html"
    if not index.exists():
        raise RuntimeError(f"GX did not write {index}")
    return index


def data_docs_pages(reports_dir: Path, run_id: str) -> dict[str, str]:
    """Suite name -> the Data Docs page of its validation in run_id, relative to reports_dir.

    A suite the run did not validate links to its suite page. Empty until build_data_docs ran.
    """
    site = Path(reports_dir) / "data_docs"
    pages: dict[str, str] = {}
    for page in sorted((site / "expectations").rglob("*.html")):
        name = ".".join(page.relative_to(site / "expectations").with_suffix("").parts)
        pages[name] = page.relative_to(reports_dir).as_posix()
    for page in sorted((site / "validations").rglob(f"{_safe(run_id)}/*/*.html")):
        suite_dir = page.parent.parent.parent
        name = ".".join(suite_dir.relative_to(site / "validations").parts)
        pages[name] = page.relative_to(reports_dir).as_posix()
    return pages


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m entitlements.quality.gates", description=__doc__.splitlines()[0]
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--write-suites",
        action="store_true",
        help="write the landing suites generated from entitlements/ingest/layouts.py",
    )
    group.add_argument(
        "--check-suites", action="store_true", help="exit 1 if the committed landing suites are stale"
    )
    args = parser.parse_args(argv)
    if args.write_suites:
        for path in write_suites():
            print(path.relative_to(GX_DIR.parent.parent))
        return 0
    drift = suite_drift()
    for line in drift:
        print(line, file=sys.stderr)
    if drift:
        print(
            "run `python -m entitlements.quality.gates --write-suites` and commit the JSON", file=sys.stderr
        )
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
