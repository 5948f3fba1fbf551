{#- Primary-key tests scoped to what an incremental build wrote (issue 17). At 10M usage events a
    key test of an event-level model groups every row (seconds); a day of new usage writes a few
    thousand. An incremental model records, in a pre-hook, the keys its incremental branch may
    write (record_incremental_keys) in audit.incremental_keys, declared in entitlements/audit.py
    and created before every dbt command (entitlements/transform/dbt_runner.py); its primary_key
    test, given `incremental_keys: true`, then groups only the rows with those keys
    (incremental_keys_scope), and every row when the model was not built incrementally in the
    same dbt invocation.

    Why that misses no duplicate or null key:
    1. Before an incremental build, the table's keys are unique and not null. The CLI builds
       incrementally only after a recorded build that succeeded (its key tests passed: on every
       row, or, by this same argument, on every row that could break them); after a failed or
       unfinished build, or any change other than usage loads, it passes --full-refresh
       (entitlements/runs/build_plan.py). dbt run by hand outside the CLI gets no such promise:
       give it --full-refresh, or run `dbt test` on its own, which tests every row (below).
    2. An incremental build changes the table only by the model's delete+insert on its key and
       by deletes (a post-hook): a delete makes no duplicate and no null. Every inserted row comes
       from the model's select, whose incremental branch keeps only keys in the set the pre-hook
       recorded: the same macro, rendered in the same node just before the model's SQL, so read
       against the same `this` and inputs (nothing else writes them meanwhile).
    3. So every row of a duplicate key shares the key of a row the build inserted, which is
       recorded: the test groups all of them. A null key is never `in` a set, so none is
       inserted; the test still checks every null.
    4. The pre-hook records keys only when is_incremental() is true in that node: the table
       existed before and this is not --full-refresh (the two facts that decide it, read at run
       time, not at parse time). Otherwise it only clears the model's keys and the test, finding
       none for this invocation, groups every row, as does a test run in another invocation
       (`dbt test` alone). Keys are kept per model and invocation, so a record left by an earlier
       build never scopes a later test.
    The record is a table, not a ref or source: the tests must not add a lineage edge to a
    model (dbt-project-evaluator: no model reads a source but staging). -#}

{% macro incremental_keys_relation() -%}
    {#- Spark's relations have no database (its schemas are its databases): none there. -#}
    {%- set database = target.database if target.database is defined else none -%}
    {{ return(api.Relation.create(database=database, schema='audit', identifier='incremental_keys')) }}
{%- endmacro %}

{#- Pre-hooks of an incremental model, in this order:
    forget_incremental_keys(), then record_incremental_keys(keys): `keys` is SQL selecting the
    model's unique_key column, every key its incremental branch may write (the same macro its
    `where ... in (...)` uses). -#}
{#- forget_incremental_keys: macros/engine/incremental.sql (a delete, none on Spark). -#}

{% macro record_incremental_keys(keys) -%}
    {%- if is_incremental() -%}
        insert into {{ incremental_keys_relation() }} (model_name, key_value, invocation_id)
        select
            '{{ this.identifier }}' as model_name,
            cast(written.{{ config.get('unique_key') }} as {{ dbt.type_string() }}) as key_value,
            '{{ invocation_id }}' as invocation_id
        from ({{ keys }}) as written
    {%- endif -%}
{%- endmacro %}

{#- The rows a scoped primary_key test groups (a where condition on the tested relation): a null
    key, the keys this invocation's incremental build of the model recorded, or every row when it
    recorded none. -#}
{% macro incremental_keys_scope(model, column_name) -%}
    {%- if model.identifier is not defined -%}
        {{ exceptions.raise_compiler_error(
            'primary_key with incremental_keys on ' ~ model ~ ': give it no where config'
        ) }}
    {%- endif -%}
    {%- set recorded -%}
        select recorded.key_value from {{ incremental_keys_relation() }} as recorded
        where
            recorded.model_name = '{{ model.identifier }}'
            and recorded.invocation_id = '{{ invocation_id }}'
    {%- endset -%}
    (
        {{ column_name }} is null
        or {{ column_name }} in ({{ recorded }})
        or not exists ({{ recorded }})
    )
{%- endmacro %}
