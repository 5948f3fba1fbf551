{#-
    Start of the allowance period containing `day` for an entitlement whose
    periods are anchored at `anchor` (the contract start): calendar-aligned
    months, contract years, or the whole term. Contracts start on the 1st.
-#}
{% macro period_start(limit_period, anchor, day) -%}
    case {{ limit_period }}
        when 'month' then {{ dbt.date_trunc('month', day) }}
        when 'year' then {{ dbt.dateadd(
            'month',
            '12 * floor(' ~ dbt.datediff(anchor, day, 'month') ~ ' / 12)',
            anchor
        ) }}
        else {{ anchor }}
    end
{%- endmacro %}

{% macro period_end(limit_period, period_start, term_end) -%}
    case {{ limit_period }}
        when 'month' then {{ dbt.dateadd('month', 1, period_start) }}
        when 'year' then {{ dbt.dateadd('month', 12, period_start) }}
        else {{ term_end }}
    end
{%- endmacro %}
