-- Cases and work orders as one stream of service deliveries.
with

cases as (
    select * from {{ ref('stg_crm__cases') }}
),

work_orders as (
    select * from {{ ref('stg_crm__work_orders') }}
),

accounts as (
    select * from {{ ref('stg_crm__accounts') }}
),

unioned as (
    select
        case_id as delivery_id,
        case_number as delivery_number,
        'case' as delivery_type,
        customer_id,
        asset_id,
        location_id,
        service_code,
        billing_type,
        is_after_hours,
        response_hours,
        created_at
    from cases
    union all
    select
        work_order_id as delivery_id,
        cast(null as {{ dbt.type_string() }}) as delivery_number,
        'work_order' as delivery_type,
        customer_id,
        asset_id,
        location_id,
        service_code,
        billing_type,
        is_after_hours,
        response_hours,
        created_at
    from work_orders
    where work_order_status <> 'cancelled'
)

select
    unioned.delivery_id,
    unioned.delivery_number,
    unioned.delivery_type,
    unioned.customer_id,
    unioned.asset_id,
    unioned.location_id,
    unioned.service_code,
    unioned.billing_type,
    -- The export's after-hours flag where it has one; else from the delivery's time and the
    -- business hours entitlements.yml declares (never after hours without them).
    coalesce(
        unioned.is_after_hours, {{ is_outside_business_hours('unioned.created_at') }}
    ) as is_after_hours,
    unioned.response_hours,
    unioned.created_at,
    cast(unioned.created_at as date) as delivered_on,
    accounts.currency
from unioned
left join accounts
    on unioned.customer_id = accounts.customer_id
