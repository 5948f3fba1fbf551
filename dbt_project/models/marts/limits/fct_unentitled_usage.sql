-- Usage no entitlement covers, per customer, meter and month (int_usage_periods with no grant in
-- force), and why: a leak only when it follows an expired grant (post_expiry_usage, in
-- fct_revenue_leakage when not invoiced); otherwise usage this model alone shows, so it is not
-- lost from sight: a customer id that resolves to no account (fct_unresolved_customer_ids), or an
-- account no contract line or subscription ever entitled to the meter (a contract missing from
-- the CRM export, a line rejected at ingest, pay-as-you-go usage billed without a contract).
with

periods as (
    select * from {{ ref('int_usage_periods') }}
    where entitlement_id is null
),

accounts as (
    select customer_id from {{ ref('dim_customers') }}
),

usage_grants as (
    {{ first_usage_grants() }}
)

select
    periods.usage_period_id,
    periods.customer_id,
    periods.meter_code,
    periods.period_start,
    periods.period_end,
    periods.used_quantity,
    periods.event_count,
    case
        when accounts.customer_id is null then 'customer_unresolved'
        when usage_grants.first_granted_on <= periods.period_start then 'after_expiry'
        else 'never_entitled'
    end as finding
from periods
left join accounts
    on periods.customer_id = accounts.customer_id
left join usage_grants
    on
        periods.customer_id = usage_grants.customer_id
        and periods.meter_code = usage_grants.entitlement_code
