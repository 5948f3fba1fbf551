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
# # Renewals: what renews when, and the value at risk

# %%
from entitlements.reports import common, renewals

# %% tags=["parameters"]
# as_of: None, or the marts' as-of date (a report for another date needs `entitlements build --as-of`).
# currency: e.g. "EUR" to look at one currency (None = all, each totalled on its own).
# out_dir: set by the report runner; each table is also written as <report_name>_<table>.csv.
warehouse = "data/warehouse.duckdb"
as_of = None
currency = None
out_dir = None
report_name = "renewals"
# Set by the report runner for the page's header (computed here when None).
marts_version = None
built_as_of = None

# %%
common.setup_plotly()
con = common.open_warehouse(warehouse)
flt = renewals.renewal_filter(con, as_of=as_of, currency=currency)
tables = common.ReportTables(report_name, out_dir)
page = common.page_context(
    con, report_name, as_of=as_of, marts_version=marts_version, built_as_of=built_as_of
)

# %%
tables.headline(renewals.headline(con, flt, page))

# %%
by_window = renewals.pipeline_by_window(con, flt)
common.figure_or_note(by_window, renewals.value_at_risk_figure, "No contracts in the pipeline.")

# %% [markdown]
# ## About this report
#
# From `marts.fct_renewal_pipeline` and `marts.fct_renewal_alerts`, measured from the build's as-of
# date. A contract's window counts the days to its end: 0-30, 31-60, 61-90, later; `renewed` when a
# signed successor names it, `expired_not_renewed` when it ended without one (a missed renewal).
# **Value at risk** is the annual value of contracts ending within 90 days (or already ended) that
# are neither renewed nor auto-renewing. Amounts are in each contract's currency: every total is
# per currency.

# %% [markdown]
# ## Per currency
#
# As of the marts' date: contracts and annual value ending in the next 90 days, the value at risk,
# missed renewals and renewed contracts.

# %%
tables.show(renewals.currency_summary(con, flt), "currency_summary", money=renewals.RENEWAL_MONEY)

# %% [markdown]
# ## The pipeline by window

# %%
tables.show(by_window, "pipeline_by_window", money=renewals.RENEWAL_MONEY)

# %%
common.figure_or_note(by_window, renewals.pipeline_figure, "No contracts in the pipeline.")

# %% [markdown]
# ## Renewing in the next 90 days
#
# Soonest first; `value_at_risk` is 0 for auto-renewing contracts.

# %%
tables.show(renewals.upcoming_renewals(con, flt), "upcoming_renewals", money=renewals.RENEWAL_MONEY)

# %% [markdown]
# ## Missed renewals
#
# Ended without a signed successor (within the dbt var `renewal_lookback_days`, default 365).

# %%
tables.show(renewals.missed_renewals(con, flt), "missed_renewals", money=renewals.RENEWAL_MONEY)

# %% [markdown]
# ## Uplift on renewal
#
# Against the previous term, in the same currency only (a term renewed in another currency has no
# uplift: see `uplift_null_reason` in the mart).

# %%
tables.show(renewals.uplift(con, flt), "uplift", money=renewals.RENEWAL_MONEY)

# %% [markdown]
# ## Alerts due
#
# The 90, 60 and 30-day alerts due on the as-of date, and those missed (the contract ended unrenewed).

# %%
tables.show(renewals.alerts_due(con, flt), "alerts_due", money=renewals.RENEWAL_MONEY)

# %%
con.close()
