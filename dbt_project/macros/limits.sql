{#-
    True where `unit` is measured as the peak in the period (seats, licences: a reading of
    how many are in use) rather than summed (incidents, visits, API calls, GB). The units
    are listed in the var peak_units; the comparison ignores case.
-#}
{% macro is_peak_unit(unit) -%}
    {%- set peak_units = var('peak_units', []) -%}
    {%- if peak_units -%}
        coalesce(lower({{ unit }}) in (
            {%- for peak_unit in peak_units -%}
                '{{ peak_unit | lower }}'{{ ', ' if not loop.last }}
            {%- endfor -%}
        ), false)
    {%- else -%}
        false
    {%- endif -%}
{%- endmacro %}

{#- Each customer's first day a grant of each usage meter was in force: usage no grant covers after
    that day is post-expiry (int_leakage_usage_periods' post_expiry_usage, fct_unentitled_usage's
    after_expiry); before it, or with no grant ever, it was never entitled. -#}
{% macro first_usage_grants() -%}
    select
        customer_id,
        entitlement_code,
        min(valid_from) as first_granted_on
    from {{ ref('int_entitlement_grants') }}
    where consumed_by = 'usage'
    group by customer_id, entitlement_code
{%- endmacro %}
