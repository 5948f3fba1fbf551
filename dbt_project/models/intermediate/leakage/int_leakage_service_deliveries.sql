-- Leaks proven by a service delivery (case or work order). One delivery is one
-- leak at most; the rules claim it in this order:
--   1. unbilled_service       customer-pay delivery with no service invoice line
--   2. uncovered_service      free delivery, no entitlement covered it that day, asset and site
--   3. over_allowance_service free delivery beyond the allowance of the entitlement it consumed
--   4. premium_service_on_standard  premium response or after-hours dispatch above the
--                              entitled level with no premium invoice line
-- Billing is monthly in arrears, so rules 1 and 4 only judge months before the as-of month.
-- Which invoice lines bill which delivery: int_invoice_line_matches.
with

deliveries as (
    select * from {{ ref('int_service_deliveries_attributed') }}
    where delivered_on <= {{ as_of_date() }}
),

matches as (
    select * from {{ ref('int_invoice_line_matches') }}
    where evidence_type = 'delivery'
),

-- A delivery is billed when the lines matching it billed something net: a line credited back
-- in full (credit note) or cancelled by a discount bills nothing.
billed_services as (
    select evidence_id from matches
    where line_type = 'service'
    group by evidence_id
    having sum(net_amount) > 0
),

billed_premiums as (
    select evidence_id from matches
    where line_type = 'premium'
    group by evidence_id
    having sum(net_amount) > 0
),

classified as (
    select
        deliveries.*,
        deliveries.delivered_on < {{ month_start(as_of_date()) }} as is_invoiceable,
        (
            (deliveries.is_after_hours and deliveries.coverage_hours = 'business_hours')
            or (
                deliveries.response_hours <= {{ var('premium_response_hours') }}
                and deliveries.sla_response_hours > {{ var('premium_response_hours') }}
            )
        ) as is_premium_delivery,
        billed_services.evidence_id is not null as is_service_billed,
        billed_premiums.evidence_id is not null as is_premium_billed
    from deliveries
    left join billed_services
        on deliveries.delivery_id = billed_services.evidence_id
    left join billed_premiums
        on deliveries.delivery_id = billed_premiums.evidence_id
),

categorised as (
    select
        *,
        case
            when billing_type = 'customer_pay'
                then case when is_invoiceable and not is_service_billed then 'unbilled_service' end
            when entitlement_id is null then 'uncovered_service'
            when consumption_rank > effective_limit_quantity then 'over_allowance_service'
            when is_premium_delivery and is_invoiceable and not is_premium_billed
                then 'premium_service_on_standard'
        end as category
    from classified
),

-- One delivery priced: the service's unit price (or premium surcharge) in its package, else the
-- fallback, in force on the day it was delivered.
to_price as (
    select
        delivery_id as pricing_key,
        service_code as item_code,
        package_code,
        currency,
        case when category = 'premium_service_on_standard' then 'premium_surcharge' else 'unit' end as price_type,
        delivered_on as priced_on,
        1 as quantity
    from categorised
    where category is not null
),

prices as (
    {{ priced_quantities('to_price') }}
),

leaks as (
    select
        categorised.*,
        prices.amount,
        prices.price_explanation
    from categorised
    -- left: a leak with no price stays, with a null amount that fct_revenue_leakage's tests fail on
    left join prices
        on categorised.delivery_id = prices.pricing_key
    where categorised.category is not null
)

select
    category,
    'service_delivery' as evidence_type,
    delivery_id as evidence_id,
    customer_id,
    delivered_on as occurred_on,
    amount,
    currency,
    service_code as entitlement_code,
    contract_id,
    case category
        when 'unbilled_service'
            then
                'Customer-pay ' || service_code || ' ' || delivery_id || ' on '
                || cast(delivered_on as {{ dbt.type_string() }}) || ' was never invoiced'
        when 'uncovered_service'
            then
                service_code || ' delivered free on ' || cast(delivered_on as {{ dbt.type_string() }})
                -- the asset and site where the delivery names them (a Salesforce case often names neither)
                || coalesce(' to asset ' || asset_id, '') || coalesce(' at ' || location_id, '')
                || ' with no active entitlement covering it'
        when 'over_allowance_service'
            then
                service_code || ' number ' || cast(consumption_rank as {{ dbt.type_string() }})
                || ' in the period from ' || cast(period_start as {{ dbt.type_string() }})
                || ' exceeds the allowance of '
                || cast(cast(effective_limit_quantity as {{ dbt.type_int() }}) as {{ dbt.type_string() }})
                || ' on ' || package_code
        else
            case
                when is_after_hours and coverage_hours = 'business_hours'
                    then 'After-hours dispatch'
                else cast(response_hours as {{ dbt.type_string() }}) || '-hour response'
            end
            || ' on a ' || cast(cast(sla_response_hours as {{ dbt.type_int() }}) as {{ dbt.type_string() }})
            || '-hour ' || coverage_hours || ' ' || package_code || ' entitlement; no premium invoiced'
    end
    || ': ' || coalesce(price_explanation, 'no price') as explanation
from leaks
