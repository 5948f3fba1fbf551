-- Every attributed delivery and usage event up to the as-of date lands in exactly the
-- allowance period it was attributed to: per contract line, entitlement and period, the use
-- attributed equals int_allowance_periods' used_quantity (summed units; a peak unit keeps its
-- highest reading, so it is only checked to have its period). Returns the rows that differ.
-- Usage is read as int_usage_daily sums it (assert_int_usage_daily_keeps_every_event
-- reconciles those days with the events).
with

attributed as (
    select
        contract_line_id,
        service_code as entitlement_code,
        period_start,
        count(*) as quantity
    from {{ ref('int_service_deliveries_attributed') }}
    where entitlement_id is not null and delivered_on <= {{ as_of_date() }}
    group by contract_line_id, service_code, period_start
    union all
    select
        contract_line_id,
        meter_code as entitlement_code,
        period_start,
        sum(quantity) as quantity
    from {{ ref('int_usage_daily') }}
    where entitlement_id is not null and occurred_on <= {{ as_of_date() }}
    group by contract_line_id, meter_code, period_start
),

periods as (
    select * from {{ ref('int_allowance_periods') }}
)

select
    coalesce(attributed.contract_line_id, periods.contract_line_id) as contract_line_id,
    coalesce(attributed.entitlement_code, periods.entitlement_code) as entitlement_code,
    coalesce(attributed.period_start, periods.period_start) as period_start,
    attributed.quantity as attributed_quantity,
    periods.used_quantity
from attributed
full outer join periods
    on
        attributed.contract_line_id = periods.contract_line_id
        and attributed.entitlement_code = periods.entitlement_code
        and attributed.period_start = periods.period_start
where
    periods.allowance_period_id is null
    or (periods.aggregation = 'sum' and coalesce(attributed.quantity, 0) <> periods.used_quantity)
