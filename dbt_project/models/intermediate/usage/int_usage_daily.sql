-- Attributed, de-duplicated usage per customer, meter, allowance (contract line version, or
-- none) and day: the one scan of the events that everything after them reads. A few rows per
-- line and day instead of one per event, so int_usage_periods, int_allowance_periods and the
-- active_entitlements macro (`entitlements check`, `as-of`) read days, not events: at 10M
-- events, 45k rows. Usage with no active entitlement is kept, with entitlement_id null.
with

events as (
    select * from {{ ref('int_usage_events_attributed') }}
)

select
    customer_id,
    meter_code,
    period_start,
    period_end,
    entitlement_id,
    contract_id,
    contract_line_id,
    version_no,
    package_code,
    limit_quantity,
    occurred_on,
    sum(quantity) as quantity,
    -- The highest reading of the day: what a peak unit's period use is made of (int_allowance_periods).
    max(reading) as peak_reading,
    count(*) as event_count
from events
group by
    customer_id,
    meter_code,
    period_start,
    period_end,
    entitlement_id,
    contract_id,
    contract_line_id,
    version_no,
    package_code,
    limit_quantity,
    occurred_on
-- Stored in customer order so a one-customer lookup (entitlements check) reads few row groups.
order by customer_id, occurred_on
