with

source as (
    select * from {{ source('crm', 'cases') }}
),

renamed as (
    select
        -- ids
        case_id,
        customer_id,
        asset_id,
        location_id,
        service_code,
        case_number,
        -- attributes
        priority,
        status as case_status,
        billing_type,
        after_hours as is_after_hours,  -- null: not exported (int_service_deliveries computes it)
        -- numerics
        response_hours,
        -- timestamps
        created_at,
        closed_at
    from source
)

select * from renamed
