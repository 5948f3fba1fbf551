-- Legacy segments mapped to the new model's contract line versions: the old product code to a
-- catalog package (PRODMAP), equipment by serial number to an asset, the legacy site to a
-- location (crosswalk), the fee from minor units to the currency's major units (the contract's
-- currency, else the customer's), inclusive ends to exclusive ones. A segment whose key repeats
-- (a duplicate row) is mapped once. The *_targets and asset_matches columns count the rows a
-- lookup found: more than one fans a segment out, which the map checks stop.
{{ config(tags=['migration_map']) }}

with

segments as (
    select
        *,
        row_number() over (
            partition by legacy_contract_id, segment_no_text
            order by _source_file, _load_id
        ) as key_rank
    from {{ ref('int_migration__legacy_segments') }}
),

product_map as (
    select
        legacy_product_code,
        package_code,
        count(*) over (partition by legacy_product_code) as product_map_targets
    from {{ ref('stg_legacy__product_map') }}
),

catalog_packages as (
    select distinct package_code from {{ ref('int_catalog_entitlements') }}
),

site_crosswalk as (
    select
        legacy_key as legacy_site_no,
        new_key as location_id,
        count(*) over (partition by legacy_key) as site_targets
    from {{ ref('stg_legacy__crosswalk') }}
    where object_type = 'SITE'
),

assets as (
    select
        serial_number,
        asset_id,
        count(*) over (partition by serial_number) as asset_matches
    from {{ ref('stg_crm__assets') }}
),

customer_currencies as (
    select
        legacy_customer_no,
        min(currency) as currency
    from {{ ref('stg_legacy__customers') }}
    group by legacy_customer_no
),

minor_units as (
    select * from {{ ref('currency_minor_units') }}
),

mapped as (
    select
        -- ids
        segments.legacy_contract_id,
        segments.segment_no,
        segments.customer_id,
        segments.in_phase,
        -- product
        segments.legacy_product_code,
        product_map.package_code,
        coalesce(product_map.product_map_targets, 0) as product_map_targets,
        case
            when product_map.package_code is not null then catalog_packages.package_code is not null
        end as is_package_in_catalog,
        -- scope
        segments.equipment_serial,
        assets.asset_id,
        coalesce(assets.asset_matches, 0) as asset_matches,
        case when segments.equipment_serial is not null then assets.asset_id is not null end as is_asset_resolved,
        segments.legacy_site_no,
        site_crosswalk.location_id,
        coalesce(site_crosswalk.site_targets, 0) as site_targets,
        case when segments.legacy_site_no is not null then site_crosswalk.location_id is not null end
            as is_site_resolved,
        -- numerics
        segments.quantity,
        cast(
            segments.fee_minor_units
            / power(10, minor_units.minor_unit_exponent)
            as decimal(18, 2)
        ) as annual_price,
        -- dates: [valid_from, valid_to)
        segments.segment_from as valid_from,
        {{ exclusive_end('segments.segment_to_inclusive') }} as valid_to,
        -- the allowances the legacy system stored on the segment
        {%- for column in var('legacy_allowance_columns') %}
            segments.{{ column }},
        {%- endfor %}
        segments.legacy_status
    from segments
    left join product_map
        on segments.legacy_product_code = product_map.legacy_product_code
    left join catalog_packages
        on product_map.package_code = catalog_packages.package_code
    left join assets
        on segments.equipment_serial = assets.serial_number
    left join site_crosswalk
        on segments.legacy_site_no = site_crosswalk.legacy_site_no
    left join customer_currencies
        on segments.legacy_customer_no = customer_currencies.legacy_customer_no
    left join minor_units
        on coalesce(segments.currency, customer_currencies.currency) = minor_units.currency
    where segments.key_rank = 1
)

select
    *,
    row_number() over (
        partition by legacy_contract_id
        order by valid_from, segment_no
    ) as segment_rank,
    lead(valid_from) over (
        partition by legacy_contract_id
        order by valid_from, segment_no
    ) as next_valid_from
from mapped
