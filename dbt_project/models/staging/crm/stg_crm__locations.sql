with

source as (
    select * from {{ source('crm', 'locations') }}
),

renamed as (
    select
        -- ids
        location_id,
        customer_id,
        -- attributes
        location_name,
        country
    from source
)

select * from renamed
