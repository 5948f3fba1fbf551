"""The `entitlements` command line. Thin: each command calls the library and reports.

Exit codes: 0 success, 1 a gate failed (bad data or a failed check), 2 bad usage.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from entitlements.warehouse import (
    DEFAULT_REPORTS,
    DEFAULT_WAREHOUSE,
    IncompleteBuildError,
    WarehouseLockedError,
)

warehouse_option = click.option(
    "--warehouse",
    type=click.Path(path_type=Path),
    default=DEFAULT_WAREHOUSE,
    show_default=True,
    help="DuckDB warehouse file.",
)
full_refresh_option = click.option(
    "--full-refresh",
    is_flag=True,
    help="Build every model from scratch, even when only usage loads changed or nothing did"
    " (docs/architecture.md, incremental builds).",
)
engine_option = click.option(
    "--engine",
    type=click.Choice(["duckdb", "spark"]),
    default="duckdb",
    show_default=True,
    help="Where dbt builds: duckdb (the warehouse) or spark (a local pyspark from the raw layer as"
    " Parquet; needs the spark extra and Java 17; docs/engines.md). The marts stay readable here"
    " either way.",
)
reports_option = click.option(
    "--reports",
    "reports_dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_REPORTS,
    show_default=True,
    help="Directory for HTML reports and GX Data Docs.",
)


class _ModuleDefault(click.Option):
    """An option whose default is a constant of another module, imported when the default is read (the
    command runs or shows its help): `entitlements check` starts without importing what only
    `migrate validate` needs (entitlements.runs.migration and the ingest behind it: about a second)."""

    def __init__(self, *args: Any, default_from: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._default_from = default_from

    @property  # type: ignore[override]
    def default(self) -> Any:
        if "_default_from" not in self.__dict__:  # click's own __init__ reading it
            return self.__dict__.get("_default")
        import importlib

        module, name = self._default_from.split(":")
        return getattr(importlib.import_module(module), name)

    @default.setter
    def default(self, value: Any) -> None:
        self.__dict__["_default"] = value


def _as_of_option(help_text: str):
    return click.option(
        "--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help=help_text
    )


def _ingest_options(func):
    """The options of `ingest` and `run` that say how to read an export (docs/ingest.md)."""
    options = [
        click.option(
            "--format",
            "file_format",
            default=None,
            help="Read every file as this family of shapes (canonical, salesforce, stripe, stripe_csv,"
            " cloudevents, metering); default: recognise each file by its name and header.",
        ),
        click.option(
            "--config",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help="The configuration file (default: entitlements.yml in EXPORT_DIR, if any;"
            " docs/configuration.md).",
        ),
        click.option(
            "--mapping",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help="Mapping file of source ids to codes (default: mapping.csv in EXPORT_DIR, if any).",
        ),
        click.option(
            "--max-rejected-share",
            type=click.FloatRange(0, 1),
            cls=_ModuleDefault,
            default_from="entitlements.ingest.land:DEFAULT_MAX_REJECTED_SHARE",
            show_default=True,
            help="Refuse a file whole when more than this share of its rows has problems.",
        ),
        click.option(
            "--quarantine-unmapped",
            is_flag=True,
            help="Put rows whose ids the mapping lacks in audit.rejected_rows instead of refusing the file.",
        ),
        click.option(
            "--rehash",
            is_flag=True,
            help="Read every file to checksum it, even one whose name, size and modification time match"
            " a file already landed (by default skipped unread).",
        ),
        click.option(
            "--encoding",
            default=None,
            callback=_check_encoding,
            help="The CSV files' encoding, e.g. cp1252 (default: UTF-8; a file no line of which is valid"
            " UTF-8 is read as latin-1, and the manifest says so).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _check_encoding(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """An encoding Python knows that keeps ASCII as ASCII (lines and delimiters are found bytewise)."""
    if value is None:
        return None
    import codecs

    try:
        name = codecs.lookup(value).name
    except LookupError:
        raise click.BadParameter(f"unknown encoding {value!r} (e.g. utf-8, latin-1, cp1252)") from None
    if '\n,;|"a'.encode(name, errors="replace") != b'\n,;|"a':
        raise click.BadParameter(f"{value}: only encodings that write ASCII as ASCII are read (not UTF-16)")
    return name


@contextlib.contextmanager
def _writing(warehouse: Path, command: str) -> Iterator[None]:
    """Hold the warehouse's run lock for the whole command (entitlements.runs.lock); say so when a
    lock left by a process that died was cleared."""
    from entitlements.runs.lock import run_lock

    notes: list[str] = []
    with run_lock(warehouse, command, notes):
        for note in notes:
            click.secho(f"note: {note}", fg="yellow", err=True)
        yield


def _to_date(value: datetime | None) -> date | None:
    return value.date() if value else None


def _fail(message: str) -> None:
    click.secho(message, fg="red", err=True)
    sys.exit(1)


class _Cli(click.Group):
    """Every command: a warehouse locked by another process, or whose last build did not finish, is a
    clear message and exit 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (WarehouseLockedError, IncompleteBuildError) as exc:
            click.secho(str(exc), fg="red", err=True)
            sys.exit(2)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Entitlement analytics: CRM, billing and usage exports -> checked marts and reports."""


@cli.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("data/exports"),
    show_default=True,
    help="Export directory to write.",
)
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed (same seed, same files).")
@click.option("--customers", type=click.IntRange(min=10), default=60, show_default=True)
@click.option(
    "--usage-events",
    type=click.IntRange(min=1000),
    default=100_000,
    show_default=True,
    help="Approximate number of metered usage events (scale to 10M for benchmarks).",
)
@_as_of_option("The export's as-of date (default 2026-10-31).")
@click.option(
    "--clean",
    is_flag=True,
    help="Plant no leakage and no migration faults (the pipeline must then find none).",
)
@click.option(
    "--shape",
    type=click.Choice(["canonical", "vendor"]),
    default="canonical",
    show_default=True,
    help="canonical: this project's layouts; vendor: Salesforce CSVs, Stripe JSON and CloudEvents, with the"
    " mapping.csv and entitlements.yml that read them.",
)
def demo(
    out: Path, seed: int, customers: int, usage_events: int, as_of: datetime | None, clean: bool, shape: str
) -> None:
    """Generate demo CRM, billing and usage exports with planted leakage and its ground truth."""
    from entitlements.demo import generate_demo
    from entitlements.demo.generator import DEFAULT_AS_OF

    try:
        summary = generate_demo(
            out,
            seed=seed,
            customers=customers,
            usage_events=usage_events,
            as_of=_to_date(as_of) or DEFAULT_AS_OF,
            plant_leaks=not clean,
            shape=shape,
        )
    except (ValueError, FileExistsError) as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(
        f"wrote {summary.files} files to {out}: {summary.customers} customers, "
        f"{summary.usage_events:,} usage events, {summary.leaks} planted leaks "
        f"(ground truth: {out / 'ground_truth' / 'leakage.csv'}), a legacy export with "
        f"{summary.migration_faults} planted migration faults"
        f" ({out / 'ground_truth' / 'migration_faults.csv'}), as of {summary.as_of}"
    )


def _resolve_as_of(as_of: datetime | None, export_dir: Path | None, warehouse: Path) -> date:
    from entitlements.runs.pipeline import export_as_of, recorded_as_of

    resolved = (
        _to_date(as_of) or (export_as_of(export_dir) if export_dir else None) or recorded_as_of(warehouse)
    )
    if resolved is None:
        raise click.UsageError(
            "no as-of date: pass --as-of YYYY-MM-DD (the export declares none in export.json)"
        )
    return resolved


@cli.command()
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@warehouse_option
@reports_option
@_as_of_option("Date the marts answer for (default: the export's export.json).")
@click.option(
    "--no-reports",
    is_flag=True,
    help="Stop after the mart checks: no Data Docs, no reports (later: `entitlements report all`).",
)
@full_refresh_option
@engine_option
@_ingest_options
def run(
    export_dir: Path,
    warehouse: Path,
    reports_dir: Path,
    as_of: datetime | None,
    no_reports: bool,
    full_refresh: bool,
    engine: str,
    **ingest_options: Any,
) -> None:
    """Ingest EXPORT_DIR, check it, build the marts, check them, write the reports."""
    from entitlements.runs.pipeline import PipelineError, run_pipeline
    from entitlements.runs.summary import print_summary

    as_of_date = _resolve_as_of(as_of, export_dir, warehouse)
    try:
        with _writing(warehouse, "run"):
            result = run_pipeline(
                export_dir,
                warehouse,
                None if no_reports else reports_dir,
                as_of_date,
                echo=click.echo,
                ingest_options=ingest_options,
                full_refresh=full_refresh,
                engine=engine,
            )
    except PipelineError as exc:
        _fail(str(exc))
    print_summary(warehouse, echo=click.echo)
    for report in result.reports:
        click.echo(f"report: {report}")


@cli.command()
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@warehouse_option
@_ingest_options
def ingest(export_dir: Path, warehouse: Path, **ingest_options: Any) -> None:
    """Land EXPORT_DIR's files in schema raw (no checks; `validate` runs them)."""
    from entitlements.runs.pipeline import PipelineError, ingest_step

    try:
        with _writing(warehouse, "ingest"):
            files = ingest_step(warehouse, export_dir, uuid.uuid4().hex[:12], ingest_options=ingest_options)
    except PipelineError as exc:
        _fail(str(exc))
    for f in files:
        rejected = f" ({f.rows_rejected:,} rejected)" if f.rows_rejected else ""
        line = f"{f.status:8} {f.rows:>10,} rows{rejected}  {f.table:24} {f.source_file}  {f.message}"
        click.echo(line.rstrip())


