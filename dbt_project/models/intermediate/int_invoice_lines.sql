-- Invoice lines with the customer and invoice date of their invoice. The invoice's customer id
-- may be the billing system's own (Stripe cus_...): resolved to its CRM account through
-- int_customer_identities; an id that resolves to none is kept as it is.
with

invoice_lines as (
    select * from {{ ref('stg_billing__invoice_lines') }}
),

invoices as (
    select * from {{ ref('stg_billing__invoices') }}
),

identities as (
    select * from {{ ref('int_customer_identities') }}
)

select
    invoice_lines.*,
    coalesce(identities.customer_id, invoices.customer_id) as customer_id,
    invoices.invoice_date,
    invoices.invoice_status
from invoice_lines
inner join invoices
    on invoice_lines.invoice_id = invoices.invoice_id
left join identities
    on invoices.customer_id = identities.source_id
where invoices.invoice_status <> 'void'
