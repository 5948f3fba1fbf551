{#-
    The one pricing function (docs/pricing.md): prices each row of the relation `quantities`
    (a CTE name) with the price book (int_price_book). `quantities` has the columns
        pricing_key  unique per row; the result is keyed by it
        item_code    the entitlement code (unit, premium_surcharge) or package code (annual_fee)
        package_code the package it was sold in; null when none (only the fallback applies)
        currency, price_type, priced_on (the date whose price is in force), quantity
    and the result one row per key with a price: pricing_key, charge_model, amount (rounded to
    the currency's minor unit) and price_explanation ("3000 = 3 packages of 1000 (rounded up)
    x 2.00 USD = 6.00 USD"). A key with no price in force has no row: callers left-join, so its
    amount is null for a test to catch, never 0.
    A package's own price wins over the fallback (package_code null) in force on the same date.
-#}
{% macro priced_quantities(quantities) -%}
    select
        pricing_key,
        max(charge_model) as charge_model,
        {{ round_to_minor_unit('sum(tier_amount)', 'max(minor_unit_exponent)') }} as amount,
        case max(charge_model)
            when 'graduated' then {{ ordered_listagg('tier_text', "' + '", 'tier_from') }}
            else max(tier_text)
        end
        || ' ' || max(currency) || ' = '
        || {{ money_text(round_to_minor_unit('sum(tier_amount)', 'max(minor_unit_exponent)'), 'max(minor_unit_exponent)') }}
        || ' ' || max(currency) as price_explanation
    from (
        select
            *,
            case
                when not is_reached then null
                when charge_model = 'graduated'
                    then {{ number_text('least(billable, coalesce(tier_up_to, billable)) - tier_from') }}
                    || ' at ' || {{ number_text('unit_amount', 2) }}
                    || case when flat_amount > 0 then ' + ' || {{ number_text('flat_amount', 2) }} || ' flat' else '' end
                when charge_model = 'package'
                    then {{ free_units_text() }} || {{ number_text('billable') }} || ' = '
                    || cast(cast(packages as {{ dbt.type_bigint() }}) as {{ dbt.type_string() }})
                    || ' packages of ' || {{ number_text('package_size') }}
                    || ' (rounded ' || rounding || ') x ' || {{ number_text('unit_amount', 2) }}
                when charge_model = 'flat' then 'flat fee ' || {{ number_text('unit_amount', 2) }}
                when charge_model = 'volume'
                    then {{ number_text('billable') }} || ' at the volume tier '
                    || case
                        when tier_up_to is null then 'above ' || {{ number_text('tier_from') }}
                        else 'up to ' || {{ number_text('tier_up_to') }}
                    end
                    || ' x ' || {{ number_text('unit_amount', 2) }}
                    || case when flat_amount > 0 then ' + ' || {{ number_text('flat_amount', 2) }} || ' flat' else '' end
                else {{ free_units_text() }} || {{ number_text('billable') }} || ' x ' || {{ number_text('unit_amount', 2) }}
            end as tier_text,
            case charge_model
                when 'per_unit' then billable * unit_amount
                when 'package' then packages * unit_amount
                when 'flat' then case when quantity > 0 then unit_amount else 0 end
                when 'graduated'
                    then case
                        when billable > tier_from
                            then (least(billable, coalesce(tier_up_to, billable)) - tier_from) * unit_amount
                            + flat_amount
                        else 0
                    end
                when 'volume' then case when is_reached and billable > 0 then billable * unit_amount + flat_amount else 0 end
            end as tier_amount
        from (
            select
                *,
                -- tiers: the quantity reaches into this tier (graduated) or falls in it (volume);
                -- a single-row price is always reached
                case charge_model
                    when 'graduated' then billable > tier_from or tier_from = 0
                    when 'volume'
                        then (billable > tier_from or tier_from = 0)
                        and (tier_up_to is null or billable <= tier_up_to)
                    else true
                end as is_reached,
                -- whole packages as a decimal: a division gives a double on some engines, and one
                -- double in the amount's case would turn every amount into an inexact double
                cast(case
                    when charge_model <> 'package' then null
                    when rounding = 'down' then floor(billable / package_size)
                    else ceil(billable / package_size)
                end as decimal(18, 0)) as packages
            from (
                select
                    quantities.pricing_key,
                    quantities.quantity,
                    quantities.currency,
                    prices.charge_model,
                    prices.tier_from,
                    prices.tier_up_to,
                    prices.unit_amount,
                    prices.flat_amount,
                    prices.package_size,
                    prices.rounding,
                    prices.free_units,
                    prices.minor_unit_exponent,
                    {{ greatest_of('quantities.quantity - prices.free_units', '0') }} as billable,
                    dense_rank() over (
                        partition by quantities.pricing_key
                        order by case when prices.package_code is null then 1 else 0 end
                    ) as specificity
                from {{ quantities }} as quantities
                inner join {{ ref('int_price_book') }} as prices
                    on
                        quantities.item_code = prices.item_code
                        and quantities.currency = prices.currency
                        and quantities.price_type = prices.price_type
                        and (prices.package_code is null or quantities.package_code = prices.package_code)
                        and {{ in_force(
                            'prices.valid_from', 'prices.valid_to', 'quantities.priced_on', null_from_unbounded=true
                        ) }}
            ) as candidates
            where specificity = 1
        ) as tiers
    ) as texts
    group by pricing_key
{%- endmacro %}

{#-
    `amount` rounded to the currency's minor unit: 0 decimals when `exponent` is 0 (JPY), else 2
    (the marts hold amounts to the cent: a three-decimal currency is rounded to 2). Each branch
    is cast on its own: a case over round(x, 0) and round(x, 2) takes the scale of the first.
-#}
{% macro round_to_minor_unit(amount, exponent) -%}
    case
        when {{ exponent }} = 0 then cast(round({{ amount }}, 0) as decimal(18, 2))
        else cast(round({{ amount }}, 2) as decimal(18, 2))
    end
{%- endmacro %}

{#-
    A number as text for an explanation: whole numbers without decimals ("12000"), others as
    written ("0.002"); with `decimals`, at least that many ("2.00").
-#}
{% macro number_text(value, decimals=0) -%}
    case
        when {{ value }} = floor({{ value }} * {{ 10 ** decimals }}) / {{ 10 ** decimals }}
            then cast(cast({{ value }} as decimal(18, {{ decimals }})) as {{ dbt.type_string() }})
        else cast(cast({{ value }} as double) as {{ dbt.type_string() }})
    end
{%- endmacro %}

{#- "<quantity> - <free units> free = " when free units apply, else "". -#}
{% macro free_units_text() -%}
    case
        when free_units > 0
            then {{ number_text('quantity') }} || ' - ' || {{ number_text('free_units') }} || ' free = '
        else ''
    end
{%- endmacro %}

{#- An amount as text with its currency's decimals: "24.00", "1058" for JPY (`exponent` 0). -#}
{% macro money_text(amount, exponent) -%}
    case
        when {{ exponent }} = 0 then cast(cast({{ amount }} as decimal(18, 0)) as {{ dbt.type_string() }})
        else cast({{ amount }} as {{ dbt.type_string() }})
    end
{%- endmacro %}

{#- `measure` texts joined by `delimiter` in the order of `order_by`, on every engine. -#}
{% macro ordered_listagg(measure, delimiter, order_by) -%}
    {{ return(adapter.dispatch('ordered_listagg', 'entitlements')(measure, delimiter, order_by)) }}
{%- endmacro %}

{% macro default__ordered_listagg(measure, delimiter, order_by) -%}
    {{ dbt.listagg(measure, delimiter, 'order by ' ~ order_by) }}
{%- endmacro %}

{#- Spark's listagg ignores the order: sort (key, text) pairs, then keep the texts. -#}
{% macro spark__ordered_listagg(measure, delimiter, order_by) -%}
    array_join(
        transform(array_sort(collect_list(struct({{ order_by }} as k, {{ measure }} as v))), x -> x.v),
        {{ delimiter }}
    )
{%- endmacro %}

{#- The larger of two numbers, on every engine. -#}
{% macro greatest_of(a, b) -%}
    case when {{ a }} > {{ b }} then {{ a }} else {{ b }} end
{%- endmacro %}

{#- a = b, where two nulls are equal too (a key part that may be empty). -#}
{% macro null_safe_equal(a, b) -%}
    ({{ a }} = {{ b }} or ({{ a }} is null and {{ b }} is null))
{%- endmacro %}
