-- What the legacy system entitles each customer to on the parallel run's date (var
-- migration_as_of): the allowances stored on every segment in force that day (ALW_* columns,
-- var legacy_allowance_columns: a number, UNL for unlimited, blank for not included), per
-- customer, entitlement and scope. Legacy contracts of no known account are left out (nothing to
-- compare them with); cancelled ones grant nothing.
{{ config(tags=['migration_reconcile']) }}

with

segments as (
    select * from {{ ref('int_migration__mapped_segments') }}
    where
        customer_id is not null
        and coalesce(legacy_status, '') <> 'C'
        and {{ in_force('valid_from', 'valid_to', migration_as_of(), null_to_unbounded=false) }}
),

allowances as (
    {%- for column, entitlement_code in var('legacy_allowance_columns').items() %}
        select
            customer_id,
            legacy_contract_id,
            '{{ entitlement_code }}' as entitlement_code,
            asset_id,
            location_id,
            in_phase,
            {{ column }} as allowance
        from segments
        where {{ column }} is not null
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
)

select
    customer_id,
    entitlement_code,
    asset_id,
    location_id,
    in_phase,
    {{ dbt.bool_or("allowance = 'UNL'") }} as is_unlimited,
    max(
        case when allowance <> 'UNL' then {{ dbt.safe_cast('allowance', dbt.type_numeric()) }} end
    ) as limit_quantity,
    count(*) as grant_count,
    {{ dbt.listagg('distinct legacy_contract_id', "', '", 'order by legacy_contract_id') }} as contract_ids
from allowances
group by customer_id, entitlement_code, asset_id, location_id, in_phase
