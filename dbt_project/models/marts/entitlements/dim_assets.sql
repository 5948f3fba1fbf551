-- One row per installed asset, at the location it is installed at.
with

assets as (
    select * from {{ ref('stg_crm__assets') }}
),

final as (
    select
        asset_id,
        customer_id,
        location_id,
        product_code,
        serial_number,
        installed_date
    from assets
)

select * from final
