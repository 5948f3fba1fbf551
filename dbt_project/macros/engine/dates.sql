{#- Date arithmetic on Spark, the way DuckDB (and dbt's other adapters) count it. The root
    project's spark__ macros come before dbt-spark's (dispatch searches the root project first for
    the dbt namespace), so dbt.datediff and dbt.dateadd in every model get these.

    datediff: a bigint, as on DuckDB, in parentheses (dbt-spark's month count is a bare
    `case ... end + case ... end`, so `datediff(...) / 12` divided only its second term), and
    months and years counted as calendar boundaries crossed: dbt-spark's months_between-based count
    gives 2 for Jan 31 -> Feb 28 (both month ends), DuckDB 1. -#}
{% macro spark__datediff(first_date, second_date, datepart) -%}
    {%- if datepart == 'day' -%}
        cast(datediff(cast({{ second_date }} as date), cast({{ first_date }} as date)) as bigint)
    {%- elif datepart == 'month' -%}
        cast(
            (year({{ second_date }}) * 12 + month({{ second_date }}))
            - (year({{ first_date }}) * 12 + month({{ first_date }}))
        as bigint)
    {%- elif datepart == 'year' -%}
        cast(year({{ second_date }}) - year({{ first_date }}) as bigint)
    {%- else -%}
        {{ exceptions.raise_compiler_error('datediff by ' ~ datepart ~ ' on Spark: add it to macros/engine/dates.sql') }}
    {%- endif -%}
{%- endmacro %}
