with

source as (
    select * from {{ source('legacy', 'product_map') }}
),

renamed as (
    select
        -- ids: an old product code and the catalog package it becomes
        trim(old_prod_cd) as legacy_product_code,
        trim(new_package_cd) as package_code,
        -- attributes
        trim(descr) as description,
        -- lineage
        _source_file
    from source
)

select * from renamed
