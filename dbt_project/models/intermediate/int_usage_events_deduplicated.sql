-- Usage is delivered at least once: keep the first delivery of each event id.
with

events as (
    select * from {{ ref('stg_usage__events') }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by event_id
            order by sent_at, loaded_at, load_id
        ) as delivery_no
    from events
)

select
    event_id,
    customer_id,
    meter_code,
    quantity,
    occurred_at,
    cast(occurred_at as date) as occurred_on,
    sent_at
from ranked
where delivery_no = 1
