-- Monthly average rate of each currency to the reporting currency (var reporting_currency):
-- the user's rates file (stg_billing__fx_rates) when any rate is landed, else the seed fx_rates.
-- Never a mix: a currency the user's file lacks gets no rate, not an illustrative one. The
-- reporting currency itself converts at exactly 1 (see the macro to_reporting_currency); any
-- other month or currency without a row here, or with a rate of 0, converts to null.
with

landed_rates as (
    select
        rate_month,
        from_currency,
        to_currency,
        rate
    from {{ ref('stg_billing__fx_rates') }}
),

seed_rates as (
    select
        rate_month,
        from_currency,
        to_currency,
        rate
    from {{ ref('fx_rates') }}
    where not exists (select 1 from landed_rates)
),

fx_rates as (
    select * from landed_rates
    union all
    select * from seed_rates
)

select
    {{ month_start('rate_month') }} as rate_month,
    from_currency as currency,
    to_currency as reporting_currency,
    rate as fx_rate
from fx_rates
where
    to_currency = '{{ var("reporting_currency") }}'
    and rate > 0
