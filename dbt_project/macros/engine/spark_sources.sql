{#- The raw layer on Spark (docs/engines.md). `entitlements.transform.spark.export_raw` writes every
    table the dbt sources read (and audit.incremental_keys) as Parquet, one folder per table and a
    file per load, under $ENTITLEMENTS_SPARK_DIR/raw/<schema>/<table>/; this operation registers
    each folder as an external Spark table, replacing the one registered before (dropping an
    external table leaves its files). The CLI runs it before a Spark build (`dbt run-operation
    register_spark_sources --target spark`); on other engines it does nothing.

    replace: the tables ("schema.table") to register again (export_raw's `reshaped`: their files'
    columns changed); the others are registered only when the metastore lacks them, since Spark
    lists a table's files whenever a query reads it. None (by hand): every table again. -#}
{% macro register_spark_sources(replace=none) -%}
    {%- if target.type != 'spark' -%}
        {{ return('') }}
    {%- endif -%}
    {%- set tables = [('audit', 'incremental_keys')] -%}
    {%- for source in graph.sources.values() -%}
        {%- if (source.schema, source.identifier) not in tables -%}
            {%- do tables.append((source.schema, source.identifier)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for schema in tables | map(attribute=0) | unique -%}
        {%- do run_query('create database if not exists ' ~ schema) -%}
    {%- endfor -%}
    {#- A relative location is read against the schema's folder: the raw folder is named from the
        absolute one Spark gives the schema (<spark dir>/warehouse/<schema>.db), so
        ENTITLEMENTS_SPARK_DIR may stay relative (dbt keeps a parse per profile's values). -#}
    {%- set described = run_query('describe database ' ~ tables[0][0]) -%}
    {%- set location = described.rows | selectattr(0, 'equalto', 'Location') | map(attribute=1) | first -%}
    {%- set root = location.rsplit('/', 2)[0] ~ '/raw' -%}
    {%- set registered = [] -%}
    {%- if replace is not none -%}
        {%- for schema in tables | map(attribute=0) | unique -%}
            {%- for row in run_query('show tables in ' ~ schema).rows -%}
                {%- do registered.append(schema ~ '.' ~ row[1]) -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endif -%}
    {%- set created = [] -%}
    {%- for schema, identifier in tables -%}
        {%- set name = schema ~ '.' ~ identifier -%}
        {%- if replace is none or name in replace or name not in registered -%}
            {%- do run_query('drop table if exists ' ~ name) -%}
            {%- do run_query(
                'create table ' ~ name ~ ' using parquet location '
                ~ "'" ~ root ~ '/' ~ schema ~ '/' ~ identifier ~ "'"
            ) -%}
            {%- do created.append(name) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ log(
        'registered ' ~ created | length ~ ' of ' ~ tables | length ~ ' Parquet tables from ' ~ root
        ~ ' (the others were already)', info=true
    ) }}
{%- endmacro %}
