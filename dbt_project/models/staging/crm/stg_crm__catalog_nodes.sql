with

source as (
    select * from {{ source('crm', 'catalog') }}
),

renamed as (
    select
        -- ids
        node_code,
        parent_code,
        entitlement_code,
        -- attributes
        node_level,
        node_name,
        entitlement_type,
        unit,
        limit_period,
        consumed_by,
        coverage_hours,
        resets,
        -- numerics
        limit_quantity,
        sla_response_hours
    from source
)

select * from renamed