@cli.command()
@warehouse_option
@click.option("--step", type=click.Choice(["landing", "marts", "all"]), default="all", show_default=True)
@reports_option
def validate(warehouse: Path, step: str, reports_dir: Path) -> None:
    """Run the Great Expectations gates: landed files not yet validated, and/or the marts."""
    from entitlements.quality.gates import build_data_docs
    from entitlements.runs.pipeline import PipelineError, landing_step, marts_step

    run_id = uuid.uuid4().hex[:12]
    with _writing(warehouse, "validate"):
        try:
            if step in ("landing", "all"):
                click.echo(landing_step(warehouse, run_id).summary())
            if step in ("marts", "all"):
                click.echo(marts_step(warehouse, run_id).summary())
        except PipelineError as exc:
            _fail(str(exc))
        finally:
            click.echo(f"data docs: {build_data_docs(reports_dir, warehouse)}")


@cli.command()
@warehouse_option
@_as_of_option("Date the marts answer for (default: the warehouse's last build).")
@full_refresh_option
@engine_option
def build(warehouse: Path, as_of: datetime | None, full_refresh: bool, engine: str) -> None:
    """Build and test the dbt models (staging, intermediate, marts): what changed since the last build."""
    from entitlements.runs.pipeline import PipelineError, build_step

    as_of_date = _resolve_as_of(as_of, None, warehouse)
    try:
        with _writing(warehouse, "build"):
            plan = build_step(
                warehouse, uuid.uuid4().hex[:12], as_of_date, full_refresh=full_refresh, engine=engine
            )
    except PipelineError as exc:
        _fail(str(exc))
    if plan.mode == "skip":
        click.echo(f"dbt build skipped: {plan.reason} (as of {as_of_date})")
    else:
        click.echo(f"dbt build ok (as of {as_of_date}; {plan.mode}: {plan.reason})")


