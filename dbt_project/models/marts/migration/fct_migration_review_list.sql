-- Accounts of each validated phase that need a manual sign-off before cut-over: high value (the
-- legacy annual value in force on the parallel run's date, in the reporting currency, at least
-- var migration_review_value) or complex (at least var migration_review_min_contracts contracts,
-- or contracts at several sites), with what is still open on them.
with

reconciliation as (
    select * from {{ ref('fct_migration_reconciliation') }}
    where phase = {{ migration_run('phase') }} and customer_id is not null
),

segments_in_force as (
    select * from {{ ref('int_migration__mapped_segments') }}
    where
        in_phase
        and customer_id is not null
        and {{ in_force('valid_from', 'valid_to', migration_as_of(), null_to_unbounded=false) }}
),

contracts as (
    select * from {{ ref('int_migration__mapped_contracts') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates_to_reporting') }}
    where rate_month = {{ month_start(migration_as_of()) }}
),

annual_values as (
    select
        segments_in_force.customer_id,
        sum(
            {{ to_reporting_currency('segments_in_force.annual_price', 'contracts.currency', 'fx_rates.fx_rate') }}
        ) as annual_value_reporting,
        {{ dbt.bool_or('fx_rates.fx_rate is null and contracts.currency <> ' ~ "'" ~ var('reporting_currency') ~ "'") }}
            as is_fx_rate_missing
    from segments_in_force
    inner join contracts
        on segments_in_force.legacy_contract_id = contracts.legacy_contract_id
    left join fx_rates
        on contracts.currency = fx_rates.currency
    group by segments_in_force.customer_id
),

sites as (
    select
        customer_id,
        count(distinct location_id) as locations
    from {{ ref('int_migration__mapped_segments') }}
    where in_phase and customer_id is not null
    group by customer_id
),

accounts as (
    select
        reconciliation.customer_id,
        count(*) as contracts,
        sum(case when reconciliation.status <> 'matched' then 1 else 0 end) as open_differences,
        {{ dbt.listagg('distinct reconciliation.currency', "', '", 'order by reconciliation.currency') }}
            as currencies
    from reconciliation
    group by reconciliation.customer_id
),

judged as (
    select
        accounts.*,
        coalesce(sites.locations, 0) as locations,
        coalesce(annual_values.annual_value_reporting, 0) as annual_value_reporting,
        coalesce(annual_values.is_fx_rate_missing, false) as is_fx_rate_missing,
        coalesce(annual_values.annual_value_reporting, 0) >= {{ var('migration_review_value') }} as is_high_value,
        (
            accounts.contracts >= {{ var('migration_review_min_contracts') }}
            or coalesce(sites.locations, 0) > 1
        ) as is_complex
    from accounts
    left join sites
        on accounts.customer_id = sites.customer_id
    left join annual_values
        on accounts.customer_id = annual_values.customer_id
)

select
    {{ migration_run('phase') }} || ':' || customer_id as review_id,
    {{ migration_run('phase') }} as phase,
    customer_id,
    currencies,
    cast(contracts as {{ dbt.type_int() }}) as contracts,
    cast(locations as {{ dbt.type_int() }}) as locations,
    cast(annual_value_reporting as decimal(18, 2)) as annual_value_reporting,
    '{{ var("reporting_currency") }}' as reporting_currency,
    is_fx_rate_missing,
    is_high_value,
    is_complex,
    cast(open_differences as {{ dbt.type_int() }}) as open_differences,
    {{ dbt.concat([
        "case when is_high_value then 'high value; ' else '' end",
        "case when contracts >= " ~ var('migration_review_min_contracts') ~ " then 'many contracts; ' else '' end",
        "case when locations > 1 then 'several sites; ' else '' end",
        "case when open_differences > 0 then 'open differences' else '' end",
    ]) }} as review_reasons,
    {{ migration_as_of() }} as as_of_date,
    {{ migration_run('run_id') }} as run_id
from judged
where is_high_value or is_complex or is_fx_rate_missing
