with

source as (
    select * from {{ source('billing', 'fx_rates') }}
),

renamed as (
    select
        -- ids
        upper(from_currency) as from_currency,
        upper(to_currency) as to_currency,
        -- numerics
        rate,
        -- dates: a monthly average rate, whichever day of its month the file gives
        {{ month_start('rate_month') }} as rate_month
    from source
)

select * from renamed
