with

source as (
    select * from {{ source('crm', 'contract_lines') }}
),

renamed as (
    select
        -- ids
        contract_line_id,
        version_no,
        contract_id,
        package_code,
        asset_id,
        location_id,
        -- attributes
        change_reason,
        -- numerics
        quantity,
        annual_price,
        -- dates: [valid_from, valid_to)
        valid_from,
        valid_to
    from source
)

select * from renamed
