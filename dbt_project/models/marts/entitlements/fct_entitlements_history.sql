-- Every version of every entitlement, never overwritten: one row per grant of a
-- contract line version (granted, amended, renewed, cancelled), per override
-- (overridden) and per expiry of a line's last version (expired: the archive row).
-- "What was this customer entitled to on D" = rows with valid_from <= D < valid_to.
with

grants as (
    select * from {{ ref('int_entitlement_grants') }}
),

contracts as (
    select * from {{ ref('dim_contracts') }}
),

overrides as (
    select * from {{ ref('stg_crm__overrides') }}
),

line_ends as (
    select
        contract_line_id,
        max(version_no) as last_version_no
    from grants
    group by contract_line_id
),

versions as (
    select
        grants.entitlement_id as history_id,
        grants.entitlement_id,
        grants.customer_id,
        grants.contract_id,
        grants.contract_line_id,
        grants.version_no,
        grants.package_code,
        grants.entitlement_code,
        grants.asset_id,
        grants.location_id,
        case
            when contracts.contract_status = 'cancelled' then 'cancelled'
            else coalesce(grants.change_reason, 'granted')
        end as change_type,
        grants.limit_quantity,
        cast(null as {{ dbt.type_string() }}) as approved_by,
        grants.valid_from,
        grants.valid_to
    from grants
    inner join contracts
        on grants.contract_id = contracts.contract_id
),

expiries as (
    select
        grants.entitlement_id || '/expired' as history_id,
        grants.entitlement_id,
        grants.customer_id,
        grants.contract_id,
        grants.contract_line_id,
        grants.version_no,
        grants.package_code,
        grants.entitlement_code,
        grants.asset_id,
        grants.location_id,
        'expired' as change_type,
        cast(0 as decimal(38, 4)) as limit_quantity,
        cast(null as {{ dbt.type_string() }}) as approved_by,
        grants.valid_to as valid_from,
        cast(null as date) as valid_to
    from grants
    inner join line_ends
        on
            grants.contract_line_id = line_ends.contract_line_id
            and grants.version_no = line_ends.last_version_no
    where grants.valid_to <= {{ as_of_date() }}
),

overridden as (
    select
        overrides.override_id as history_id,
        cast(null as {{ dbt.type_string() }}) as entitlement_id,
        overrides.customer_id,
        overrides.contract_id,
        cast(null as {{ dbt.type_string() }}) as contract_line_id,
        cast(null as integer) as version_no,
        cast(null as {{ dbt.type_string() }}) as package_code,
        overrides.entitlement_code,
        cast(null as {{ dbt.type_string() }}) as asset_id,
        cast(null as {{ dbt.type_string() }}) as location_id,
        'overridden' as change_type,
        overrides.extra_quantity as limit_quantity,
        overrides.approved_by,
        overrides.valid_from,
        overrides.valid_to
    from overrides
),

history as (
    select * from versions
    union all
    select * from expiries
    union all
    select * from overridden
)

select
    history_id,
    entitlement_id,
    customer_id,
    contract_id,
    contract_line_id,
    version_no,
    package_code,
    entitlement_code,
    asset_id,
    location_id,
    change_type,
    cast(limit_quantity as decimal(38, 4)) as limit_quantity,
    approved_by,
    valid_from,
    valid_to,
    coalesce(
        {{ in_force('valid_from', 'valid_to', as_of_date()) }}
        and change_type <> 'expired',
        false
    ) as is_in_force
from history
