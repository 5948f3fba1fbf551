{#-
    The validity rule, once: a record valid over the half-open interval [valid_from, valid_to) is
    in force at `at` (a date or timestamp expression) when valid_from <= at < valid_to. The start
    day (or instant) is covered, the end is not. Renders, parenthesised:

        in_force('valid_from', 'valid_to', 'as_of')
            -> (valid_from <= as_of and (valid_to is null or as_of < valid_to))

    A null valid_to is open-ended (in force from valid_from on), unless null_to_unbounded=false:
    then the end is required and a null end is never in force (SQL's null comparison), as where
    a null end means an unknown one (a legacy segment's unreadable end date, a usage period no
    grant covers). null_from_unbounded=true makes a null valid_from "since always" (a price with
    no date).
-#}
{% macro in_force(valid_from, valid_to, at, null_to_unbounded=true, null_from_unbounded=false) -%}
    (
        {%- if null_from_unbounded -%}
            ({{ valid_from }} is null or {{ valid_from }} <= {{ at }})
        {%- else -%}
            {{ valid_from }} <= {{ at }}
        {%- endif %} and {% if null_to_unbounded -%}
            ({{ valid_to }} is null or {{ at }} < {{ valid_to }})
        {%- else -%}
            {{ at }} < {{ valid_to }}
        {%- endif -%}
    )
{%- endmacro %}
