with

source as (
    select * from {{ source('audit', 'migration_phase_accounts') }}
),

renamed as (
    select
        -- ids
        phase,
        customer_id
    from source
)

select * from renamed
