-- One row per CRM account: the customer every mart names by customer_id.
with

accounts as (
    select * from {{ ref('stg_crm__accounts') }}
),

final as (
    select
        customer_id,
        customer_name,
        segment,
        country,
        currency,
        created_date
    from accounts
)

select * from final
