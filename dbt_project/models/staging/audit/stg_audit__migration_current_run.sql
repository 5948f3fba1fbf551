with

source as (
    select * from {{ source('audit', 'migration_current_run') }}
),

renamed as (
    select
        -- ids
        run_id,
        phase,
        -- booleans
        is_remainder,
        -- dates
        as_of_date
    from source
)

select * from renamed
