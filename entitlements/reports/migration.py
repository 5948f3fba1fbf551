"""The migration validation notebook's queries and figures (notebooks/migration_validation.py).

Everything reads the migration marts and audit tables for one phase (``all`` for the whole
migration); amounts stay in each contract's currency. The generic pieces (read-only open, tables,
offline plotly) are in entitlements.reports.common.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from entitlements.quality.gates import data_docs_pages
from entitlements.reports.common import PageContext, query, strip_facet_labels
from entitlements.reports.layout import (
    Figure,
    Headline,
    Value,
    count,
    count_value,
    money,
    notes,
    percent,
    percent_value,
)
from entitlements.warehouse import table_exists

STATUSES: tuple[str, ...] = ("matched", "changed", "duplicate", "missing_in_new", "unexpected_in_new")
STATUS_COLORS = {
    "matched": "#2e7d32",
    "changed": "#f9a825",
    "duplicate": "#6a1b9a",
    "missing_in_new": "#c62828",
    "unexpected_in_new": "#1565c0",
}
PARALLEL_STATUSES = ("matched", "limit_differs", "only_in_legacy", "only_in_new")
PARALLEL_COLORS = {
    "matched": "#2e7d32",
    "limit_differs": "#f9a825",
    "only_in_legacy": "#c62828",
    "only_in_new": "#1565c0",
}
CHECK_COLUMNS = ("step", "result", "suite", "expectation", "column_name", "observed_value", "data_docs")
MIGRATION_MONEY = ("legacy_value", "new_value", "value_difference", "matched_value", "annual_value_reporting")


def has_migration(con: duckdb.DuckDBPyConnection) -> bool:
    return table_exists(con, "audit", "migration_runs")


def _mart_query(con: duckdb.DuckDBPyConnection, table: str, sql: str, params: list) -> pd.DataFrame:
    """The query's rows; none when the mart does not exist yet (a warehouse never migrated)."""
    schema, _, name = table.partition(".")
    if not table_exists(con, schema, name):
        return pd.DataFrame()
    return query(con, sql, params)


def runs(con: duckdb.DuckDBPyConnection, phase: str) -> pd.DataFrame:
    """The phase's validation runs, newest first."""
    return query(
        con,
        "select run_id, status, stopped_at_step, as_of_date, finished_at, legacy_dir, message"
        " from audit.migration_runs where phase = ? order by finished_at desc",
        [phase],
    )


def latest_run(con: duckdb.DuckDBPyConnection, phase: str) -> dict | None:
    frame = runs(con, phase)
    return None if frame.empty else frame.iloc[0].to_dict()


def results_run(con: duckdb.DuckDBPyConnection, phase: str) -> str | None:
    """The run whose reconciliation the marts hold for the phase (the latest that reached reconcile)."""
    if not table_exists(con, "marts", "fct_migration_reconciliation"):
        return None
    row = con.execute(
        "select max(run_id) from marts.fct_migration_reconciliation where phase = ?", [phase]
    ).fetchone()
    return row[0] if row else None


def status_note(latest: dict | None, phase: str, shown_run: str | None) -> str:
    """Markdown: the phase's latest validation, and which run the reconciliation shown comes from."""
    if latest is None:
        return f"**Phase `{phase}` has not been validated yet**: run `entitlements migrate validate`."
    when = f"{latest['finished_at']:%Y-%m-%d %H:%M} UTC"
    if latest["status"] == "ok":
        return (
            f"Phase **{phase}**, run `{latest['run_id']}` ({when}): **every step passed**. Parallel run as of"
            f" {latest['as_of_date']:%Y-%m-%d}; legacy export `{latest['legacy_dir']}`."
        )
    return (
        f"Phase **{phase}**, run `{latest['run_id']}` ({when}):"
        f" **stopped at step {latest['stopped_at_step']}**."
        f" The reconciliation below is from run `{shown_run or 'none'}`.\n\n```\n{latest['message']}\n```"
    )


