with

source as (
    select * from {{ source('crm', 'overrides') }}
),

renamed as (
    select
        -- ids
        override_id,
        customer_id,
        contract_id,
        entitlement_code,
        -- attributes
        reason,
        nullif(trim(approved_by), '') as approved_by,
        -- numerics
        extra_quantity,
        -- dates: [valid_from, valid_to)
        valid_from,
        valid_to,
        approved_at
    from source
)

select * from renamed
