{#-
    `amount` (in `currency`) converted to the reporting currency (var reporting_currency)
    with `fx_rate`, the month's rate from int_fx_rates_to_reporting joined by the caller.
    The reporting currency converts at exactly 1; a missing rate gives null, never 0 or 1,
    so a converted total can never silently mix or drop a currency.
-#}
{% macro to_reporting_currency(amount, currency, fx_rate) -%}
    cast(case
        when {{ currency }} = '{{ var("reporting_currency") }}' then {{ amount }}
        else round({{ amount }} * {{ fx_rate }}, 2)
    end as decimal(18, 2))
{%- endmacro %}

{#- The rate used for `currency`: 1 for the reporting currency itself, else `fx_rate` (may be null). -#}
{% macro reporting_fx_rate(currency, fx_rate) -%}
    cast(case
        when {{ currency }} = '{{ var("reporting_currency") }}' then 1
        else {{ fx_rate }}
    end as decimal(18, 8))
{%- endmacro %}
