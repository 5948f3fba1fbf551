{#- The incremental usage models (int_usage_events_deduplicated, int_usage_events_attributed) redo
    only the events a build touches: those delivered by a load new since the last build, and those
    whose kept delivery came from a load since removed (a corrected file superseded, a load
    reverted). int_usage_load_changes says which loads are which. A build that changes anything
    else (CRM, billing, configuration, as-of date, the project) is a full refresh: the CLI decides
    (entitlements/runs/build_plan.py). A model using these refs them in a depends_on comment: they
    render only in its incremental branch, which dbt's parse never takes. -#}

{#- The event ids to redo: `deliveries` (a relation with event_id and load_id) for the new loads,
    and the model's own rows kept from a removed load. -#}
{% macro usage_events_touched(deliveries) -%}
    select deliveries.event_id
    from {{ deliveries }} as deliveries
    inner join {{ ref('int_usage_load_changes') }} as changes
        on deliveries.load_id = changes.load_id
    where changes.change_type = 'new'
    union
    select kept.event_id
    from {{ this }} as kept
    inner join {{ ref('int_usage_load_changes') }} as changes
        on kept.load_id = changes.load_id
    where changes.change_type = 'removed'
{%- endmacro %}

{#- The event ids int_usage_events_attributed redoes, from `deduplicated` (its ref): those new or
    removed loads touch and, for a meter not summed (var meter_aggregations), every event of each
    touched customer and meter, since what an event adds to its period depends on the events
    before it. The model selects them and its pre-hook records them for its key test. -#}
{% macro usage_events_redone(deduplicated) -%}
    {%- set aggregations = var('meter_aggregations', {}) -%}
    with

    touched as (
        {{ usage_events_touched(deduplicated) }}
    ){% if aggregations %},

    touched_meters as (
        select
            customer_id,
            meter_code
        from {{ deduplicated }}
        where event_id in (select event_id from touched)
        union
        select
            customer_id,
            meter_code
        from {{ this }}
        where event_id in (select event_id from touched)
    )

    select event_id from touched
    union
    select deduplicated.event_id
    from {{ deduplicated }} as deduplicated
    inner join touched_meters
        on
            deduplicated.customer_id = touched_meters.customer_id
            and deduplicated.meter_code = touched_meters.meter_code
    where deduplicated.meter_code in ({{ "'" ~ aggregations.keys() | join("', '") ~ "'" }})
    {%- else %}

    select event_id from touched
    {%- endif %}
{%- endmacro %}

{#- A post-hook: after the touched events are redone, a row still kept from a removed load is an
    event no current load delivers any more. -#}
{% macro delete_removed_usage_loads() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where load_id in (
            select load_id from {{ ref('int_usage_load_changes') }}
            where change_type = 'removed'
        )
    {%- endif -%}
{%- endmacro %}
