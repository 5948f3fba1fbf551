{#-
    Entitlements in force on `as_of` (a SQL date expression), with use and remaining
    allowance in the period containing it. The mart fct_active_entitlements calls it with
    the run's as-of date; the analysis active_entitlements_on with a query parameter, so
    `entitlements as-of` answers any date with exactly the logic of a rebuild.
    Use is grouped and joined by customer_id too (implied by the contract line) so a
    caller's filter on one customer reaches the event scans: `entitlements check` relies on it.
-#}
{% macro active_entitlements(as_of) %}
with

grants as (
    select * from {{ ref('int_entitlement_grants') }}
    where {{ in_force('valid_from', 'valid_to', as_of) }}
),

approved_overrides as (
    {{ approved_overrides(on=as_of) }}
),

deliveries as (
    select * from {{ ref('int_service_deliveries_attributed') }}
    where entitlement_id is not null and delivered_on <= {{ as_of }}
),

usage_days as (
    select * from {{ ref('int_usage_daily') }}
    where entitlement_id is not null and occurred_on <= {{ as_of }}
),

current_period as (
    select
        *,
        {{ period_start('limit_period', 'contract_start_date', as_of) }} as period_start
    from grants
),

-- Use is summed from each grant's current period (equal keys, then the day bound): for a
-- caller asking many dates at once (a lateral join on them: check-batch), only the days of
-- each date's period are read, not every day up to it. Two joins, not one over a union of
-- deliveries and metered days: that union made check-batch's query 5x slower at 10M events.
service_use as (
    select
        current_period.entitlement_id,
        count(*) as used_quantity
    from current_period
    inner join deliveries
        on
            current_period.customer_id = deliveries.customer_id
            and current_period.contract_line_id = deliveries.contract_line_id
            and current_period.entitlement_code = deliveries.service_code
            and current_period.period_start = deliveries.period_start
    group by current_period.entitlement_id
),

metered_use as (
    select
        current_period.entitlement_id,
        sum(usage_days.quantity) as used_quantity
    from current_period
    inner join usage_days
        on
            current_period.customer_id = usage_days.customer_id
            and current_period.contract_line_id = usage_days.contract_line_id
            and current_period.entitlement_code = usage_days.meter_code
            and current_period.period_start = usage_days.period_start
    group by current_period.entitlement_id
),

override_extras as (
    select
        contract_id,
        entitlement_code,
        sum(extra_quantity) as extra_quantity
    from approved_overrides
    group by contract_id, entitlement_code
),

measured as (
    select
        current_period.*,
        {{ period_end('current_period.limit_period', 'current_period.period_start',
                      'current_period.contract_end_date') }} as period_end,
        current_period.limit_quantity + coalesce(override_extras.extra_quantity, 0) as effective_limit,
        coalesce(
            case current_period.consumed_by
                when 'service' then service_use.used_quantity
                when 'usage' then metered_use.used_quantity
            end,
            0
        ) as used_quantity
    from current_period
    left join service_use
        on current_period.entitlement_id = service_use.entitlement_id
    left join metered_use
        on current_period.entitlement_id = metered_use.entitlement_id
    left join override_extras
        on
            current_period.contract_id = override_extras.contract_id
            and current_period.entitlement_code = override_extras.entitlement_code
)

select
    entitlement_id,
    customer_id,
    contract_id,
    contract_line_id,
    package_code,
    entitlement_code,
    entitlement_type,
    unit,
    asset_id,
    location_id,
    valid_from,
    valid_to,
    period_start,
    period_end,
    cast(effective_limit as decimal(38, 4)) as limit_quantity,
    cast(used_quantity as decimal(38, 4)) as used_quantity,
    cast(case
        when effective_limit is null then null
        when effective_limit > used_quantity then effective_limit - used_quantity
        else 0
    end as decimal(38, 4)) as remaining_quantity,
    {{ as_of }} as as_of_date
from measured
{% endmacro %}
