-- Every allowance period started by the as-of date, with its use against the limit in force:
-- the utilisation behind fct_limit_breaches (periods over 80 %) and fct_underused_entitlements.
with

periods as (
    select * from {{ ref('int_allowance_periods') }}
)

select
    allowance_period_id,
    customer_id,
    contract_id,
    contract_line_id,
    entitlement_id,
    package_code,
    entitlement_code,
    entitlement_type,
    unit,
    aggregation,
    limit_period,
    period_start,
    period_end,
    is_complete,
    limit_quantity,
    used_quantity,
    pct_used,
    crossed_80_on,
    crossed_90_on,
    crossed_100_on,
    overage_quantity,
    currency
from periods
