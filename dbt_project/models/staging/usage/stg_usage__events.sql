-- One row per delivery: usage arrives at least once, so event ids repeat here;
-- int_usage_events_deduplicated keeps one.
with

source as (
    select * from {{ source('usage', 'events') }}
),

renamed as (
    select
        -- ids
        event_id,
        customer_id,
        meter_code,
        -- numerics
        quantity,
        distinct_value,
        -- timestamps
        occurred_at,
        sent_at,
        -- lineage
        _load_id as load_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
