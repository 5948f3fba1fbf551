-- One row per service contract, with the contract it renews.
with

contracts as (
    select * from {{ ref('stg_crm__service_contracts') }}
),

final as (
    select
        contract_id,
        customer_id,
        renewal_of_contract_id,
        contract_name,
        contract_number,
        contract_type,
        contract_status,
        currency,
        is_auto_renew,
        start_date,
        end_date
    from contracts
)

select * from final
