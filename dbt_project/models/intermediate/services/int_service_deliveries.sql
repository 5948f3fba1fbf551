-- Cases and work orders as one stream of service deliveries. Cancelled work orders delivered
-- nothing and are left out; deliveries an exclusion condition takes are kept, marked excluded_by.
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
        priority,
        case_status as delivery_status,
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
        cast(null as {{ dbt.type_string() }}) as priority,
        work_order_status as delivery_status,
        is_after_hours,
        response_hours,
        created_at
    from work_orders
    where work_order_status <> 'cancelled'
),

judged as (
    select
        *,
        -- The first of the exclusions entitlements.yml declares that holds (null: none): the
        -- delivery is kept here, for the record, and judged by no rule.
        {{ delivery_exclusion() }} as excluded_by
    from unioned
)

select
    judged.delivery_id,
    judged.delivery_number,
    judged.delivery_type,
    judged.customer_id,
    judged.asset_id,
    judged.location_id,
    judged.service_code,
    judged.billing_type,
    -- The export's after-hours flag where it has one; else from the delivery's time and the
    -- business hours entitlements.yml declares (never after hours without them).
    coalesce(
        judged.is_after_hours, {{ is_outside_business_hours('judged.created_at') }}
    ) as is_after_hours,
    judged.priority,
    judged.delivery_status,
    judged.response_hours,
    judged.created_at,
    judged.excluded_by,
    cast(judged.created_at as date) as delivered_on,
    accounts.currency
from judged
left join accounts
    on judged.customer_id = accounts.customer_id
