-- Every legacy contract segment as extracted, with what the extract checks judge: its key's
-- occurrences (duplicate rows), whether its customer is in the customer master (orphans), which
-- required values are blank and which texts cannot be read. customer_id is the new model's id of
-- its customer (crosswalk), which also decides the migration phase the segment belongs to.
{{ config(tags=['migration_extract']) }}

with

segments as (
    select * from {{ ref('stg_legacy__contract_segments') }}
),

customer_master as (
    select distinct legacy_customer_no from {{ ref('stg_legacy__customers') }}
),

customer_crosswalk as (
    select
        legacy_key as legacy_customer_no,
        min(new_key) as customer_id
    from {{ ref('stg_legacy__crosswalk') }}
    where object_type = 'CUST'
    group by legacy_key
),

judged as (
    select
        segments.*,
        customer_crosswalk.customer_id,
        customer_master.legacy_customer_no is not null as is_customer_in_master,
        count(*) over (
            partition by segments.legacy_contract_id, segments.segment_no_text
        ) as key_occurrences,
        {%- set missing = [] %}
        {%- set unreadable = [] %}
        {%- for field in legacy_contract_fields() %}
            {%- if field.required %}
                {%- do missing.append(
                    "case when segments." ~ field.text ~ " is null then '" ~ field.header ~ " ' else '' end"
                ) %}
            {%- endif %}
            {%- if field.typed %}
                {%- do unreadable.append(
                    "case when segments." ~ field.text ~ " is not null and segments." ~ field.typed
                    ~ " is null then '" ~ field.header ~ " ' else '' end"
                ) %}
            {%- endif %}
        {%- endfor %}
        nullif(trim({{ dbt.concat(missing) }}), '') as missing_values,
        nullif(trim({{ dbt.concat(unreadable) }}), '') as unreadable_values
    from segments
    left join customer_master
        on segments.legacy_customer_no = customer_master.legacy_customer_no
    left join customer_crosswalk
        on segments.legacy_customer_no = customer_crosswalk.legacy_customer_no
)

select
    *,
    {{ in_migration_phase('customer_id') }} as in_phase
from judged
