"""Data-quality gates: what no row check sees, per landed file and per mart; dbt's test results.

The pipeline calls only the public functions here (``validate_landing``,
``validate_marts``, ``validate_migration_step``, ``record_dbt_tests``,
``record_gate_failure``, ``build_data_docs``) and reads ``GateReport`` / ``GateFailure``.
Everything that touches Great Expectations stays inside this module, so a native DuckDB
engine can replace it later without the callers noticing.

Each rule has one owner (docs/architecture.md, "Where each rule lives"):

- the ingest's row checks type every value and reject a row with a missing required value, a
  value outside its enumeration, a negative value the layout forbids, an end before its start,
  or a duplicated key; nothing here checks those again;
- a landing suite (``landing.<table>``) checks what no single row shows, per landed file: its
  rows in raw are the rows the manifest says landed (``audit.ingest_manifest.row_count``, passed
  to GX as the suite parameter ``manifest_row_count``), the raw table has exactly the layout's
  columns and the lineage columns, and warnings on volumes (a file that landed no row, an
  at-least-once feed that repeats most of its ids);
- dbt data tests and enforced contracts own a mart's invariants; a mart suite
  (``marts.<table>``) holds only what dbt does not test (distributions, cross-column sanity,
  warnings shown in Data Docs); ``record_dbt_tests`` records the build's dbt test results in
  ``audit.dq_results`` (step ``build``, suite ``dbt``) beside the suites' results.

How a gate runs
    1. Read each batch through a READ-ONLY DuckDB connection: one landed file
       (``raw.<table> where _load_id = X``), one mart table, or one migration
       step's table restricted to the phase being validated, one batch at a
       time, as a pandas DataFrame. GX's SQL datasource returns empty results
       on DuckDB (GX issues #10738, #11579), hence pandas.
    2. Validate each batch against its suite (``landing.<table>`` or
       ``marts.<table>``, JSON under expectations/gx/expectations/) with a GX
       pandas datasource in an in-memory context built from
       expectations/gx/great_expectations.yml; a landed file's manifest row count is
       given as an expectation parameter.
    3. Close the read-only connection, then append one row per expectation to
       ``audit.dq_results`` (and, for landing, move passing manifest rows to
       'validated') through a normal connection.
    4. Raise ``GateFailure`` if any expectation whose meta says
       ``{"critical": true}`` failed.

GX validation results are also kept (newest ``KEEP_RUNS`` runs per suite) in
``results_dir(warehouse)`` so ``build_data_docs`` can show them; that directory is
beside the warehouse (``<dir>/gx/<warehouse name>/validations``, like dbt's target),
so the Data Docs of one warehouse never show another's runs, and can be moved with the
environment variable ``ENTITLEMENTS_GX_RESULTS_DIR``.

Landing suites are generated from entitlements/ingest/layouts.py (``landing_suites()``) and
committed as JSON; ``python -m entitlements.quality.gates --write-suites`` rewrites them
and a test keeps the committed files equal to the generated ones. Mart suites are written by
hand; migration suites belong to the migration's steps.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
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
        lines = [head]
        for r in failures:
            level = "CRITICAL" if r.critical else "warning"
            batch = "" if r.batch == r.table else f" batch {r.batch}"
            column = f" on {r.column}" if r.column else ""
            lines.append(
                f"  [{level}] {r.suite}{batch}: {r.expectation}{column} ({r.observed_value or 'failed'})"
            )
        return "\n".join(lines)


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


# --------------------------------------------------------------------------- GX engine


def results_dir(warehouse: Path) -> Path:
    """Where the GX validation results of a warehouse are kept for its Data Docs."""
    if os.environ.get(RESULTS_DIR_ENV):
        return Path(os.environ[RESULTS_DIR_ENV])
    warehouse = Path(warehouse).resolve()
    return warehouse.parent / "gx" / warehouse.stem / "validations"


def _context(results: Path, *, site_dir: Path | None = None) -> AbstractDataContext:
    """An in-memory GX context configured from the committed great_expectations.yml.

    Nothing is written into expectations/gx: suites are read from the committed
    JSON, validation results go to `results`, datasources, checkpoints and
    validation definitions stay in memory, and the Data Docs site (if asked for)
    goes to site_dir.
    """
    from great_expectations.data_context.types.base import DataContextConfig
    from ruamel.yaml import YAML

    config = YAML(typ="safe").load(GX_CONFIG.read_text())
    stores = config["stores"]
    stores["expectations_store"]["store_backend"]["base_directory"] = str(SUITES_DIR)
    stores["validation_results_store"]["store_backend"]["base_directory"] = str(results)
    for name in ("checkpoint_store", "validation_definition_store"):
        stores[name]["store_backend"] = {"class_name": "InMemoryStoreBackend"}
    sites = config.get("data_docs_sites") or {}
    if site_dir is None:
        sites = {}
    else:
        for site in sites.values():
            site["store_backend"]["base_directory"] = str(site_dir)
    config["data_docs_sites"] = sites
    config.pop("config_variables_file_path", None)
    config.pop("plugins_directory", None)
    return _gx().get_context(mode="ephemeral", project_config=DataContextConfig(**config))


@dataclass
class _Batch:
    step: str
    suite: str
    table: str  # qualified
    batch: str
    frame: pd.DataFrame | None  # None: nothing to read (the gate's own check fails instead)
    types: dict[str, str]  # DuckDB type per column, for rendering sample values
    source_file: str | None = None
    load_id: str | None = None
    problem: CheckResult | None = None  # set when the batch could not be read
    parameters: dict[str, Any] | None = None  # the suite's parameters ($PARAMETER) for this batch


def _safe(name: str) -> str:
    """A store-key-safe form of a run or batch id (they become file names)."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name) or "_"


