with

source as (
    select * from {{ source('audit', 'built_loads') }}
),

renamed as (
    select
        -- ids
        load_id,
        -- attributes
        table_name
    from source
)

select * from renamed
