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

# %% [markdown]
# # Revenue leakage explorer
#
# Where the business delivered more than it billed, from `marts.fct_revenue_leakage`.
# Amounts are in each contract's currency, so every total is **per currency**: USD, EUR and GBP
# are never added together.

# %%
from entitlements import analysis

# %% tags=["parameters"]
# as_of: ISO date, only leaks that occurred on or before it (None = all).
# currency: e.g. "EUR" to look at one currency (None = all, each totalled on its own).
# out_dir: set by the report runner; each table is also written as <report_name>_<table>.csv.
# top_n: rows per currency in the top-customer and largest-leak tables.
warehouse = "data/warehouse.duckdb"
as_of = None
currency = None
out_dir = None
report_name = "leakage"
top_n = 10

# %%
analysis.setup_plotly()
con = analysis.open_warehouse(warehouse)
flt = analysis.leakage_filter(con, as_of=as_of, currency=currency)
tables = analysis.ReportTables(report_name, out_dir)

# %% [markdown]
# ## Scope

# %%
analysis.scope_note(con, flt)

# %% [markdown]
# ## Totals per currency

# %%
currency_totals = analysis.leakage_currency_totals(con, flt)
tables.show(currency_totals, "currency_totals")

# %% [markdown]
# ## Key figures per currency
#
# From `marts.fct_leakage_kpis`: leakage as a share of the same currency's billed revenue, the value
# still recoverable (leaks within the billing window before the build's as-of date: dbt var
# `recoverable_billing_window_days`, default 90 days), and the share of billable records (customer-pay
# deliveries, contract-line billing periods, usage over the limit) that billing does not match. Only
# `leaked_total_reporting` is converted (illustrative rates unless the seed `fx_rates` was replaced), so
# only it may be added across currencies.

# %%
key_figures = analysis.leakage_key_figures(con, flt)
tables.show(key_figures, "key_figures", money=analysis.KPI_MONEY_COLUMNS)

# %% [markdown]
# ## By category
#
# Each currency has its own panel and axis.

# %%
category_totals = analysis.leakage_category_totals(con, flt)
tables.show(category_totals, "category_totals")

# %%
analysis.figure_or_note(category_totals, analysis.category_totals_figure)

# %% [markdown]
# ## Trend by month and category

# %%
trend = analysis.leakage_monthly_trend(con, flt)
tables.save(trend, "monthly_trend")
analysis.figure_or_note(trend, analysis.monthly_trend_figure)

# %% [markdown]
# ## Top leaking customers per currency

# %%
top_customers = analysis.top_leaking_customers(con, flt, n=top_n)
tables.show(top_customers, "top_customers")

# %% [markdown]
# ## Largest leaks: the evidence
#
# The biggest single leakage rows per currency, with the evidence that raised them and why.

# %%
leaks = analysis.largest_leaks(con, flt, n=top_n)
tables.show(leaks, "largest_leaks")

# %%
con.close()
