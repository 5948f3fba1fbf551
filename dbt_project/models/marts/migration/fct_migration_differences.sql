-- Every field difference between a legacy contract and the new contract it became, for each
-- validated phase (a phase's rows are replaced when it is validated again): header fields, then
-- the fields of the nth segment against the nth line version, and segments present on one side
-- only. Each row has both values as text and the reason.
with

pairs as (
    select * from {{ ref('int_migration__contract_pairs') }}
    where pair_kind = 'paired'
),

segment_pairs as (
    select * from {{ ref('int_migration__segment_pairs') }}
    where has_legacy_segment and has_new_version
),

one_sided_segments as (
    select * from {{ ref('int_migration__segment_pairs') }}
    where not (has_legacy_segment and has_new_version)
),

differences as (
    {{ field_difference('pairs', 'customer_id', 'legacy_customer_id', 'new_customer_id', difference_reason(
        'legacy_customer_id', 'new_customer_id',
        "case when legacy_customer_id is null then 'legacy customer ' || legacy_customer_no"
        ~ " || ' has no crosswalk entry' end"
    )) }}
    union all
    {{ field_difference('pairs', 'contract_type', 'legacy_contract_type', 'new_contract_type', difference_reason(
        'legacy_contract_type', 'new_contract_type',
        "case when legacy_contract_type is null and legacy_contract_type_code is not null"
        ~ " then 'legacy type code ' || legacy_contract_type_code || ' is unknown' end"
    )) }}
    union all
    {{ field_difference('pairs', 'start_date', 'legacy_start_date', 'new_start_date',
        difference_reason('legacy_start_date', 'new_start_date')) }}
    union all
    {{ field_difference('pairs', 'end_date', 'legacy_end_date', 'new_end_date',
        difference_reason('legacy_end_date', 'new_end_date')) }}
    union all
    {{ field_difference('pairs', 'currency', 'legacy_currency', 'new_currency',
        difference_reason('legacy_currency', 'new_currency')) }}
    union all
    {{ field_difference('pairs', 'auto_renew', 'legacy_is_auto_renew', 'new_is_auto_renew',
        difference_reason('legacy_is_auto_renew', 'new_is_auto_renew')) }}
    union all
    {{ field_difference('pairs', 'renewal_of_contract_id', 'legacy_renewal_of_contract_id',
        'new_renewal_of_contract_id', difference_reason(
            'legacy_renewal_of_contract_id', 'new_renewal_of_contract_id',
            "case when legacy_renewal_of_contract_id is null and previous_legacy_contract_id is not null"
            ~ " then 'previous legacy contract ' || previous_legacy_contract_id || ' has no crosswalk entry' end"
        )) }}
    union all
    select
        pair_id,
        legacy_contract_id,
        new_contract_id,
        customer_id,
        in_phase,
        'segment' as field,
        segment_no,
        case when has_legacy_segment then 'segment ' || cast(legacy_segment_no as {{ dbt.type_string() }}) end
            as legacy_value,
        case when has_new_version then contract_line_id || ' v' || cast(version_no as {{ dbt.type_string() }}) end
            as new_value,
        case
            when has_legacy_segment then 'a legacy segment with no line version'
            else 'a line version with no legacy segment'
        end as reason
    from one_sided_segments
    union all
    {{ field_difference('segment_pairs', 'package_code', 'legacy_package_code', 'new_package_code',
        difference_reason('legacy_package_code', 'new_package_code',
            "case when legacy_package_code is null and legacy_product_code is not null"
            ~ " then 'legacy product ' || legacy_product_code || ' is not in the product map' end"),
        'segment_no') }}
    union all
    {{ field_difference('segment_pairs', 'asset_id', 'legacy_asset_id', 'new_asset_id',
        difference_reason('legacy_asset_id', 'new_asset_id',
            "case when legacy_asset_id is null and equipment_serial is not null"
            ~ " then 'no asset of the new model has serial ' || equipment_serial end"),
        'segment_no') }}
    union all
    {{ field_difference('segment_pairs', 'location_id', 'legacy_location_id', 'new_location_id',
        difference_reason('legacy_location_id', 'new_location_id',
            "case when legacy_location_id is null and legacy_site_no is not null"
            ~ " then 'legacy site ' || legacy_site_no || ' has no crosswalk entry' end"),
        'segment_no') }}
    union all
    {{ field_difference('segment_pairs', 'quantity', 'legacy_quantity', 'new_quantity',
        difference_reason('legacy_quantity', 'new_quantity'), 'segment_no') }}
    union all
    {{ field_difference('segment_pairs', 'annual_price', 'legacy_annual_price', 'new_annual_price',
        difference_reason('legacy_annual_price', 'new_annual_price'), 'segment_no') }}
    union all
    {{ field_difference('segment_pairs', 'valid_from', 'legacy_valid_from', 'new_valid_from',
        difference_reason('legacy_valid_from', 'new_valid_from'), 'segment_no') }}
    union all
    {{ field_difference('segment_pairs', 'valid_to', 'legacy_valid_to', 'new_valid_to',
        difference_reason('legacy_valid_to', 'new_valid_to',
            "case when legacy_next_valid_from < legacy_valid_to then 'the legacy segment overlaps the next,"
            ~ " which starts ' || cast(legacy_next_valid_from as " ~ dbt.type_string() ~ ") end"),
        'segment_no') }}
)

select
    {{ migration_run('phase') }} || ':' || pair_id || ':' || field
    || coalesce(':' || cast(segment_no as {{ dbt.type_string() }}), '') as difference_id,
    {{ migration_run('phase') }} as phase,
    pair_id,
    legacy_contract_id,
    new_contract_id,
    customer_id,
    field,
    cast(segment_no as {{ dbt.type_int() }}) as segment_no,
    legacy_value,
    new_value,
    reason,
    {{ migration_as_of() }} as as_of_date,
    {{ migration_run('run_id') }} as run_id
from differences
where in_phase
