with

source as (
    select * from {{ source('billing', 'price_book') }}
),

renamed as (
    select
        -- ids
        item_code,
        upper(currency) as currency,
        price_type,
        package_code,
        -- how the price applies (docs/pricing.md)
        coalesce(charge_model, 'per_unit') as charge_model,
        coalesce(rounding, 'up') as rounding,
        -- numerics
        unit_amount,
        tier_up_to,
        coalesce(flat_amount, 0) as flat_amount,
        package_size,
        coalesce(free_units, 0) as free_units,
        -- dates
        valid_from
    from source
)

select * from renamed
