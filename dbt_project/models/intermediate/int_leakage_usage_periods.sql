-- Leaks proven by a usage period (customer, meter, month), judged once the month
-- has been invoiced (monthly in arrears):
--   unbilled_overage   usage above the limit, overage invoiced short or not at all
--   post_expiry_usage  usage with no active entitlement after an earlier one ended
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
    select
        customer_id,
        entitlement_code,
        min(valid_from) as first_granted_on
    from {{ ref('int_entitlement_grants') }}
    where consumed_by = 'usage'
    group by customer_id, entitlement_code
),

-- The overage invoiced for each period (int_invoice_line_matches: by subscription item, or by
-- customer, meter and month).
billed_overage as (
    select
        evidence_id as usage_period_id,
        sum(quantity) as billed_quantity
    from matches
    group by evidence_id
),

classified as (
    select
        periods.*,
        coalesce(billed_overage.billed_quantity, 0) as billed_quantity,
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
),

leaks as (
    select
        classified.*,
        classified.billable_quantity - classified.billed_quantity as unbilled_quantity,
        prices.unit_amount
    from classified
    {{ join_price_book('prices', 'unit', 'classified.meter_code', 'classified.currency') }}
    where
        classified.category is not null
        and classified.billable_quantity > classified.billed_quantity
)

select
    category,
    'usage_period' as evidence_type,
    usage_period_id as evidence_id,
    customer_id,
    period_start as occurred_on,
    {{ price_amount('unbilled_quantity', 'unit_amount') }} as amount,
    currency,
    meter_code as entitlement_code,
    contract_id,
    case category
        when 'unbilled_overage'
            then
                cast(cast(unbilled_quantity as {{ dbt.type_bigint() }}) as {{ dbt.type_string() }})
                || ' ' || meter_code || ' above the limit of '
                || cast(cast(limit_quantity as {{ dbt.type_bigint() }}) as {{ dbt.type_string() }})
                || ' in ' || substr(cast(period_start as {{ dbt.type_string() }}), 1, 7) || ' not invoiced'
        else
            cast(cast(unbilled_quantity as {{ dbt.type_bigint() }}) as {{ dbt.type_string() }})
            || ' ' || meter_code || ' used in ' || substr(cast(period_start as {{ dbt.type_string() }}), 1, 7)
            || ' after the subscription ended, not invoiced'
    end as explanation
from leaks
