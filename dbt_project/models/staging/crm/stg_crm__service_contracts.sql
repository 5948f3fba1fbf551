with

source as (
    select * from {{ source('crm', 'service_contracts') }}
),

renamed as (
    select
        -- ids
        contract_id,
        customer_id,
        renewal_of_contract_id,
        -- attributes
        contract_name,
        contract_number,
        contract_type,
        status as contract_status,
        upper(currency) as currency,
        coalesce(auto_renew, false) as is_auto_renew,
        -- dates: [start_date, end_date)
        start_date,
        end_date
    from source
)

select * from renamed
