with

source as (
    select * from {{ source('billing', 'customers') }}
),

renamed as (
    select
        -- ids
        customer_ref,
        customer_id,
        -- attributes
        name as customer_name,
        email,
        upper(currency) as currency,
        -- timestamps (UTC)
        created_at
    from source
)

select * from renamed