def plan(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The migration plan's phases with their accounts and each phase's latest validation."""
    if not table_exists(con, "audit", "migration_phases"):
        return pd.DataFrame()
    return query(
        con,
        """
        with latest as (
            select phase, status, stopped_at_step, finished_at,
                row_number() over (partition by phase order by finished_at desc) as n
            from audit.migration_runs
        )
        select p.position, p.phase, p.description, p.rule, p.accounts,
            coalesce(l.status, 'not validated') as latest_status, l.stopped_at_step, l.finished_at
        from audit.migration_phases p left join latest l on l.phase = p.phase and l.n = 1
        order by p.position
        """,
    )


def step_checks(con: duckdb.DuckDBPyConnection, run_id: str, reports_dir: Path | None) -> pd.DataFrame:
    """Every check of a run, step by step, with the Data Docs page of its suite's validation."""
    frame = _mart_query(
        con,
        "audit.dq_results",
        """
        select replace(step, 'migration.', '') as step, suite, expectation, column_name, success, critical,
            observed_value, unexpected_sample
        from audit.dq_results where run_id = ? and step like 'migration.%'
        order by case replace(step, 'migration.', '')
            when 'extract' then 1 when 'map' then 2 when 'load' then 3 else 4 end, suite, expectation
        """,
        [run_id],
    )
    if frame.empty:
        return pd.DataFrame(columns=[*CHECK_COLUMNS, "success", "critical", "unexpected_sample"])
    pages = data_docs_pages(reports_dir, run_id) if reports_dir else {}
    frame["data_docs"] = frame["suite"].map(lambda s: pages.get(s, ""))
    frame["result"] = [
        "passed" if ok else ("CRITICAL" if critical else "warning")
        for ok, critical in zip(frame["success"], frame["critical"], strict=True)
    ]
    return frame


def failing_checks(checks: pd.DataFrame) -> pd.DataFrame:
    """The checks that did not pass, critical first."""
    if checks.empty:
        return pd.DataFrame(columns=list(CHECK_COLUMNS))
    failing = checks[~checks["success"].astype(bool)]
    return failing.sort_values("critical", ascending=False, kind="stable")[list(CHECK_COLUMNS)]


def step_summary(checks: pd.DataFrame) -> pd.DataFrame:
    """Per step: checks run, passed, warnings and critical failures."""
    if checks.empty:
        return pd.DataFrame(columns=["step", "checks", "passed", "warnings", "critical_failures"])
    grouped = checks.groupby("step", sort=False)
    return pd.DataFrame(
        {
            "checks": grouped.size(),
            "passed": grouped["success"].sum().astype(int),
            "warnings": grouped.apply(lambda g: int((~g.success & ~g.critical).sum()), include_groups=False),
            "critical_failures": grouped.apply(
                lambda g: int((~g.success & g.critical).sum()), include_groups=False
            ),
        }
    ).reset_index()


def status_counts(con: duckdb.DuckDBPyConnection, phase: str) -> pd.DataFrame:
    frame = _mart_query(
        con,
        "marts.fct_migration_reconciliation",
        "select status, count(*) as contracts from marts.fct_migration_reconciliation where phase = ?"
        " group by status",
        [phase],
    )
    if frame.empty:
        return frame
    order = {s: i for i, s in enumerate(STATUSES)}
    return frame.sort_values("status", key=lambda s: s.map(order)).reset_index(drop=True)


def value_reconciled(con: duckdb.DuckDBPyConnection, phase: str) -> pd.DataFrame:
    """Per currency: legacy contract value, the part that arrived unchanged, and the net difference."""
    return _mart_query(
        con,
        "marts.fct_migration_reconciliation",
        """
        select currency,
            count(*) filter (where legacy_contract_id is not null) as legacy_contracts,
            sum(legacy_value) as legacy_value,
            coalesce(sum(legacy_value) filter (where status = 'matched'), 0) as matched_value,
            round(100.0 * coalesce(sum(legacy_value) filter (where status = 'matched'), 0)
                / nullif(sum(legacy_value), 0), 1) as matched_pct,
            coalesce(sum(value_difference), 0) as value_difference
        from marts.fct_migration_reconciliation where phase = ?
        group by currency order by currency
        """,
        [phase],
    )


def open_items(con: duckdb.DuckDBPyConnection, phase: str) -> pd.DataFrame:
    """Every contract that did not arrive intact, with its reason."""
    return _mart_query(
        con,
        "marts.fct_migration_reconciliation",
        """
        select status, legacy_contract_id, new_contract_id, customer_id, currency, reason,
            legacy_value, new_value, value_difference
        from marts.fct_migration_reconciliation where phase = ? and status <> 'matched'
        order by status, coalesce(legacy_contract_id, new_contract_id)
        """,
        [phase],
    )


def field_differences(con: duckdb.DuckDBPyConnection, phase: str) -> pd.DataFrame:
    return _mart_query(
        con,
        "marts.fct_migration_differences",
        """
        select legacy_contract_id, new_contract_id, customer_id, field, segment_no, legacy_value, new_value,
            reason
        from marts.fct_migration_differences where phase = ?
        order by field, legacy_contract_id, segment_no
        """,
        [phase],
    )


def parallel_run_by_entitlement(con: duckdb.DuckDBPyConnection, phase: str) -> pd.DataFrame:
    return _mart_query(
        con,
        "marts.fct_migration_parallel_run",
        "select entitlement_code, status, count(*) as entitlements from marts.fct_migration_parallel_run"
        " where phase = ? group by all order by entitlement_code, status",
        [phase],
    )


def parallel_run_differences(con: duckdb.DuckDBPyConnection, phase: str) -> pd.DataFrame:
    return _mart_query(
        con,
        "marts.fct_migration_parallel_run",
        """
        select customer_id, entitlement_code, asset_id, location_id, status,
            case when legacy_is_unlimited then 'unlimited' else cast(legacy_limit_quantity as varchar) end
                as legacy_limit,
            case when new_is_unlimited then 'unlimited' else cast(new_limit_quantity as varchar) end
                as new_limit,
            legacy_contract_ids, new_contract_ids, as_of_date
        from marts.fct_migration_parallel_run where phase = ? and status <> 'matched'
        order by customer_id, entitlement_code
        """,
        [phase],
    )


def review_list(con: duckdb.DuckDBPyConnection, phase: str) -> pd.DataFrame:
    return _mart_query(
        con,
        "marts.fct_migration_review_list",
        """
        select customer_id, currencies, contracts, locations, annual_value_reporting, reporting_currency,
            open_differences, review_reasons
        from marts.fct_migration_review_list where phase = ?
        order by annual_value_reporting desc, customer_id
        """,
        [phase],
    )


def status_figure(counts: pd.DataFrame) -> go.Figure:
    fig = px.bar(
        counts,
        x="status",
        y="contracts",
        color="status",
        color_discrete_map=STATUS_COLORS,
        text="contracts",
        title="Contracts by reconciliation status",
    )
    fig.update_layout(showlegend=False, xaxis_title=None, yaxis_title="contracts")
    return fig


def value_figure(values: pd.DataFrame) -> go.Figure:
    """Matched against total legacy value, one bar pair per currency (each currency its own axis scale)."""
    long = values.melt(
        id_vars="currency",
        value_vars=["legacy_value", "matched_value"],
        var_name="measure",
        value_name="amount",
    )
    fig = px.bar(
        long,
        x="measure",
        y="amount",
        color="measure",
        facet_col="currency",
        barmode="group",
        title="Legacy contract value and the value that arrived unchanged, per currency",
    )
    fig.update_yaxes(matches=None, showticklabels=True)
    fig.update_layout(showlegend=False)
    return strip_facet_labels(fig)


def parallel_run_figure(by_entitlement: pd.DataFrame) -> go.Figure:
    fig = px.bar(
        by_entitlement,
        x="entitlement_code",
        y="entitlements",
        color="status",
        color_discrete_map=PARALLEL_COLORS,
        category_orders={"status": list(PARALLEL_STATUSES)},
        title="Parallel run: legacy and new entitlements on the run's date, per entitlement",
    )
    fig.update_layout(xaxis_title=None, yaxis_title="customer and scope rows")
    return fig


# --------------------------------------------------------------------------- the headline

STEPS: tuple[str, ...] = ("extract", "map", "load", "reconcile")


def headline(
    con: duckdb.DuckDBPyConnection, latest: dict | None, checks: pd.DataFrame, phase: str, page: PageContext
) -> Headline:
    """Did each step pass (its checks: critical failures, warnings), how many contracts and how much value
    arrived intact, and how many accounts need a sign-off by hand."""
    values = []
    for step in STEPS:
        mine = checks[checks["step"] == step] if not checks.empty else checks
        if mine.empty:
            values.append(Value("step_result", f"{step}: not run", "not_run", item=step))
            continue
        critical = int((~mine["success"].astype(bool) & mine["critical"].astype(bool)).sum())
        warnings = int((~mine["success"].astype(bool) & ~mine["critical"].astype(bool)).sum())
        result = "failed" if critical else ("warnings" if warnings else "passed")
        text = {
            "failed": f"{step}: FAILED",
            "warnings": f"{step}: passed, {count(warnings, 'warning')}",
            "passed": f"{step}: passed",
        }[result]
        note = f"{count(critical, 'critical failure')}" if critical else count(len(mine), "check")
        values.append(Value("step_result", text, result, note=note, item=step))
    results = {v.raw for v in values}
    tone = "bad" if results & {"failed", "not_run"} else ("warn" if "warnings" in results else "good")
    contracts = _mart_query(
        con,
        "marts.fct_migration_reconciliation",
        "select count(*) filter (where status = 'matched') as matched, count(*) as contracts"
        " from marts.fct_migration_reconciliation where phase = ?",
        [phase],
    )
    matched, total = (int(contracts.iloc[0, 0]), int(contracts.iloc[0, 1])) if not contracts.empty else (0, 0)
    by_currency = (
        con.execute(
            "select currency, coalesce(sum(legacy_value) filter (where status = 'matched'), 0),"
            " sum(legacy_value)"
            " from marts.fct_migration_reconciliation where phase = ? group by currency order by currency",
            [phase],
        ).fetchall()
        if total
        else []
    )
    review = _mart_query(
        con,
        "marts.fct_migration_review_list",
        "select count(*) as accounts from marts.fct_migration_review_list where phase = ?",
        [phase],
    )
    accounts = int(review.iloc[0, 0]) if not review.empty else 0
    figures = (
        Figure(
            "Did each step pass?",
            tuple(values),
            "Critical checks stop the migration at their step; warnings list records to fix.",
            tone,
            wide=True,
        ),
        Figure(
            "Contracts arrived intact",
            (
                count_value(
                    "contracts_matched",
                    matched,
                    "contract",
                    note=notes(f"of {total:,}", percent(matched, total)),
                ),
            ),
            "Matched field by field; every other contract is listed below with its reason.",
            "good" if total and matched == total else "warn",
        ),
        Figure(
            "Value arrived unchanged",
            tuple(
                percent_value("matched_value_pct", m, v, cur, f"of {money(v, cur)}")
                for cur, m, v in by_currency
            ),
            "Legacy contract value whose contracts arrived unchanged, per currency.",
        ),
        Figure(
            "Accounts to sign off by hand",
            (count_value("review_accounts", accounts, "account"),),
            "High value or complex: reviewed before cut-over.",
            "warn" if accounts else "good",
        ),
    )
    run = f"run {latest['run_id']}" if latest else "not validated yet"
    lead = f"Phase {phase}: did every legacy contract arrive intact in the new model, step by step?"
    as_of = latest["as_of_date"] if latest else page.as_of
    return Headline(page.report, page.title, as_of, page.marts_version, lead, figures, extra_meta=(run,))
