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
# # Revenue leakage explorer

# %%
from entitlements.reports import common, leakage

# %% tags=["parameters"]
# as_of: ISO date, only leaks that occurred on or before it (None = all).
# currency: e.g. "EUR" to look at one currency (None = all, each totalled on its own).
# customer, category: drill down to one customer and/or one leakage category (None = all).
# out_dir: set by the report runner; each table is also written as <report_name>_<table>.csv.
# top_n: rows per currency in the top-customer and largest-leak tables; evidence_limit: drill-down rows.
warehouse = "data/warehouse.duckdb"
as_of = None
currency = None
customer = None
category = None
out_dir = None
report_name = "leakage"
top_n = 10
evidence_limit = 200
# Set by the report runner for the page's header (computed here when None).
marts_version = None
built_as_of = None

# %%
common.setup_plotly()
con = common.open_warehouse(warehouse)
flt = leakage.leakage_filter(con, as_of=as_of, currency=currency, customer=customer, category=category)
tables = common.ReportTables(report_name, out_dir)
page = common.page_context(
    con, report_name, as_of=as_of, marts_version=marts_version, built_as_of=built_as_of
)

# %%
tables.headline(leakage.headline(con, flt, page))

# %%
category_totals = leakage.leakage_category_totals(con, flt)
common.figure_or_note(category_totals, leakage.category_totals_figure, "No leakage matches the filters.")

# %% [markdown]
# ## About this report
#
# Where the business delivered more than it billed, from `marts.fct_revenue_leakage`.
# Amounts are in each contract's currency, so every total is **per currency**: USD, EUR and GBP
# are never added together. Set `customer` and/or `category` to drill down: every section then
# narrows to that selection, down to the evidence rows.

# %% [markdown]
# ## Scope

# %%
leakage.scope_note(con, flt)

# %% [markdown]
# ## Totals per currency

# %%
currency_totals = leakage.leakage_currency_totals(con, flt)
tables.show(currency_totals, "currency_totals")

# %% [markdown]
# ## Key figures per currency
#
# From `marts.fct_leakage_kpis`: leakage as a share of the same currency's billed revenue, the value
# still recoverable (leaks within the billing window before the build's as-of date: dbt var
# `recoverable_billing_window_days`, default 90 days), and the share of billable records (customer-pay
# deliveries, contract-line billing periods, usage over the limit) that billing does not match. Only
# `leaked_total_reporting` is converted (illustrative rates unless the seed `fx_rates` was replaced), so
# only it may be added across currencies. Months, not customers: the drill-down filters do not apply here.

# %%
key_figures = leakage.leakage_key_figures(con, flt)
tables.show(key_figures, "key_figures", money=leakage.KPI_MONEY_COLUMNS)

# %% [markdown]
# ## By category
#
# The chart at the top: each currency has its own panel and axis.

# %%
tables.show(category_totals, "category_totals")

# %% [markdown]
# ## Trend by month and category

# %%
trend = leakage.leakage_monthly_trend(con, flt)
tables.save(trend, "monthly_trend")
common.figure_or_note(trend, leakage.monthly_trend_figure, "No leakage matches the filters.")

# %% [markdown]
# ## By entitlement

# %%
by_entitlement = leakage.leakage_by_entitlement(con, flt)
tables.show(by_entitlement, "entitlement_totals")

# %%
common.figure_or_note(by_entitlement, leakage.entitlement_totals_figure, "No leakage matches the filters.")

# %% [markdown]
# ## Top leaking customers per currency

# %%
top_customers = leakage.top_leaking_customers(con, flt, n=top_n)
tables.show(top_customers, "top_customers")

# %% [markdown]
# ## Largest leaks
#
# The biggest single leakage rows per currency, with the evidence that raised them and why.

# %%
leaks = leakage.largest_leaks(con, flt, n=top_n)
tables.show(leaks, "largest_leaks")

# %% [markdown]
# ## Drill-down: the evidence rows
#
# Every leak under the filters (newest first, up to `evidence_limit`): the case, work order, usage
# period, invoice line or override that proves it.

# %%
tables.show(leakage.evidence_rows(con, flt, limit=evidence_limit), "evidence_rows")

# %% [markdown]
# ## Override hotspots
#
# Where manual overrides cluster (`marts.fct_override_hotspots`): an entitlement or package that
# collects overrides needs its catalog terms reviewed; unapproved overrides are leakage.

# %%
hotspots = leakage.override_hotspots(con)
tables.show(hotspots, "override_hotspots", money=())

# %%
common.figure_or_note(hotspots, leakage.override_hotspots_figure, "No overrides.")

# %% [markdown]
# ## Upsell candidates
#
# Customers over 90 % of a limit in at least two of their last three periods
# (`marts.fct_upsell_candidates`), with the package that would cover their peak and the annual fee
# difference in the contract's currency.

# %%
tables.show(leakage.upsell_candidates(con, flt), "upsell_candidates", money=("annual_fee_difference",))

# %%
con.close()