class _GxEngine:
    """Validates pandas batches against the committed suites with one in-memory GX context."""

    def __init__(self, run_id: str, results: Path) -> None:
        from great_expectations.core.run_identifier import RunIdentifier

        self.results = results
        self.ctx = _context(results)
        self.source = self.ctx.data_sources.add_pandas("gates")
        self.run = RunIdentifier(run_name=_safe(run_id), run_time=datetime.now(UTC))
        self._definitions: dict[str, Any] = {}
        self._suites: dict[str, Any] = {}
        self.stored: set[str] = set()

    def suite(self, name: str) -> Any:
        if name not in self._suites:
            self._suites[name] = self.ctx.suites.get(name)
        return self._suites[name]

    def _definition(self, table: str) -> Any:
        if table not in self._definitions:
            asset = self.source.add_dataframe_asset(table)
            self._definitions[table] = asset.add_batch_definition_whole_dataframe("whole_dataframe")
        return self._definitions[table]

    def validate(self, batch: _Batch) -> list[CheckResult]:
        suite = self.suite(batch.suite)
        gx_batch = self._definition(batch.table).get_batch(batch_parameters={"dataframe": batch.frame})
        result = gx_batch.validate(
            suite,
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_ROWS * 4},
            expectation_parameters=batch.parameters,
        )
        # A result's kwargs carry the parameters' values where the suite has {"$PARAMETER": name}.
        order = {_config_key(e.configuration, batch.parameters): i for i, e in enumerate(suite.expectations)}
        given = {
            _config_key(e.configuration, batch.parameters): _parameters_of(e.configuration, batch.parameters)
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
        return [_check_result(batch, key_columns, r) for r in checks]

    def _store(self, batch: _Batch, result: ExpectationSuiteValidationResult) -> None:
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
            ValidationResultIdentifier,
        )

        suite_id = ExpectationSuiteIdentifier(name=batch.suite)
        key = ValidationResultIdentifier(
            expectation_suite_identifier=suite_id, run_id=self.run, batch_identifier=_safe(batch.batch)
        )
        label = batch.table if batch.batch == batch.table else f"{batch.table}, load {batch.batch}"
        if batch.source_file:
            label += f", file {batch.source_file}"
        spec = dict(result.meta.get("batch_spec") or {})
        spec["data_asset_name"] = label  # what Data Docs show as the data asset
        result.meta["batch_spec"] = spec
        result.meta["run_id"] = self.run
        result.meta["validation_time"] = self.run.run_time
        result.meta["batch_identifier"] = batch.batch
        result.meta["table"] = batch.table
        if batch.source_file:
            result.meta["source_file"] = batch.source_file
        self.ctx.validation_results_store.store_validation_results(
            suite_validation_result=result,
            suite_validation_result_identifier=key,
            expectation_suite_identifier=suite_id,
        )
        self.stored.add(batch.suite)

    def prune(self) -> None:
        for name in self.stored:
            _prune_results(self.results.joinpath(*name.split(".")), KEEP_RUNS)


def _prune_results(suite_dir: Path, keep: int) -> None:
    """Keep the newest ``keep`` runs of a suite (<suite dirs>/<run_name>/<run_time>/<batch>.json)."""
    runs = [p for run in suite_dir.iterdir() if run.is_dir() for p in run.iterdir() if p.is_dir()]
    runs.sort(key=lambda p: p.name, reverse=True)  # run_time dirs: %Y%m%dT%H%M%S.%fZ sorts by time
    for old in runs[keep:]:
        shutil.rmtree(old, ignore_errors=True)
        if not any(old.parent.iterdir()):
            old.parent.rmdir()


