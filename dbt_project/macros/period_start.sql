{#-
    Start of the allowance period containing `day` for an entitlement whose
    periods are anchored at `anchor` (the contract start): calendar-aligned
    months, contract years, or the whole term. Contracts start on the 1st.
    Cast to date because dbt.dateadd yields a timestamp on some engines.
-#}
{% macro period_start(limit_period, anchor, day) -%}
    cast(case {{ limit_period }}
        when 'month' then {{ month_start(day) }}
        when 'year' then {{ dbt.dateadd(
            'month',
            '12 * cast(floor(' ~ dbt.datediff(anchor, day, 'month') ~ ' / 12.0) as ' ~ dbt.type_int() ~ ')',
            anchor
        ) }}
        else {{ anchor }}
    end as date)
{%- endmacro %}

{% macro period_end(limit_period, period_start, term_end) -%}
    cast(case {{ limit_period }}
        when 'month' then {{ dbt.dateadd('month', 1, period_start) }}
        when 'year' then {{ dbt.dateadd('month', 12, period_start) }}
        else {{ term_end }}
    end as date)
{%- endmacro %}

{#- First day of the month of `day`, as a date on every engine. -#}
{% macro month_start(day) -%}
    cast({{ dbt.date_trunc('month', day) }} as date)
{%- endmacro %}

{#- The first day on or after a timestamp: the exclusive end date of validity ending at it (an end
    at 10:00 covers that day; one at midnight does not). -#}
{% macro date_ceil(ts) -%}
    case
        when cast({{ ts }} as date) = {{ ts }} then cast({{ ts }} as date)
        else cast({{ dbt.dateadd('day', 1, 'cast(' ~ ts ~ ' as date)') }} as date)
    end
{%- endmacro %}
