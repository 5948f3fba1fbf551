-- Allowance periods whose use reached 80 % of the limit, with the highest
-- threshold crossed (80, 90, 100) and the quantity over the limit.
with

deliveries as (
    select * from {{ ref('int_service_deliveries_attributed') }}
    where entitlement_id is not null and delivered_on <= {{ as_of_date() }}
),

usage_periods as (
    select * from {{ ref('int_usage_periods') }}
    where entitlement_id is not null and period_start <= {{ as_of_date() }}
),

service_periods as (
    -- The limit that applies is the one in force at the period's latest delivery.
    select
        customer_id,
        entitlement_id,
        service_code as entitlement_code,
        period_start,
        period_end,
        effective_limit_quantity as limit_quantity,
        used_quantity
    from (
        select
            *,
            count(*) over (
                partition by contract_line_id, service_code, period_start
            ) as used_quantity,
            row_number() over (
                partition by contract_line_id, service_code, period_start
                order by created_at desc, delivery_id desc
            ) as recency
        from deliveries
    ) as counted
    where recency = 1
),

metered_periods as (
    select
        customer_id,
        entitlement_id,
        meter_code as entitlement_code,
        period_start,
        period_end,
        limit_quantity,
        used_quantity
    from usage_periods
),

periods as (
    select * from service_periods
    union all
    select * from metered_periods
),

measured as (
    select
        *,
        round(100.0 * used_quantity / limit_quantity, 2) as pct_used
    from periods
    where limit_quantity > 0
)

select
    entitlement_id || '@' || cast(period_start as {{ dbt.type_string() }}) as breach_id,
    customer_id,
    entitlement_id,
    entitlement_code,
    period_start,
    period_end,
    cast(limit_quantity as decimal(38, 4)) as limit_quantity,
    cast(used_quantity as decimal(38, 4)) as used_quantity,
    cast(pct_used as decimal(9, 2)) as pct_used,
    case
        when pct_used >= 100 then 100
        when pct_used >= 90 then 90
        else 80
    end as threshold_crossed,
    cast(
        case when used_quantity > limit_quantity then used_quantity - limit_quantity else 0 end
        as decimal(38, 4)
    ) as overage_quantity
from measured
where pct_used >= 80
