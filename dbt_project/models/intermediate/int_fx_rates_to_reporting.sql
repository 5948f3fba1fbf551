-- Monthly average rate of each currency to the reporting currency (var reporting_currency),
-- from the seed fx_rates. The reporting currency itself converts at exactly 1 (see the macro
-- to_reporting_currency); any other month or currency without a row here converts to null.
with

fx_rates as (
    select * from {{ ref('fx_rates') }}
)

select
    {{ month_start('rate_month') }} as rate_month,
    from_currency as currency,
    to_currency as reporting_currency,
    rate as fx_rate
from fx_rates
where to_currency = '{{ var("reporting_currency") }}'
