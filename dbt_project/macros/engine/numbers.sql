{#- round() of a double to `places` decimals, the same on every engine. DuckDB rounds the double's
    exact binary value half away from zero: 18679 of 20000 is 93.395, whose double is
    93.39499999..., so 93.39. Spark rounds the double's shortest decimal text (93.395) half up:
    93.40. On Spark the exact comparison is made in doubles: with n = |x| * 10^places and k =
    floor(n), x rounds up when |x| * 10^places - (k + 0.5) >= 0, computed without rounding error
    by splitting |x| into two halves of 26 bits (Veltkamp), each multiplied by 10^places exactly. -#}
{% macro round_double(expression, places) -%}
    {{ return(adapter.dispatch('round_double', 'entitlements')(expression, places)) }}
{%- endmacro %}

{% macro default__round_double(expression, places) -%}
    round({{ expression }}, {{ places }})
{%- endmacro %}

{% macro spark__round_double(expression, places) -%}
    {%- set x = 'abs(cast(' ~ expression ~ ' as double))' -%}
    {%- set scale = 'cast(1e' ~ places ~ ' as double)' -%}
    {%- set split = '(' ~ x ~ ' * cast(134217729 as double))' -%}
    {%- set high = '(' ~ split ~ ' - (' ~ split ~ ' - ' ~ x ~ '))' -%}
    {%- set low = '(' ~ x ~ ' - ' ~ high ~ ')' -%}
    {%- set whole = 'floor(' ~ x ~ ' * ' ~ scale ~ ')' -%}
    (
        signum(cast({{ expression }} as double))
        * (
            {{ whole }}
            + case
                when ({{ high }} * {{ scale }} - ({{ whole }} + 0.5d)) + {{ low }} * {{ scale }} >= 0 then 1
                else 0
            end
        )
        / {{ scale }}
    )
{%- endmacro %}