def _config_key(config: Any, parameters: Mapping[str, Any] | None = None) -> str:
    """Identifies an expectation of a suite in its result (GX adds batch_id to the result's kwargs
    and puts the parameters' values in place of {"$PARAMETER": name}: given, they are put there too)."""
    kwargs = {k: _parameter(v, parameters) for k, v in config.kwargs.items() if k != "batch_id"}
    return json.dumps([config.type, kwargs], sort_keys=True, default=str)


def _parameters_of(config: Any, parameters: Mapping[str, Any] | None) -> str:
    """The parameters an expectation was given, as 'name: value, ...' ('' for none)."""
    names = [v["$PARAMETER"] for v in config.kwargs.values() if isinstance(v, Mapping) and "$PARAMETER" in v]
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


def _check_result(batch: _Batch, key_columns: list[str], r: Any) -> CheckResult:
    config = r.expectation_config
    kwargs = dict(config.kwargs)
    columns = _columns_of(kwargs)
    result = dict(r.result or {})
    error = _exception_message(r.exception_info)
    success = bool(r.success) and not error
    sample = None
    if error:
        observed = f"error: {error}"
    elif config.type == "expect_column_to_exist":
        observed = "column present" if success else "column missing"
    elif config.type == "expect_table_columns_to_match_set":
        expected, present = set(kwargs.get("column_set") or []), set(result.get("observed_value") or [])
        missing = sorted(expected - present)
        extra = sorted(present - expected) if kwargs.get("exact_match", True) else []
        problems = [f"missing columns: {', '.join(missing)}"] if missing else []
        problems += [f"unexpected columns: {', '.join(extra)}"] if extra else []
        observed = "; ".join(problems) or "all expected columns present"
        if problems:
            columns = [*missing, *extra]
    elif config.type == "expect_table_row_count_to_equal" and "observed_value" in result:
        rows, expected = result["observed_value"], kwargs.get("value")
        if batch.load_id:
            observed = (
                f"{rows} row(s) of load {batch.load_id} in {batch.table};"
                f" {MANIFEST}.row_count says {expected} landed"
            )
        else:
            observed = f"{rows} row(s), expected {expected}"
    elif config.type.startswith("expect_table_row_count") and "observed_value" in result:
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
    meta = config.meta or {}
    return CheckResult(
        step=batch.step,
        suite=batch.suite,
        table=batch.table,
        batch=batch.batch,
        expectation=config.type,
        column=",".join(columns) or None,
        success=success,
        critical=bool(meta.get("critical", True)),
        observed_value=observed,
        unexpected_sample=sample,
        description=config.description,
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
    ).fetchone()
    return bool(row and row[0])


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
    """One landed file: its rows in raw (a superseded load's in raw_superseded, where they wait)."""
    table = load.table_name.split(".")[-1]
    schema = SUPERSEDED_SCHEMA if load.superseded else "raw"
    batch = _Batch(
        step=LANDING,
        suite=f"{LANDING}.{table}",
        table=f"{schema}.{table}",
        batch=load.load_id,
        frame=None,
        types={},
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
            batch, "expect_table_row_count_to_equal", f"{MANIFEST} has no row_count for load {load.load_id}"
        )
    else:
        batch.frame, batch.types = _read(
            con, f'select * from {schema}."{table}" where _load_id = ?', [load.load_id]
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
        batch = _Batch(
            step=MARTS, suite=name, table=f"marts.{table}", batch=f"marts.{table}", frame=None, types={}
        )
        if table in tables:
            batch.frame, batch.types = _read(con, f'select * from marts."{table}"')
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
    con = connect(warehouse)
    try:
        con.execute("begin")
        audit.ensure(con, "dq_results")
        if rows:
            import pandas as pd

            con.register("_dq_rows", pd.DataFrame(rows, columns=list(DQ_COLUMNS), dtype=object))
            casts = ", ".join(f"{name}::{type_}" for name, type_ in DQ_COLUMNS.items())
            con.execute(f"insert into {DQ_RESULTS} select {casts} from _dq_rows")
            con.unregister("_dq_rows")
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


def _run(step: str, batches: list[_Batch], run_id: str, results_path: Path) -> GateReport:
    results: list[CheckResult] = []
    to_validate = [b for b in batches if b.problem is None]
    if to_validate:
        engine = _GxEngine(run_id, results_path)
        for batch in to_validate:
            started = time.perf_counter()
            results.extend(engine.validate(batch))
            log.debug(
                "%s %s batch %s: %d rows in %.3fs",
                step,
                batch.suite,
                batch.batch,
                len(batch.frame) if batch.frame is not None else 0,
                time.perf_counter() - started,
            )
        engine.prune()
    results.extend(b.problem for b in batches if b.problem is not None)
    order = {b.batch: i for i, b in enumerate(batches)}
    results.sort(key=lambda r: order[r.batch])  # stable: suite order within a batch
    return GateReport(run_id=run_id, step=step, results=results)


def validate_landing(warehouse: Path, load_ids: list[str] | None = None, *, run_id: str) -> GateReport:
    """Validate landed files (None: every current manifest row with status 'landed').

    One batch per load, validated with the load's manifest row_count as the suite parameter
    ``manifest_row_count``. Results are appended to audit.dq_results; the manifest
    rows of batches without a critical failure move to 'validated' (failing ones
    stay 'landed'). Raises GateFailure afterwards if any critical expectation failed.
    """
    started = time.perf_counter()
    con = connect(warehouse, read_only=True)
    try:
        batches = [_landing_batch(con, load) for load in _manifest_rows(con, load_ids)]
    finally:
        con.close()
    report = _run(LANDING, batches, run_id, results_dir(warehouse))
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
    finally:
        con.close()
    report = _run(MARTS, batches, run_id, results_dir(warehouse))
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
            step=migration_step_name(step),
            suite=name,
            table=table,
            batch=f"{table} phase {phase}",
            frame=None,
            types={},
        )
        if not _table_exists(con, schema, bare):
            batch.problem = _gate_check(batch, TABLE_EXISTS, f"table {table} not found")
        else:
            where, params = {
                "in_phase": (" where in_phase", []),
                "phase": (" where phase = ?", [phase]),
            }.get(suite["meta"].get("phase_filter") or "", ("", []))
            batch.frame, batch.types = _read(con, f'select * from {schema}."{bare}"{where}', params)
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
    finally:
        con.close()
    report = _run(migration_step_name(step), batches, run_id, results_dir(warehouse))
    _write(Path(warehouse), report, () if report.critical_failures else validated_loads)
    if report.critical_failures:
        raise GateFailure(report)
    return report


