{#- The event-level usage models (int_usage_events_deduplicated, int_usage_events_attributed) are
    incremental with delete+insert on event_id (macros/incremental_usage.sql). Spark's Parquet
    tables have neither delete nor merge (those need Delta or Iceberg), and insert_overwrite
    replaces whole partitions, which event ids are not: on Spark they are rebuilt in full as tables
    every build (docs/engines.md). is_incremental() is then false, so the pre-hooks record no keys
    and their key tests group every row. -#}
{% macro usage_events_materialization() -%}
    {{ return(adapter.dispatch('usage_events_materialization', 'entitlements')()) }}
{%- endmacro %}

{% macro default__usage_events_materialization() -%}
    {{ return('incremental') }}
{%- endmacro %}

{% macro spark__usage_events_materialization() -%}
    {{ return('table') }}
{%- endmacro %}

{#- Clearing a model's recorded keys: a delete on engines that have it; on Spark the event models
    are tables rebuilt in full (above), which record no keys, so there is nothing to clear. -#}
{% macro forget_incremental_keys() -%}
    {{ return(adapter.dispatch('forget_incremental_keys', 'entitlements')()) }}
{%- endmacro %}

{% macro default__forget_incremental_keys() -%}
    delete from {{ incremental_keys_relation() }} where model_name = '{{ this.identifier }}'
{%- endmacro %}

{% macro spark__forget_incremental_keys() -%}
{%- endmacro %}

{#- Replacing a validated phase's rows in a migration mart (dbt_project.yml, marts/migration): a
    delete before the append where the engine has one; on Spark the marts are partitioned by phase
    and insert_overwrite replaces the phase's partition, so nothing is deleted first. -#}
{% macro forget_migration_phase() -%}
    {{ return(adapter.dispatch('forget_migration_phase', 'entitlements')()) }}
{%- endmacro %}

{% macro default__forget_migration_phase() -%}
    delete from {{ this }} where phase = {{ migration_run('phase') }}
{%- endmacro %}

{% macro spark__forget_migration_phase() -%}
{%- endmacro %}
