{#- Business hours (var business_hours, set by entitlements.yml service_deliveries.business_hours):
    whether a UTC timestamp falls outside them, in the calendar's time zone. null var: never. -#}
{% macro is_outside_business_hours(ts) -%}
    {%- set calendar = var('business_hours', none) -%}
    {%- if calendar is none -%}
        false
    {%- else -%}
        {%- set local = local_time(ts, calendar['time_zone']) -%}
        not (
            {{ iso_day_of_week(local) }} in ({{ calendar['days'] | join(', ') }})
            and hour({{ local }}) * 60 + minute({{ local }}) >= {{ calendar['start_minute'] }}
            and hour({{ local }}) * 60 + minute({{ local }}) < {{ calendar['end_minute'] }}
        )
    {%- endif -%}
{%- endmacro %}

{#- A UTC timestamp as wall-clock time in a time zone (IANA name). -#}
{% macro local_time(ts, time_zone) -%}
    {{ return(adapter.dispatch('local_time', 'entitlements')(ts, time_zone)) }}
{%- endmacro %}

{% macro default__local_time(ts, time_zone) -%}
    timezone('{{ time_zone }}', timezone('UTC', {{ ts }}))
{%- endmacro %}

{% macro spark__local_time(ts, time_zone) -%}
    from_utc_timestamp({{ ts }}, '{{ time_zone }}')
{%- endmacro %}

{#- ISO day of the week: 1 = Monday ... 7 = Sunday. -#}
{% macro iso_day_of_week(ts) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'entitlements')(ts)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(ts) -%}
    isodow({{ ts }})
{%- endmacro %}

{% macro spark__iso_day_of_week(ts) -%}
    (dayofweek({{ ts }}) + 5) % 7 + 1
{%- endmacro %}

{#- The exclusion conditions on a delivery (var delivery_exclusions, entitlements.yml
    service_deliveries.exclude_when, validated there): the text of the first that holds, or
    null. Each condition is SQL over the delivery's columns, e.g. priority = 'Internal'. -#}
{% macro delivery_exclusion() -%}
    {%- set conditions = var('delivery_exclusions', []) -%}
    {%- if conditions -%}
        case
            {%- for condition in conditions %}
                when coalesce(({{ condition }}), false)
                    then '{{ dbt.escape_single_quotes(condition) }}'
            {%- endfor %}
        end
    {%- else -%}
        cast(null as {{ dbt.type_string() }})
    {%- endif -%}
{%- endmacro %}