def record_gate_failure(
    warehouse: Path, *, run_id: str, step: str, suite: str, table: str, expectation: str, observed: str
) -> None:
    """Record a critical check the caller made itself (e.g. a file the ingest refused) in audit.dq_results."""
    batch = _Batch(step=step, suite=suite, table=table, batch=table, frame=None, types={})
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
    manifest_path: the manifest.json of the same target. One row per data test (models, seeds,
    unit tests and the rest are left out): step ``build``, suite ``dbt``, table_name the tested
    model as ``<schema>.<name>`` (a singular test's models, comma separated), batch the same,
    expectation the test's name, column_name its column (if any), success (status pass), critical
    (severity error), observed_value the failing rows or dbt's message. Nothing raises on a
    failed test: dbt's own exit status judges the build. Returns what was recorded.
    """
    if isinstance(results, Path):
        results = json.loads(results.read_text())["results"]
    manifest = json.loads(Path(manifest_path).read_text())
    nodes = manifest.get("nodes", {})
    relations = {**manifest.get("sources", {}), **nodes}
    checks = []
    for result in results:
        node = nodes.get(str(result.get("unique_id")))
        if not node or node.get("resource_type") != "test":
            continue
        tested = [node["attached_node"]] if node.get("attached_node") else node["depends_on"]["nodes"]
        table = ", ".join(_relation(relations.get(unique_id), unique_id) for unique_id in tested)
        status = str(result.get("status"))
        checks.append(
            CheckResult(
                step=BUILD,
                suite=DBT_SUITE,
                table=table,
                batch=table,
                expectation=node["name"],
                column=node.get("column_name") or None,
                success=status == "pass",
                critical=str(node.get("config", {}).get("severity", "error")).lower() == "error",
                observed_value=_dbt_observed(status, result),
                unexpected_sample=None,
            )
        )
    report = GateReport(run_id=run_id, step=BUILD, results=checks)
    if checks:
        _write(Path(warehouse), report)
    log.info("%s", report.summary().splitlines()[0])
    return report


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


def build_data_docs(reports_dir: Path, warehouse: Path) -> Path:
    """Render GX Data Docs (every suite, the warehouse's kept results) under reports_dir/data_docs.

    Incremental: pages of results already rendered are kept, pages of results
    pruned from results_dir(warehouse) are deleted, suite pages and the index are rebuilt.
    Returns the path of index.html.
    """
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    site_dir = Path(reports_dir).resolve() / "data_docs"
    site_dir.mkdir(parents=True, exist_ok=True)
    results = results_dir(warehouse)
    results.mkdir(parents=True, exist_ok=True)
    ctx = _context(results, site_dir=site_dir)
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
    ctx.build_data_docs(resource_identifiers=[*suites, *new_results])
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
