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
