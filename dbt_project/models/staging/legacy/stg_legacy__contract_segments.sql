-- One row per legacy contract segment as landed: the contract header is repeated on every
-- segment (a line version). Typed columns are null where the text cannot be read; the *_text
-- columns keep what the legacy system wrote, so the extract checks can tell blank from unreadable.
with

source as (
    select * from {{ source('legacy', 'contracts') }}
),

renamed as (
    select
        -- ids
        trim(contr_no) as legacy_contract_id,
        {{ dbt.safe_cast('trim(seg_no)', dbt.type_int()) }} as segment_no,
        trim(cust_no) as legacy_customer_no,
        trim(prev_contr_no) as previous_legacy_contract_id,
        trim(prod_cd) as legacy_product_code,
        trim(equip_serial) as equipment_serial,
        trim(site_no) as legacy_site_no,
        -- codes
        upper(trim(contr_type)) as legacy_contract_type,
        upper(trim(status)) as legacy_status,
        upper(trim(curr_cd)) as currency,
        upper(trim(auto_rnw)) as auto_renew_flag,
        -- numerics: the fee is in the currency's minor units
        {{ dbt.safe_cast('trim(qty)', dbt.type_numeric()) }} as quantity,
        {{ dbt.safe_cast('trim(fee_minor)', dbt.type_bigint()) }} as fee_minor_units,
        -- dates: ends are inclusive, as the legacy system keeps them
        {{ legacy_date('start_dt') }} as start_date,
        {{ legacy_date('end_dt') }} as end_date_inclusive,
        {{ legacy_date('seg_from') }} as segment_from,
        {{ legacy_date('seg_to') }} as segment_to_inclusive,
        -- allowances stored on the segment: a number, UNL (unlimited) or blank (not included)
        {%- for column in var("legacy_allowance_columns") %}
            upper(trim({{ column }})) as {{ column }},
        {%- endfor %}
        -- the text as landed
        seg_no as segment_no_text,
        qty as quantity_text,
        fee_minor as fee_minor_text,
        start_dt as start_date_text,
        end_dt as end_date_text,
        seg_from as segment_from_text,
        seg_to as segment_to_text,
        -- lineage
        _source_file,
        _load_id
    from source
)

select * from renamed
