-- Attributed, de-duplicated usage summed per contract line, meter and day: a few rows
-- per line and day instead of one per event. The active_entitlements macro sums it up
-- to any as-of date, so `entitlements check` and `as-of` read days, not events.
with

events as (
    select * from {{ ref('int_usage_events_attributed') }}
    where entitlement_id is not null
)

select
    customer_id,
    contract_line_id,
    entitlement_id,
    meter_code,
    period_start,
    occurred_on,
    sum(quantity) as quantity,
    count(*) as event_count
from events
group by customer_id, contract_line_id, entitlement_id, meter_code, period_start, occurred_on
-- Stored in customer order so a one-customer lookup (entitlements check) reads few row groups.
order by customer_id, occurred_on
