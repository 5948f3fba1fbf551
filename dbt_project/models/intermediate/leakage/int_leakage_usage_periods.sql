-- Leaks proven by a usage period (customer, meter, month), judged once the month
-- has been invoiced (monthly in arrears):
--   unbilled_overage   usage above the limit, overage invoiced short or not at all
--   post_expiry_usage  usage with no active entitlement after an earlier one ended
-- The leak is the period's billable quantity priced by the price book as billed (the charge
-- model applied to the whole period's overage: packages, tiers; docs/pricing.md) less what was
-- invoiced for it net of discounts and credits. The overage is priced at the price of the
-- entitlement's package; usage with no entitlement at the fallback price (no package).
with

periods as (
    select * from {{ ref('int_usage_periods') }}
    where period_start < {{ month_start(as_of_date()) }}
),

matches as (
    select * from {{ ref('int_invoice_line_matches') }}
    where evidence_type = 'usage_period'
),

usage_grants as (
    {{ first_usage_grants() }}
),

-- What was invoiced for each period (int_invoice_line_matches: by subscription item, or by
-- customer, meter and month), net of discounts and credits.
billed_overage as (
    select
        evidence_id as usage_period_id,
        sum(quantity) as billed_quantity,
        sum(net_amount) as billed_amount
    from matches
    group by evidence_id
),

classified as (
    select
        periods.*,
        coalesce(billed_overage.billed_quantity, 0) as billed_quantity,
        coalesce(billed_overage.billed_amount, 0) as billed_amount,
        case
            when periods.entitlement_id is not null and periods.used_quantity > periods.limit_quantity
                then 'unbilled_overage'
            when periods.entitlement_id is null and usage_grants.first_granted_on <= periods.period_start
                then 'post_expiry_usage'
        end as category,
        case
            when periods.entitlement_id is not null then periods.used_quantity - periods.limit_quantity
            else periods.used_quantity
        end as billable_quantity
    from periods
    left join billed_overage
        on periods.usage_period_id = billed_overage.usage_period_id
    left join usage_grants
        on
            periods.customer_id = usage_grants.customer_id
            and periods.meter_code = usage_grants.entitlement_code
    where periods.entitlement_id is null or periods.used_quantity > periods.limit_quantity
),

to_price as (
    select
        usage_period_id as pricing_key,
        meter_code as item_code,
        package_code,
        currency,
        'unit' as price_type,
        period_start as priced_on,
        billable_quantity as quantity
    from classified
    where category is not null
),

prices as (
    {{ priced_quantities('to_price') }}
),

leaks as (
    select
        classified.*,
        prices.amount as priced_amount,
        prices.price_explanation
    from classified
    -- left: a leak with no price stays, with a null amount that fct_revenue_leakage's tests fail on
    left join prices
        on classified.usage_period_id = prices.pricing_key
    where
        classified.category is not null
        and coalesce(
            prices.amount > classified.billed_amount,
            classified.billable_quantity > classified.billed_quantity
        )
)

select
    category,
    'usage_period' as evidence_type,
    usage_period_id as evidence_id,
    customer_id,
    period_start as occurred_on,
    cast(priced_amount - billed_amount as decimal(18, 2)) as amount,
    currency,
    meter_code as entitlement_code,
    contract_id,
    case category
        when 'unbilled_overage'
            then
                {{ number_text('billable_quantity') }} || ' ' || meter_code || ' above the limit of '
                || {{ number_text('limit_quantity') }}
                || ' in ' || substr(cast(period_start as {{ dbt.type_string() }}), 1, 7)
        else
            {{ number_text('billable_quantity') }} || ' ' || meter_code || ' used in '
            || substr(cast(period_start as {{ dbt.type_string() }}), 1, 7)
            || ' after its entitlement ended'
    end
    || ': ' || coalesce(price_explanation, 'no price') || ', invoiced '
    || cast(cast(billed_amount as decimal(18, 2)) as {{ dbt.type_string() }}) as explanation
from leaks
