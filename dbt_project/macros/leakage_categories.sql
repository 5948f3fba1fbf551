{#-
    The leakage categories of DOMAIN.md in the report's order (one column each in fct_leakage_kpis),
    as the seed leakage_categories defines them (the one definition: dbt, the reports and the
    relationships tests read it). Read from the warehouse, where the build loads the seed before
    any model depending on it: a model calling this macro depends on the seed
    (`-- depends_on: {{ ref('leakage_categories') }}`, and its unit tests list the seed as an
    input without rows: dbt then uses the seed's file). Where the seed is not loaded yet
    (compiling or linting against a scratch warehouse), DuckDB reads the seed's file instead.
    While dbt parses (execute is false) the list is empty.
-#}
{% macro leakage_categories() -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set seed = (graph.get('nodes') or {}).get('seed.' ~ project_name ~ '.leakage_categories') -%}
    {%- if seed -%}
        {%- set relation = adapter.get_relation(database=seed.database, schema=seed.schema, identifier=seed.alias) -%}
    {%- else -%}
        {#- A unit test: dbt gives it no graph. The seed is loaded (dbt mocks only inputs that exist);
            seeds land in the schema staging (dbt_project.yml). -#}
        {%- set relation = adapter.get_relation(
            database=target.database, schema=generate_schema_name('staging', none), identifier='leakage_categories'
        ) -%}
    {%- endif -%}
    {%- if relation is not none -%}
        {%- set source = relation -%}
    {%- elif seed and adapter.type() == 'duckdb' -%}
        {%- set source = "read_csv('" ~ seed.root_path ~ "/" ~ seed.original_file_path ~ "', header = true)" -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error(
            "The seed leakage_categories is not in the warehouse: `dbt build` (or `dbt seed`) loads it."
        ) }}
    {%- endif -%}
    {%- set categories = run_query('select category from ' ~ source ~ ' order by display_order') -%}
    {{ return(categories.columns[0].values() | list) }}
{%- endmacro %}
