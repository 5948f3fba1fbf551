-- Usage is delivered at least once: keep the first delivery of each event id. The event's
-- customer id may be a CRM account or a billing customer (entitlements.yml usage_events):
-- resolved to the CRM account through int_customer_identities; an unresolved id is kept as it
-- is (it matches no entitlement) and listed in fct_unresolved_customer_ids.
with

events as (
    select * from {{ ref('stg_usage__events') }}
),

identities as (
    select * from {{ ref('int_customer_identities') }}
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
    ranked.event_id,
    coalesce(identities.customer_id, ranked.customer_id) as customer_id,
    ranked.meter_code,
    ranked.quantity,
    ranked.distinct_value,
    ranked.occurred_at,
    cast(ranked.occurred_at as date) as occurred_on,
    ranked.sent_at
from ranked
left join identities
    on ranked.customer_id = identities.source_id
where ranked.delivery_no = 1
