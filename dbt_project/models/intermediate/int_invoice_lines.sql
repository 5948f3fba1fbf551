-- Invoice lines with the customer and invoice date of their invoice.
with

invoice_lines as (
    select * from {{ ref('stg_billing__invoice_lines') }}
),

invoices as (
    select * from {{ ref('stg_billing__invoices') }}
)

select
    invoice_lines.*,
    invoices.customer_id,
    invoices.invoice_date,
    invoices.invoice_status
from invoice_lines
inner join invoices
    on invoice_lines.invoice_id = invoices.invoice_id
where invoices.invoice_status <> 'void'
