with

source as (
    select * from {{ source('billing', 'subscriptions') }}
),

renamed as (
    select
        -- ids
        subscription_item_id,
        subscription_id,
        customer_id,
        price_id,
        item_code,
        contract_line_id,
        -- attributes
        status as subscription_status,
        cancel_at_period_end,
        upper(currency) as currency,
        -- numerics
        quantity,
        -- timestamps (UTC): the current period [current_period_start, current_period_end)
        current_period_start,
        current_period_end,
        created_at,
        started_at,
        ended_at,
        cancel_at
    from source
)

select * from renamed
