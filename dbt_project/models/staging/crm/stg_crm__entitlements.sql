with

source as (
    select * from {{ source('crm', 'entitlements') }}
),

renamed as (
    select
        -- ids
        entitlement_id,
        customer_id,
        contract_id,
        contract_line_id,
        asset_id,
        package_code,
        -- attributes
        entitlement_name,
        entitlement_type,
        status as entitlement_status,
        coalesce(is_per_incident, false) as is_per_incident,
        -- numerics
        cases_per_entitlement,
        remaining_cases,
        -- dates: [start_date, end_date)
        start_date,
        end_date
    from source
)

select * from renamed
