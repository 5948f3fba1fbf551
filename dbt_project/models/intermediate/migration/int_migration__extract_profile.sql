-- The contracts extract profiled per field, for the phase: rows, blanks and texts that cannot be
-- read (macro legacy_contract_fields). A few are records to fix; a field blank or unreadable in
-- a large share of rows is a damaged extract (a dropped column, a changed date format), which
-- the extract check stops (macro is_systematic).
{{ config(tags=['migration_extract']) }}

with

segments as (
    select * from {{ ref('int_migration__legacy_segments') }}
    where in_phase
),

profiled as (
    {%- for field in legacy_contract_fields() %}
        select
            '{{ field.header }}' as field_name,
            {{ field.required }} as is_required,
            count(*) as records,
            sum(case when {{ field.text }} is null then 1 else 0 end) as blank_values,
            {%- if field.typed %}
                sum(case when {{ field.text }} is not null and {{ field.typed }} is null then 1 else 0 end)
            {%- else %}
                0
            {%- endif %} as unreadable_values
        from segments
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
)

select
    *,
    is_required and {{ is_systematic('blank_values', 'records') }} as is_blank_systematic,
    {{ is_systematic('unreadable_values', 'records') }} as is_unreadable_systematic
from profiled
