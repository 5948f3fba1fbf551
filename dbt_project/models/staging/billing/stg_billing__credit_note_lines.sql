with

source as (
    select * from {{ source('billing', 'credit_note_lines') }}
),

renamed as (
    select
        -- ids
        credit_note_line_id,
        credit_note_id,
        invoice_id,
        invoice_line_id,
        -- attributes
        status,
        reason,
        upper(currency) as currency,
        -- numerics: the credit, net of the line's discounts, >= 0
        amount,
        -- dates
        credited_on
    from source
)

select * from renamed
