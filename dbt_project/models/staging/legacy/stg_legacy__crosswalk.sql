with

source as (
    select * from {{ source('legacy', 'crosswalk') }}
),

renamed as (
    select
        -- ids: a legacy key (customer, contract or site) and the new model's id for it
        upper(trim(obj_type)) as object_type,
        trim(legacy_key) as legacy_key,
        trim(new_key) as new_key,
        -- lineage
        _source_file
    from source
)

select * from renamed
