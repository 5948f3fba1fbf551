-- The price book as the pricing macro (macros/price_book.sql) reads it: each price with the
-- dates it is in force, [valid_from, valid_to), and each tier with its lower bound. A price
-- (item, currency, price type, package; package null = every package) is in force from its
-- valid_from (null = since always) until the next valid_from of the same key. Tiers of a
-- graduated or volume price cover (tier_from, tier_up_to]; the last tier has no upper bound.
with

prices as (
    select * from {{ ref('stg_billing__price_book') }}
),

minor_units as (
    select * from {{ ref('currency_minor_units') }}
),

starts as (
    select distinct
        item_code,
        currency,
        price_type,
        package_code,
        valid_from
    from prices
),

in_force as (
    select
        item_code,
        currency,
        price_type,
        package_code,
        valid_from,
        lead(valid_from) over (
            partition by item_code, currency, price_type, package_code
            order by case when valid_from is null then 0 else 1 end, valid_from
        ) as valid_to
    from starts
)

select
    prices.item_code,
    prices.currency,
    prices.price_type,
    prices.package_code,
    prices.charge_model,
    prices.valid_from,
    in_force.valid_to,
    coalesce(
        lag(prices.tier_up_to) over (
            partition by
                prices.item_code, prices.currency, prices.price_type, prices.package_code, prices.valid_from
            order by case when prices.tier_up_to is null then 1 else 0 end, prices.tier_up_to
        ),
        0
    ) as tier_from,
    prices.tier_up_to,
    prices.unit_amount,
    prices.flat_amount,
    prices.package_size,
    prices.rounding,
    prices.free_units,
    -- amounts are rounded to the currency's minor unit (0 decimals for JPY); 2 if unknown
    coalesce(minor_units.minor_unit_exponent, 2) as minor_unit_exponent
from prices
inner join in_force
    on
        prices.item_code = in_force.item_code
        and prices.currency = in_force.currency
        and prices.price_type = in_force.price_type
        and {{ null_safe_equal('prices.package_code', 'in_force.package_code') }}
        and {{ null_safe_equal('prices.valid_from', 'in_force.valid_from') }}
left join minor_units
    on prices.currency = minor_units.currency
