{#- The leakage categories of DOMAIN.md, in the report's order (one column each in fct_leakage_kpis). -#}
{% macro leakage_categories() -%}
    {{ return([
        'unbilled_service',
        'uncovered_service',
        'over_allowance_service',
        'premium_service_on_standard',
        'unbilled_overage',
        'under_billed',
        'post_expiry_usage',
        'unapproved_override',
    ]) }}
{%- endmacro %}
