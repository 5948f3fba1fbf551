with

source as (
    select * from {{ source('audit', 'ingest_manifest') }}
    -- a re-sent file skipped by checksum is recorded without a load of its own
    where load_id is not null
),

renamed as (
    select
        -- ids
        load_id,
        superseded_by,
        -- attributes
        source_file,
        table_name,
        status,
        -- numerics
        row_count,
        -- timestamps
        loaded_at
    from source
)

select * from renamed
