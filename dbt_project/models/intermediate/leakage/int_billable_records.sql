-- Records that CRM or metering says must be billed, one row each, with the leakage category
-- that claims the record when billing does not match it (the denominator of
-- fct_leakage_kpis.misaligned_share). Only records the leakage rules judge are included
-- (billing is monthly in arrears, so deliveries and usage of the as-of month are not yet due):
--   customer_pay_delivery   a customer-pay case or work order          -> unbilled_service
--   contract_line_period    a subscription invoice line, i.e. one billing period of a
--                           contract line version in force that month   -> under_billed
--   usage_period_over_limit metered use above the limit in a month     -> unbilled_overage
with

deliveries as (
    select * from {{ ref('int_service_deliveries') }}
    where
        billing_type = 'customer_pay'
        and excluded_by is null
        and delivered_on < {{ month_start(as_of_date()) }}
),

invoice_lines as (
    select * from {{ ref('int_invoice_lines') }}
    where line_type = 'subscription' and period_start <= {{ as_of_date() }}
),

contract_lines as (
    select * from {{ ref('int_contract_lines') }}
),

usage_periods as (
    select * from {{ ref('int_usage_periods') }}
    where
        period_start < {{ month_start(as_of_date()) }}
        and entitlement_id is not null
        and used_quantity > limit_quantity
),

contract_line_periods as (
    select
        invoice_lines.invoice_line_id,
        invoice_lines.customer_id,
        invoice_lines.period_start,
        invoice_lines.currency
    from invoice_lines
    inner join contract_lines
        on
            invoice_lines.contract_line_id = contract_lines.contract_line_id
            and {{ in_force('contract_lines.valid_from', 'contract_lines.valid_to', 'invoice_lines.period_start') }}
),

records as (
    select
        'customer_pay_delivery' as record_type,
        delivery_id as record_id,
        'unbilled_service' as mismatch_category,
        customer_id,
        delivered_on as occurred_on,
        currency
    from deliveries
    union all
    select
        'contract_line_period' as record_type,
        invoice_line_id as record_id,
        'under_billed' as mismatch_category,
        customer_id,
        period_start as occurred_on,
        currency
    from contract_line_periods
    union all
    select
        'usage_period_over_limit' as record_type,
        usage_period_id as record_id,
        'unbilled_overage' as mismatch_category,
        customer_id,
        period_start as occurred_on,
        currency
    from usage_periods
)

select
    record_type || ':' || record_id as billable_record_id,
    *
from records
