-- Allowance periods whose use crossed 80 % of the limit (int_allowance_periods: resets,
-- units, the limit in force on each day), with the day each of the 80, 90 and 100 %
-- thresholds was first crossed, the highest one crossed, and the overage: its quantity
-- and its value priced by the price book (docs/pricing.md) in the contract's currency. The value is the
-- commercial size of the breach whether or not it was invoiced - not leakage.
with

periods as (
    select * from {{ ref('int_allowance_periods') }}
    where crossed_80_on is not null
),

to_price as (
    select
        entitlement_id || '@' || cast(period_start as {{ dbt.type_string() }}) as pricing_key,
        entitlement_code as item_code,
        package_code,
        currency,
        'unit' as price_type,
        period_start as priced_on,
        overage_quantity as quantity
    from periods
    where overage_quantity > 0
),

prices as (
    {{ priced_quantities('to_price') }}
),

priced as (
    select
        periods.*,
        prices.amount as overage_amount
    from periods
    left join prices
        on periods.entitlement_id || '@' || cast(periods.period_start as {{ dbt.type_string() }}) = prices.pricing_key
)

select
    entitlement_id || '@' || cast(period_start as {{ dbt.type_string() }}) as breach_id,
    customer_id,
    contract_id,
    contract_line_id,
    entitlement_id,
    entitlement_code,
    unit,
    period_start,
    period_end,
    cast(limit_quantity as decimal(38, 4)) as limit_quantity,
    cast(used_quantity as decimal(38, 4)) as used_quantity,
    cast(pct_used as decimal(9, 2)) as pct_used,
    case
        when crossed_100_on is not null then 100
        when crossed_90_on is not null then 90
        else 80
    end as threshold_crossed,
    crossed_80_on,
    crossed_90_on,
    crossed_100_on,
    cast(overage_quantity as decimal(38, 4)) as overage_quantity,
    -- no overage is worth 0 even unpriced; an overage with no price stays null (tests fail on it)
    cast(case when overage_quantity = 0 then 0 else overage_amount end as decimal(18, 2)) as overage_value,
    currency
from priced
