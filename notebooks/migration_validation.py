# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: entitlements (.venv)
#     language: python
#     name: entitlements
# ---

# %% [markdown] tags=["notebook_only"]
# # Legacy migration validation

# %%
from IPython.display import Markdown, display

from entitlements.reports import common, migration

# %% tags=["parameters"]
# phase: the phase of the migration plan to show ("all": the whole migration).
# out_dir: set by the report runner; each table is also written as <report_name>_<table>.csv, and
# the Data Docs links are relative to it.
warehouse = "data/warehouse.duckdb"
phase = "all"
out_dir = None
report_name = "migration"
# Set by the report runner for the page's header (computed here when None).
marts_version = None
built_as_of = None

# %%
common.setup_plotly()
con = common.open_warehouse(warehouse)
tables = common.ReportTables(report_name, out_dir)
latest = migration.latest_run(con, phase) if migration.has_migration(con) else None
shown_run = migration.results_run(con, phase)
checks = migration.step_checks(con, latest["run_id"] if latest else "", out_dir)
counts = migration.status_counts(con, phase)
page = common.page_context(con, report_name, marts_version=marts_version, built_as_of=built_as_of)

# %%
tables.headline(migration.headline(con, latest, checks, phase, page))

# %%
common.figure_or_note(counts, migration.status_figure, "No reconciliation for this phase yet.")

# %% [markdown]
# ## About this report
#
# Did every legacy contract arrive intact in the new model? From `entitlements migrate validate`:
# each step's checks (extract, map, load, reconcile), the reconciliation contract by contract
# (`marts.fct_migration_reconciliation`), the field differences, the parallel run of both systems'
# entitlements on one date, and the accounts that need a manual sign-off before cut-over.
# Amounts are in each contract's currency and are never added across currencies.

# %% [markdown]
# ## Scope and status

# %%
display(Markdown(migration.status_note(latest, phase, shown_run)))

# %% [markdown]
# ## The migration plan
#
# Each phase is a subset of accounts; an account belongs to the first phase that takes it, so the
# phases add up to the whole.

# %%
tables.show(migration.plan(con), "plan", wrap=("description", "rule"))

# %% [markdown]
# ## Checks, step by step
#
# Critical checks stop the migration at their step; warnings list records to fix, each also in the
# reconciliation. Each row links to its validation in the Great Expectations Data Docs
# ([all suites](data_docs/index.html)).

# %%
tables.show(migration.step_summary(checks), "step_summary")

# %%
failing = migration.failing_checks(checks)
tables.show(failing, "failing_checks", links={"data_docs": "Data Docs"}, wrap=("observed_value",))

# %% [markdown]
# ## Reconciliation: contracts by status

# %%
tables.show(counts, "status_counts")

# %% [markdown]
# ## Value reconciled per currency
#
# `legacy_value`: the legacy contracts' value over their terms (annual price x months / 12);
# `matched_value`: the part whose contracts arrived unchanged; `value_difference`: new minus legacy
# over the contracts compared.

# %%
values = migration.value_reconciled(con, phase)
tables.show(values, "value_reconciled", money=migration.MIGRATION_MONEY)

# %%
common.figure_or_note(values, migration.value_figure, "No reconciliation for this phase yet.")

# %% [markdown]
# ## What did not arrive intact
#
# Every contract not matched, with its reason; the field differences follow.

# %%
tables.show(migration.open_items(con, phase), "open_items", money=migration.MIGRATION_MONEY, wrap=("reason",))

# %%
tables.show(migration.field_differences(con, phase), "field_differences", wrap=("reason",))

# %% [markdown]
# ## Parallel run
#
# What the legacy system (the allowances it stored) and the new model (catalog and contract lines)
# entitle each customer to on the run's date, per entitlement and scope.

# %%
by_entitlement = migration.parallel_run_by_entitlement(con, phase)
tables.save(by_entitlement, "parallel_run_by_entitlement")
common.figure_or_note(by_entitlement, migration.parallel_run_figure, "No parallel run for this phase yet.")

# %%
tables.show(migration.parallel_run_differences(con, phase), "parallel_run_differences")

# %% [markdown]
# ## Review list: accounts to sign off by hand before cut-over
#
# High value (annual legacy value in the reporting currency at or above `--review-value`) or complex
# (at least `--review-contracts` contracts, or contracts at several sites).

# %%
tables.show(migration.review_list(con, phase), "review_list", money=migration.MIGRATION_MONEY)

# %%
con.close()
