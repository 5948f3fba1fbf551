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
