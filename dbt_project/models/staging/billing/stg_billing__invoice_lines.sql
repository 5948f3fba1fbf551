with

source as (
    select * from {{ source('billing', 'invoice_lines') }}
    where {{ current_load() }}
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
        -- numerics
        quantity,
        amount,
        -- dates: [period_start, period_end)
        period_start,
        period_end
    from source
)

select * from renamed
