-- The mapping profiled per lookup, for the phase: of the records with a legacy value to map,
-- how many found no counterpart (a product code missing from PRODMAP, a customer, contract or
-- site missing from the crosswalk, a serial number no asset has, an unknown type code, a
-- renewal of an unmapped contract). A few are records to fix (the reconciliation lists each); a
-- large share is a mapping table or crosswalk that misses a whole group, which the map check
-- stops (macro is_systematic).
{{ config(tags=['migration_map']) }}

with

segments as (
    select * from {{ ref('int_migration__mapped_segments') }}
    where in_phase
),

contracts as (
    select * from {{ ref('int_migration__mapped_contracts') }}
    where in_phase
),

lookups as (
    {%- set lookups = [
        ('product', 'segments', 'legacy_product_code', 'package_code'),
        ('asset', 'segments', 'equipment_serial', 'asset_id'),
        ('site', 'segments', 'legacy_site_no', 'location_id'),
        ('customer', 'contracts', 'legacy_customer_no', 'customer_id'),
        ('contract', 'contracts', 'legacy_contract_id', 'new_contract_id'),
        ('contract_type', 'contracts', 'legacy_contract_type', 'contract_type'),
        ('renewal', 'contracts', 'previous_legacy_contract_id', 'renewal_of_contract_id'),
    ] %}
    {%- for lookup, relation, legacy, mapped in lookups %}
        select
            '{{ lookup }}' as lookup,
            count(*) as records,
            sum(case when {{ mapped }} is null then 1 else 0 end) as unresolved
        from {{ relation }}
        where {{ legacy }} is not null
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
)

select
    *,
    cast(unresolved as {{ dbt.type_float() }}) / nullif(records, 0) as unresolved_share,
    {{ is_systematic('unresolved', 'records') }} as is_systematic
from lookups
