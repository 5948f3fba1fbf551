-- int_usage_daily keeps every attributed usage event: per meter, allowance month and
-- attribution (an entitlement or none), its days hold as many events, and add up to the same
-- quantity, as int_usage_events_attributed. A plain total per group (a few dozen groups), so it
-- reads the events once without grouping them by day again. Returns the groups that differ.
with

events as (
    select
        meter_code,
        period_start,
        entitlement_id is null as unentitled,
        count(*) as event_count,
        sum(quantity) as quantity
    from {{ ref('int_usage_events_attributed') }}
    group by meter_code, period_start, entitlement_id is null
),

days as (
    select
        meter_code,
        period_start,
        entitlement_id is null as unentitled,
        sum(event_count) as event_count,
        sum(quantity) as quantity
    from {{ ref('int_usage_daily') }}
    group by meter_code, period_start, entitlement_id is null
)

select
    coalesce(events.meter_code, days.meter_code) as meter_code,
    coalesce(events.period_start, days.period_start) as period_start,
    coalesce(events.unentitled, days.unentitled) as unentitled,
    events.event_count as events_counted,
    days.event_count as events_in_days,
    events.quantity as events_quantity,
    days.quantity as days_quantity
from events
full outer join days
    on
        events.meter_code = days.meter_code
        and events.period_start = days.period_start
        and events.unentitled = days.unentitled
where
    events.event_count is null
    or days.event_count is null
    or events.event_count <> days.event_count
    or events.quantity <> days.quantity
