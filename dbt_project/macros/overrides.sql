{#-
    The approved-override rule, once: only an approved override (approved_by set) raises a limit,
    by its extra_quantity, for its contract's entitlement (contract_id, entitlement_code), on the
    days it is in force, [valid_from, valid_to). An unapproved one raises nothing: it is leakage
    (int_leakage_overrides). Renders a query of the approved overrides; given `on` (a date
    expression), only those in force that day. Used wherever a limit is measured:
    int_service_deliveries_attributed and int_allowance_periods (joined to each day with
    in_force), and active_entitlements (on its as-of date).
-#}
{% macro approved_overrides(on=none) -%}
    select * from {{ ref('stg_crm__overrides') }}
    where
        approved_by is not null
        {%- if on is not none %}
        and {{ in_force('valid_from', 'valid_to', on, null_to_unbounded=false) }}
        {%- endif %}
{%- endmacro %}
