with

source as (
    select * from {{ source('crm', 'accounts') }}
),

renamed as (
    select
        -- ids
        customer_id,
        -- attributes
        customer_name,
        country,
        upper(currency) as currency,
        segment,
        -- dates
        created_date
    from source
)

select * from renamed
