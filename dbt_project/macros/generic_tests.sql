{#- Small generic tests, written here because dbt hub packages cannot be installed. -#}

{% test non_negative(model, column_name) %}
    select * from {{ model }} where {{ column_name }} < 0
{% endtest %}

{% test unique_combination(model, columns) %}
    select {{ columns | join(', ') }}
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endtest %}

{% test positive(model, column_name) %}
    select * from {{ model }} where {{ column_name }} <= 0
{% endtest %}

{% test one_row(model) %}
    select count(*) as row_count from {{ model }} having count(*) <> 1
{% endtest %}

{#- A primary key: unique and never null, in one query (one test node instead of two per model). -#}
{% test primary_key(model, column_name) %}
    select {{ column_name }}
    from {{ model }}
    group by {{ column_name }}
    having count(*) > 1 or {{ column_name }} is null
{% endtest %}