@cli.command()
@click.argument(
    "name", type=click.Choice(["leakage", "renewals", "usage", "migration", "all"]), default="all"
)
@warehouse_option
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_REPORTS, show_default=True)
@_as_of_option(
    "leakage and usage: only what occurred or started on or before it; renewals: must be the marts' own"
    " date (default: the marts' as-of)."
)
@click.option("--phase", default="all", show_default=True, help="migration: the phase to show.")
@click.option(
    "--force",
    is_flag=True,
    help="Render every report, also one whose page was rendered from these marts with these parameters.",
)
@click.option(
    "--pdf", is_flag=True, help="Also print each report to <report>.pdf for mail (needs Chromium installed)."
)
def report(
    name: str, warehouse: Path, out: Path, as_of: datetime | None, phase: str, force: bool, pdf: bool
) -> None:
    """Execute report notebooks against the warehouse (read-only) and write self-contained HTML + CSVs.

    A page rendered from the same content of the marts it reads, the same parameters and code is kept,
    also after a build that changed other marts (the migration report is always rendered). Exit 0
    when written or kept, 1 when a notebook failed, 2 on a bad parameter (an as-of the marts were not
    built for, say).
    """
    from entitlements.reports.render import REPORTS, ReportSession, chromium, write_index, write_pdf

    names = [n for n in REPORTS if name in (n, "all")]
    if pdf and chromium() is None:
        raise click.UsageError("--pdf needs Chromium: install it (Debian: `apt-get install chromium`)")
    with ReportSession(force=force) as session:  # one kernel for all of them
        for report_name in names:
            parameters: dict[str, Any] = {"phase": phase} if report_name == "migration" else {}
            if as_of and report_name != "migration":
                parameters["as_of"] = _to_date(as_of).isoformat()
            try:
                rendered = session.render(report_name, warehouse, out, parameters)
            except FileNotFoundError as exc:
                raise click.UsageError(str(exc)) from exc
            except Exception as exc:
                from papermill.exceptions import PapermillExecutionError  # late: slow to import

                if not isinstance(exc, PapermillExecutionError):
                    raise
                if exc.ename == "ValueError":  # the notebooks' way of refusing a parameter
                    raise click.UsageError(f"report {report_name}: {exc.evalue}") from exc
                if exc.ename in (WarehouseLockedError.__name__, IncompleteBuildError.__name__):
                    click.secho(f"report {report_name}: {exc.evalue}", fg="red", err=True)
                    sys.exit(2)
                _fail(f"report {report_name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}")
            if rendered.kept:
                click.echo(rendered.kept_note())
            click.echo(f"report: {rendered.path}")
            if pdf:
                try:
                    click.echo(f"pdf: {write_pdf(rendered.path)}")
                except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
                    _fail(f"report {report_name}: {exc}")
    click.echo(f"index: {write_index(out)}")


