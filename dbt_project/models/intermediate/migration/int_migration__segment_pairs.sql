-- The segments of each paired legacy contract aligned with the line versions of its new
-- contract, in order of start (valid_from, then segment number or line and version): the nth
-- segment is compared with the nth version. A segment or version with no counterpart has nulls
-- on the other side. The new side's dates are as in force (int_contract_lines: a line without
-- dates of its own has its contract's), so an undated line is no difference in itself.
{{ config(tags=['migration_reconcile']) }}

with

paired as (
    select * from {{ ref('int_migration__contract_pairs') }}
    where pair_kind = 'paired'
),

legacy_segments as (
    select
        paired.pair_id,
        segments.*
    from {{ ref('int_migration__mapped_segments') }} as segments
    inner join paired
        on segments.legacy_contract_id = paired.legacy_contract_id
),

new_versions as (
    select
        paired.pair_id,
        contract_lines.*,
        row_number() over (
            partition by contract_lines.contract_id
            order by contract_lines.valid_from, contract_lines.contract_line_id, contract_lines.version_no
        ) as version_rank
    from {{ ref('int_contract_lines') }} as contract_lines
    inner join paired
        on contract_lines.contract_id = paired.new_contract_id
),

aligned as (
    select
        coalesce(legacy_segments.pair_id, new_versions.pair_id) as pair_id,
        coalesce(legacy_segments.segment_rank, new_versions.version_rank) as segment_no,
        legacy_segments.pair_id is not null as has_legacy_segment,
        new_versions.pair_id is not null as has_new_version,
        legacy_segments.segment_no as legacy_segment_no,
        new_versions.contract_line_id,
        new_versions.version_no,
        legacy_segments.legacy_product_code,
        legacy_segments.package_code as legacy_package_code,
        new_versions.package_code as new_package_code,
        legacy_segments.equipment_serial,
        legacy_segments.asset_id as legacy_asset_id,
        new_versions.asset_id as new_asset_id,
        legacy_segments.legacy_site_no,
        legacy_segments.location_id as legacy_location_id,
        new_versions.location_id as new_location_id,
        legacy_segments.quantity as legacy_quantity,
        new_versions.quantity as new_quantity,
        legacy_segments.annual_price as legacy_annual_price,
        new_versions.annual_price as new_annual_price,
        legacy_segments.valid_from as legacy_valid_from,
        new_versions.valid_from as new_valid_from,
        legacy_segments.valid_to as legacy_valid_to,
        new_versions.valid_to as new_valid_to,
        legacy_segments.next_valid_from as legacy_next_valid_from
    from legacy_segments
    full outer join new_versions
        on
            legacy_segments.pair_id = new_versions.pair_id
            and legacy_segments.segment_rank = new_versions.version_rank
)

select
    paired.legacy_contract_id,
    paired.new_contract_id,
    paired.customer_id,
    paired.in_phase,
    aligned.*
from aligned
inner join paired
    on aligned.pair_id = paired.pair_id
