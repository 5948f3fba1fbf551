with

source as (
    select * from {{ source('billing', 'price_book') }}
    where {{ current_load() }}
),

renamed as (
    select
        -- ids
        item_code,
        upper(currency) as currency,
        price_type,
        -- numerics
        unit_amount
    from source
)

select * from renamed
