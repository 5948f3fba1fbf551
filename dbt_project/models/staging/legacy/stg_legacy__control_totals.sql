with

source as (
    select * from {{ source('legacy', 'control_totals') }}
),

renamed as (
    select
        -- ids
        trim(file_name) as file_name,
        -- numerics: records in the file and the sum of its amounts, as the legacy system counted
        {{ dbt.safe_cast('trim(record_count)', dbt.type_bigint()) }} as record_count,
        {{ dbt.safe_cast('trim(hash_total)', dbt.type_bigint()) }} as hash_total,
        -- attributes
        trim(extract_ts) as extracted_at_text,
        -- lineage
        _source_file
    from source
)

select * from renamed
