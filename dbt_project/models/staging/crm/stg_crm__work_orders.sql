with

source as (
    select * from {{ source('crm', 'work_orders') }}
),

renamed as (
    select
        -- ids
        work_order_id,
        customer_id,
        asset_id,
        location_id,
        service_code,
        -- attributes
        status as work_order_status,
        billing_type,
        after_hours as is_after_hours,  -- null: not exported (int_service_deliveries computes it)
        -- numerics
        response_hours,
        -- timestamps
        created_at,
        completed_at
    from source
)

select * from renamed
