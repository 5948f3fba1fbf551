-- Invoice lines with the customer and invoice date of their invoice, and what each line
-- billed net (docs/pricing.md, net billing): its amount (negative for a credit or a
-- proration credit) less its discounts, less what issued credit notes credited back on it
-- by the as-of date. The invoice's customer id may be the billing system's own (Stripe
-- cus_...): resolved to its CRM account through int_customer_identities; an id that resolves
-- to none is kept as it is. The contract and contract line a line's metadata names are resolved
-- the same way (int_crm_record_ids: a Salesforce id in either form), else kept as written.
with

invoice_lines as (
    select * from {{ ref('stg_billing__invoice_lines') }}
),

invoices as (
    select * from {{ ref('stg_billing__invoices') }}
),

identities as (
    select * from {{ ref('int_customer_identities') }}
),

contract_ids as (
    select * from {{ ref('int_crm_record_ids') }}
    where record_type = 'contract'
),

contract_line_ids as (
    select * from {{ ref('int_crm_record_ids') }}
    where record_type = 'contract_line'
),

credits as (
    select
        invoice_line_id,
        sum(amount) as credited_amount
    from {{ ref('stg_billing__credit_note_lines') }}
    where
        status = 'issued'
        and invoice_line_id is not null
        and credited_on <= {{ as_of_date() }}
    group by invoice_line_id
)

select
    invoice_lines.invoice_line_id,
    invoice_lines.invoice_id,
    coalesce(contract_ids.record_id, invoice_lines.contract_id) as contract_id,
    coalesce(contract_line_ids.record_id, invoice_lines.contract_line_id) as contract_line_id,
    invoice_lines.item_code,
    invoice_lines.reference_id,
    invoice_lines.subscription_item_id,
    invoice_lines.reference_matched_by,
    invoice_lines.line_type,
    invoice_lines.currency,
    invoice_lines.is_proration,
    invoice_lines.quantity,
    invoice_lines.amount,
    invoice_lines.discount_amount,
    invoice_lines.period_start,
    invoice_lines.period_end,
    coalesce(identities.customer_id, invoices.customer_id) as customer_id,
    invoices.invoice_date,
    invoices.invoice_status,
    coalesce(credits.credited_amount, 0) as credited_amount,
    invoice_lines.amount - invoice_lines.discount_amount - coalesce(credits.credited_amount, 0) as net_amount
from invoice_lines
inner join invoices
    on invoice_lines.invoice_id = invoices.invoice_id
left join identities
    on invoices.customer_id = identities.source_id
left join contract_ids
    on invoice_lines.contract_id = contract_ids.source_id
left join contract_line_ids
    on invoice_lines.contract_line_id = contract_line_ids.source_id
left join credits
    on invoice_lines.invoice_line_id = credits.invoice_line_id
where invoices.invoice_status <> 'void'
