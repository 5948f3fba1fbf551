-- A warning, one row per currency and month of the leakage KPIs with no rate to the reporting
-- currency: their *_reporting amounts are null (never converted at 0 or 1). Give the rates in
-- billing/fx_rates.csv (docs/currencies.md); the run summary names the same currencies.
{{ config(severity='warn') }}

select
    currency,
    period_month,
    reporting_currency
from {{ ref('fct_leakage_kpis') }}
where is_fx_rate_missing
