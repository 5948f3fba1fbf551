with

source as (
    select * from {{ source('crm', 'assets') }}
),

renamed as (
    select
        -- ids
        asset_id,
        customer_id,
        location_id,
        -- attributes
        product_code,
        serial_number,
        -- dates
        installed_date
    from source
)

select * from renamed
