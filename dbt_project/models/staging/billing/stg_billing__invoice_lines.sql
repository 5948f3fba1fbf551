with

source as (
    select * from {{ source('billing', 'invoice_lines') }}
),

renamed as (
    select
        -- ids
        invoice_line_id,
        invoice_id,
        contract_id,
        contract_line_id,
        item_code,
        reference_id,
        subscription_item_id,
        -- attributes
        reference_matched_by,
        line_type,
        upper(currency) as currency,
        -- flags: a proration is a credit for unused time or a charge for the rest of a period
        coalesce(is_proration, false) as is_proration,
        -- numerics: amount is before discounts (negative for a credit); discount_amount >= 0
        quantity,
        amount,
        coalesce(discount_amount, 0) as discount_amount,
        -- dates: [period_start, period_end)
        period_start,
        period_end
    from source
)

select * from renamed
