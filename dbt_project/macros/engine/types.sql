{#- Column types named the DuckDB way (contracts' data_type: varchar) on engines that spell them
    otherwise. dbt builds an enforced contract's empty schema with dbt.cast(null, data_type); Spark
    has no varchar without a length, its text type is string. The root project's spark__cast
    comes before dbt-spark's (dispatch searches the root project first for the dbt namespace). -#}
{% macro spark__cast(field, type) -%}
    cast({{ field }} as {{ spark_type(type) }})
{%- endmacro %}

{% macro spark_type(type) -%}
    {%- set spelled = type | trim | lower -%}
    {{- return({'varchar': 'string', 'text': 'string', 'integer': 'int'}.get(spelled, type)) -}}
{%- endmacro %}

{#- The unit tests' fixture rows (dbt casts each value to its column's type) and dbt.safe_cast. -#}
{% macro spark__safe_cast(field, type) -%}
    {#- as dbt-spark's: struct, array and map values are written unquoted -#}
    {%- set spelled = type | trim | lower -%}
    {%- set unquoted = field is string and spelled.startswith(('struct', 'array', 'map')) -%}
    cast({{ field.strip('"').strip("'") if unquoted else field }} as {{ spark_type(type) }})
{%- endmacro %}
