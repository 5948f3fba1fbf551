-- The parallel run: on the run's date (migrate validate --as-of), what the legacy system entitles each
-- customer to (int_migration__legacy_entitlements, from the allowances it stored) against what
-- the new model grants (int_entitlement_grants in force that day, before overrides), per
-- customer, entitlement and scope (asset, location), for each validated phase. Where several
-- contracts grant the same, the most generous limit counts (null limit = unlimited).
with

legacy_entitlements as (
    select * from {{ ref('int_migration__legacy_entitlements') }}
    where in_phase
),

new_grants as (
    select * from {{ ref('int_entitlement_grants') }}
    where
        {{ in_force('valid_from', 'valid_to', migration_as_of(), null_to_unbounded=false) }}
        and {{ in_migration_phase('customer_id') }}
),

new_entitlements as (
    select
        customer_id,
        entitlement_code,
        asset_id,
        location_id,
        {{ dbt.bool_or('limit_quantity is null') }} as is_unlimited,
        max(limit_quantity) as limit_quantity,
        count(*) as grant_count,
        {{ dbt.listagg('distinct contract_id', "', '", 'order by contract_id') }} as contract_ids
    from new_grants
    group by customer_id, entitlement_code, asset_id, location_id
),

compared as (
    select
        coalesce(legacy_entitlements.customer_id, new_entitlements.customer_id) as customer_id,
        coalesce(legacy_entitlements.entitlement_code, new_entitlements.entitlement_code) as entitlement_code,
        coalesce(legacy_entitlements.asset_id, new_entitlements.asset_id) as asset_id,
        coalesce(legacy_entitlements.location_id, new_entitlements.location_id) as location_id,
        legacy_entitlements.grant_count as legacy_grants,
        legacy_entitlements.is_unlimited as legacy_is_unlimited,
        cast(legacy_entitlements.limit_quantity as decimal(18, 4)) as legacy_limit_quantity,
        legacy_entitlements.contract_ids as legacy_contract_ids,
        new_entitlements.grant_count as new_grants,
        new_entitlements.is_unlimited as new_is_unlimited,
        cast(new_entitlements.limit_quantity as decimal(18, 4)) as new_limit_quantity,
        new_entitlements.contract_ids as new_contract_ids,
        case
            when new_entitlements.customer_id is null then 'only_in_legacy'
            when legacy_entitlements.customer_id is null then 'only_in_new'
            when legacy_entitlements.is_unlimited and new_entitlements.is_unlimited then 'matched'
            when
                not legacy_entitlements.is_unlimited and not new_entitlements.is_unlimited
                and legacy_entitlements.limit_quantity = new_entitlements.limit_quantity
                then 'matched'
            else 'limit_differs'
        end as status
    from legacy_entitlements
    full outer join new_entitlements
        on
            legacy_entitlements.customer_id = new_entitlements.customer_id
            and legacy_entitlements.entitlement_code = new_entitlements.entitlement_code
            and coalesce(legacy_entitlements.asset_id, '') = coalesce(new_entitlements.asset_id, '')
            and coalesce(legacy_entitlements.location_id, '') = coalesce(new_entitlements.location_id, '')
)

select
    {{ migration_run('phase') }} || ':' || customer_id || ':' || entitlement_code
    || ':' || coalesce(asset_id, '*') || ':' || coalesce(location_id, '*') as parallel_run_id,
    {{ migration_run('phase') }} as phase,
    customer_id,
    entitlement_code,
    asset_id,
    location_id,
    status,
    cast(legacy_grants as {{ dbt.type_int() }}) as legacy_grants,
    legacy_is_unlimited,
    legacy_limit_quantity,
    legacy_contract_ids,
    cast(new_grants as {{ dbt.type_int() }}) as new_grants,
    new_is_unlimited,
    new_limit_quantity,
    new_contract_ids,
    {{ migration_as_of() }} as as_of_date,
    {{ migration_run('run_id') }} as run_id
from compared
