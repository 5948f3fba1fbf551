-- Invoice lines with the customer and invoice date of their invoice, and what each line
-- billed net (docs/pricing.md, net billing): its amount (negative for a credit or a
-- proration credit) less its discounts, less what issued credit notes credited back on it
-- by the as-of date. The invoice's customer id may be the billing system's own (Stripe
-- cus_...): resolved to its CRM account through int_customer_identities; an id that resolves
-- to none is kept as it is.
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
    invoice_lines.*,
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
left join credits
    on invoice_lines.invoice_line_id = credits.invoice_line_id
where invoices.invoice_status <> 'void'
