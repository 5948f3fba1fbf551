{#- Small generic tests, written here because dbt hub packages cannot be installed. -#}

{% test unique_combination(model, columns) %}
    select {{ columns | join(', ') }}
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endtest %}

{% test one_row(model) %}
    select count(*) as row_count from {{ model }} having count(*) <> 1
{% endtest %}

{#- A primary key: unique and never null, in one query (one test node instead of two per model).
    incremental_keys: true on an incremental model that records the keys it writes (its pre-hooks,
    macros/incremental_keys.sql): after an incremental build, only the rows with those keys are
    grouped (every duplicate and null is among them); after any other build, every row. -#}
{% test primary_key(model, column_name, incremental_keys=false) %}
    select {{ column_name }}
    from {{ model }}
    {%- if incremental_keys %}
    where {{ incremental_keys_scope(model, column_name) }}
    {%- endif %}
    group by {{ column_name }}
    having count(*) > 1 or {{ column_name }} is null
{% endtest %}

{#- A model's single-column rules in one test and one scan: not_null, non_negative (>= 0) and
    positive (> 0), each a list of columns (the predicates of dbt's not_null and of the tests
    non_negative and positive this replaced). One row per failing (rule, column) pair, with how
    many of the model's rows break it: dbt counts the pairs, and
    entitlements.quality.gates.record_dbt_tests records one audit.dq_results row per pair
    (expectation `<rule>_<model>_<column>`, the names the single-column tests had), running the
    compiled test again to learn which pairs failed. Columns whose rule has another severity or a
    `where` go in a second column_rules test with that config. Nulls: non_negative and positive
    pass a null (as before); not_null owns them. An empty model passes. -#}
{% test column_rules(model, not_null=[], non_negative=[], positive=[]) %}
    {%- set checks = [] -%}
    {%- for column in not_null %}{% do checks.append(('not_null', column, column ~ ' is null')) %}{% endfor -%}
    {%- for column in non_negative %}{% do checks.append(('non_negative', column, column ~ ' < 0')) %}{% endfor -%}
    {%- for column in positive %}{% do checks.append(('positive', column, column ~ ' <= 0')) %}{% endfor -%}
    {%- if not checks -%}
        {{ exceptions.raise_compiler_error('column_rules on ' ~ model ~ ': name at least one column') }}
    {%- endif %}
    with

    counted as (
        select
        {%- for rule, column, failing in checks %}
            count(case when {{ failing }} then 1 end) as failures_{{ loop.index }}{{ ',' if not loop.last }}
        {%- endfor %}
        from {{ model }}
    )
    {% for rule, column, failing in checks %}
    select
        '{{ rule }}' as rule_name,
        '{{ column }}' as column_name,
        failures_{{ loop.index }} as failures
    from counted
    where failures_{{ loop.index }} > 0
    {{ 'union all' if not loop.last }}
    {%- endfor %}
{% endtest %}
