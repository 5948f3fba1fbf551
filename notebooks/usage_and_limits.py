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
# # Usage and limits

# %%
from entitlements.reports import common, usage

# %% tags=["parameters"]
# as_of: ISO date, only periods that started on or before it (None = all the build measured).
# entitlement: one entitlement code, e.g. "API_CALLS" (None = all); currency: one currency (None = all).
# out_dir: set by the report runner; each table is also written as <report_name>_<table>.csv.
warehouse = "data/warehouse.duckdb"
as_of = None
entitlement = None
currency = None
out_dir = None
report_name = "usage"
# Set by the report runner for the page's header (computed here when None).
marts_version = None
built_as_of = None

# %%
common.setup_plotly()
con = common.open_warehouse(warehouse)
flt = usage.usage_filter(con, as_of=as_of, entitlement=entitlement, currency=currency)
tables = common.ReportTables(report_name, out_dir)
page = common.page_context(
    con, report_name, as_of=as_of, marts_version=marts_version, built_as_of=built_as_of
)

# %%
tables.headline(usage.headline(con, flt, page))

# %%
by_month = usage.crossings_by_month(con, flt)
tables.save(by_month, "crossings_by_month")
common.figure_or_note(by_month, usage.crossings_figure, "No period crossed a threshold.")

# %% [markdown]
# ## About this report
#
# Who hits their limits and who leaves them unused, from `marts.fct_allowance_periods` (every
# allowance period and its use), `marts.fct_limit_breaches` (periods that crossed 80 % of the limit
# in force that day) and `marts.fct_underused_entitlements`. Overage values are in each contract's
# currency: every total is per currency.

# %% [markdown]
# ## Thresholds crossed
#
# Per entitlement, the highest of 80, 90 and 100 % each period crossed; the overage (units used
# above the limit) valued at the price-book unit price, invoiced or not.

# %%
tables.show(usage.threshold_summary(con, flt), "threshold_summary", money=usage.USAGE_MONEY)

# %% [markdown]
# ## Limits reached
#
# The periods that reached 100 %, largest overage value first.

# %%
tables.show(usage.limit_reached(con, flt), "limit_reached", money=usage.USAGE_MONEY)

# %% [markdown]
# ## How much of their limits customers use
#
# Completed periods with a limit. Many periods near or over 100 % make upsell candidates (see the
# leakage explorer); many under 10 % make entitlements to review.

# %%
tables.show(usage.utilisation_summary(con, flt), "utilisation_summary")

# %%
periods = usage.utilisation(con, flt)
tables.save(periods, "utilisation")
common.figure_or_note(periods, usage.utilisation_figure, "No completed period with a limit.")

# %% [markdown]
# ## Underused entitlements
#
# Lines under 10 % of their limit over their last completed periods (dbt var `underuse_periods`).

# %%
tables.show(usage.underused(con, flt), "underused")

# %%
con.close()