@cli.command()
@warehouse_option
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_REPORTS, show_default=True)
def docs(warehouse: Path, out: Path) -> None:
    """Write the dbt docs site (models, lineage, the notebooks and reports reading them) as one page."""
    from entitlements.reports.render import write_dbt_docs, write_index

    try:
        with _writing(warehouse, "docs"):
            click.echo(f"dbt docs: {write_dbt_docs(warehouse, out)}")
    except FileNotFoundError as exc:
        raise click.UsageError(str(exc)) from exc
    except RuntimeError as exc:
        _fail(str(exc))
    click.echo(f"index: {write_index(out)}")  # which now links the docs


@cli.group()
def migrate() -> None:
    """Validate the migration of legacy contracts into the new model (docs/migration.md)."""


@migrate.command("validate")
@click.argument("legacy_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@warehouse_option
@reports_option
@click.option(
    "--phase", default=None, help="Validate one phase of the migration plan (default: every account)."
)
@click.option(
    "--phases",
    "phases_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The migration plan (default: phases.yml in LEGACY_DIR).",
)
@_as_of_option("Date of the parallel run (default: the as-of date of the warehouse's last build).")
@click.option(
    "--max-fault-share",
    type=click.FloatRange(0, 1),
    cls=_ModuleDefault,
    default_from="entitlements.runs.migration:DEFAULT_MAX_FAULT_SHARE",
    show_default=True,
    help="A check failing for at least 3 records and more than this share of them stops its step"
    " (a systematic fault).",
)
@click.option(
    "--review-value",
    type=click.FloatRange(min=0),
    cls=_ModuleDefault,
    default_from="entitlements.runs.migration:DEFAULT_REVIEW_VALUE",
    show_default=True,
    help="Annual value (reporting currency) from which an account goes on the review list.",
)
@click.option(
    "--review-contracts",
    type=click.IntRange(min=1),
    cls=_ModuleDefault,
    default_from="entitlements.runs.migration:DEFAULT_REVIEW_MIN_CONTRACTS",
    show_default=True,
    help="Contracts from which an account goes on the review list.",
)
@click.option(
    "--no-report", is_flag=True, help="Skip the Data Docs and the HTML report (e.g. in automation)."
)
@engine_option
def migrate_validate(
    legacy_dir: Path,
    warehouse: Path,
    reports_dir: Path,
    phase: str | None,
    phases_file: Path | None,
    as_of: datetime | None,
    max_fault_share: float,
    review_value: float,
    review_contracts: int,
    no_report: bool,
    engine: str,
) -> None:
    """Extract, map, load and reconcile LEGACY_DIR against the warehouse's new model, each step checked.

    Exit 0 when every step passed (warnings are listed in the report), 1 when a step stopped the
    migration, 2 on bad usage (no such phase, an unusable plan, no new model in the warehouse).
    """
    from entitlements.runs.migration import (
        MigrationError,
        MigrationOptions,
        MigrationPlanError,
        summary_lines,
        validate_migration,
    )

    as_of_date = _resolve_as_of(as_of, None, warehouse)
    options = MigrationOptions(phase, phases_file, max_fault_share, review_value, review_contracts, engine)
    try:
        with _writing(warehouse, "migrate validate"):
            validate_migration(legacy_dir, warehouse, as_of_date, options, echo=click.echo)
    except MigrationPlanError as exc:
        raise click.UsageError(str(exc)) from exc
    except MigrationError as exc:
        click.secho(str(exc), fg="red", err=True)
        if not no_report:
            _write_migration_reports(warehouse, reports_dir, phase)
        sys.exit(1)
    for line in summary_lines(warehouse, phase or "all"):
        click.echo(line)
    if not no_report:
        _write_migration_reports(warehouse, reports_dir, phase)


def _write_migration_reports(warehouse: Path, reports_dir: Path, phase: str | None) -> None:
    """Data Docs and the migration report, after a validation that passed or stopped; a report that
    cannot be written is said, never raised over the validation's own outcome."""
    from entitlements.quality.gates import build_data_docs
    from entitlements.reports.render import render_report, write_index

    try:
        click.echo(f"data docs: {build_data_docs(reports_dir, warehouse)}")
        click.echo(f"report: {render_report('migration', warehouse, reports_dir, {'phase': phase or 'all'})}")
        click.echo(f"index: {write_index(reports_dir)}")
    except Exception as exc:  # the report is secondary to the validation's exit code and message
        click.secho(
            f"the migration report could not be written: {str(exc).splitlines()[0]}", fg="yellow", err=True
        )


@cli.command()
@warehouse_option
def summary(warehouse: Path) -> None:
    """Print leakage by category, renewals by window and limit breaches."""
    from entitlements.runs.summary import print_summary

    print_summary(warehouse, echo=click.echo)


@cli.command()
@click.option("--customer", "customer_id", required=True, help="Customer id.")
@click.option("--entitlement", "entitlement_code", required=True, help="Entitlement code, e.g. INCIDENT.")
@click.option("--asset", "asset_id", default=None, help="Asset the service is for.")
@click.option("--location", "location_id", default=None, help="Site the service is for.")
@click.option(
    "--on",
    "on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Date to check (default: the warehouse's as-of date).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@warehouse_option
def check(
    customer_id: str,
    entitlement_code: str,
    asset_id: str | None,
    location_id: str | None,
    on: datetime | None,
    as_json: bool,
    warehouse: Path,
) -> None:
    """Is this customer entitled to this service, on this asset, on this date, and why?

    Exit 0 when entitled, 1 when not, 2 on bad input. Reads the warehouse read-only.
    """
    from entitlements.serve.check import CheckInputError, check_entitlement

    try:
        answer = check_entitlement(
            warehouse, customer_id, entitlement_code, _to_date(on), asset_id=asset_id, location_id=location_id
        )
    except (CheckInputError, FileNotFoundError) as exc:
        click.secho(str(exc), fg="red", err=True)
        sys.exit(2)
    click.echo(answer.to_json() if as_json else answer.describe())
    sys.exit(0 if answer.entitled else 1)


@cli.command("check-batch")
@click.argument("requests", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Answers CSV to write (default: REQUESTS with .answers.csv).",
)
@warehouse_option
def check_batch_command(requests: Path, out: Path | None, warehouse: Path) -> None:
    """Answer a CSV of checks (customer_id, entitlement_code[, asset_id, location_id, on]) in one query.

    One answer row per request, in order, each the answer `check` gives; a request that cannot be
    answered (unknown customer or code, bad date) carries an `error` naming its line. Exit 0 when
    every row was answered, 1 when any row has an error, 2 when the file itself is unusable (a
    required column missing, a row with more or fewer fields than the header, not UTF-8: the
    message names the line and the column) or the warehouse unreadable. An answer's expires_on is
    the first day the winning grant no longer covers (its exclusive end; empty: no end date).
    """
    from entitlements.serve.check import CheckInputError, check_batch

    out = out or requests.with_suffix(".answers.csv")
    try:
        done = check_batch(warehouse, requests, out)
    except (CheckInputError, FileNotFoundError) as exc:
        click.secho(str(exc), fg="red", err=True)
        sys.exit(2)
    click.echo(
        f"{done.requests} requests: {done.entitled} entitled, {done.not_entitled} not entitled, "
        f"{done.errors} with errors -> {out}"
    )
    sys.exit(1 if done.errors else 0)


@cli.command("as-of")
@click.option(
    "--on", "on", type=click.DateTime(formats=["%Y-%m-%d"]), required=True, help="Date to answer for."
)
@click.option("--customer", "customer_id", default=None, help="Only this customer.")
@click.option(
    "--csv", "csv_path", type=click.Path(path_type=Path), default=None, help="Write the rows to a CSV."
)
@warehouse_option
def as_of_command(on: datetime, customer_id: str | None, csv_path: Path | None, warehouse: Path) -> None:
    """Active entitlements on any date: the same rows a rebuild with --as-of that date gives."""
    from entitlements.serve.accounts import resolve_account
    from entitlements.serve.asof import active_entitlements
    from entitlements.warehouse import connect_marts

    frame = active_entitlements(warehouse, on.date())
    if customer_id:
        con = connect_marts(warehouse)
        try:  # any id of the account (a billing id, a 15-character Salesforce id), as `check` takes
            account = resolve_account(con, customer_id)
        finally:
            con.close()
        if account is None:
            click.secho(
                f"unknown customer {customer_id!r}: no such account in {warehouse}", fg="red", err=True
            )
            sys.exit(2)
        frame = frame[frame["customer_id"] == account]
    if csv_path:
        from entitlements.serve.spreadsheet import safe_frame

        safe_frame(frame).to_csv(csv_path, index=False)
        click.echo(f"{len(frame)} active entitlements on {on.date()} written to {csv_path}")
    else:
        click.echo(frame.to_string(index=False))


@cli.command()
@click.option("--customer", "customer_id", required=True, help="Customer id.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="HTML file to write (default: data/reports/statement_<customer>.html).",
)
@click.option(
    "--on",
    "on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Statement date (default: the warehouse's as-of date).",
)
@warehouse_option
def statement(customer_id: str, out: Path | None, on: datetime | None, warehouse: Path) -> None:
    """Write a customer's entitlement statement: entitlements, usage, remaining allowance, renewals."""
    from entitlements.serve.check import CheckInputError
    from entitlements.serve.statement import write_statement

    target = out or DEFAULT_REPORTS / f"statement_{customer_id}.html"
    try:
        click.echo(f"statement: {write_statement(warehouse, customer_id, target, _to_date(on))}")
    except (CheckInputError, FileNotFoundError) as exc:
        click.secho(str(exc), fg="red", err=True)
        sys.exit(2)


@cli.command("check-config")
@click.argument("config_file", type=click.Path(dir_okay=False, path_type=Path))
def check_config(config_file: Path) -> None:
    """Validate a configuration file (docs/configuration.md): exit 0 when valid, 1 with every problem
    listed (file, line, key)."""
    from entitlements.config import ConfigError, describe, load_config

    try:
        config = load_config(config_file)
    except ConfigError as exc:
        _fail(str(exc))
    click.echo(f"{config_file}: valid")
    for line in describe(config):
        click.echo(f"  {line}")


@cli.command("check-catalog")
@click.argument("catalog_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def check_catalog(catalog_file: Path) -> None:
    """Validate a catalog file (see docs/catalog.md): exit 0 when valid, 1 with every problem listed."""
    from entitlements.ingest.catalog import validate_catalog

    _report_file_problems(catalog_file, validate_catalog(catalog_file))


@cli.command("check-price-book")
@click.argument("price_book_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def check_price_book(price_book_file: Path) -> None:
    """Validate a price book file (see docs/pricing.md): exit 0 when valid, 1 with every problem listed."""
    from entitlements.ingest.price_book import validate_price_book

    _report_file_problems(price_book_file, validate_price_book(price_book_file))


def _report_file_problems(path: Path, problems: Sequence[object]) -> None:
    """A checked file's problems, one a line on stderr, and exit 1; or say it is valid."""
    for problem in problems:
        click.secho(str(problem), fg="red", err=True)
    if problems:
        sys.exit(1)
    click.echo(f"{path}: valid")


def main() -> None:
    cli()
