with

source as (
    select * from {{ source('billing', 'invoices') }}
),

renamed as (
    select
        -- ids
        invoice_id,
        customer_id,
        -- attributes
        upper(currency) as currency,
        status as invoice_status,
        -- dates
        invoice_date
    from source
)

select * from renamed
