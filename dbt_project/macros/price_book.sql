{#-
    Pricing from the billing price book, shared by every model that puts a value on a
    quantity (overage, unbilled usage, a package's annual fee): the price of `item_code`
    of `price_type` (unit, annual_fee, premium_surcharge) in `currency` - the contract's -
    joined as `alias`. A left join by default: an item with no price keeps a null
    `alias.unit_amount`, so the amount comes out null for a test to catch, never 0.
-#}
{% macro join_price_book(alias, price_type, item_code, currency, join_type='left') -%}
    {{ join_type }} join {{ ref('stg_billing__price_book') }} as {{ alias }}
        on
            {{ item_code }} = {{ alias }}.item_code
            and {{ currency }} = {{ alias }}.currency
            and {{ alias }}.price_type = '{{ price_type }}'
{%- endmacro %}

{#- A quantity valued at a price-book price, to the cent. -#}
{% macro price_amount(quantity, unit_amount) -%}
    round({{ quantity }} * {{ unit_amount }}, 2)
{%- endmacro %}
