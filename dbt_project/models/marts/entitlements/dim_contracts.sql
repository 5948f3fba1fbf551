-- One row per contract, with the contract it renews: the CRM's service contracts, and the
-- Salesforce Entitlement records of their own that grant like one (int_entitlement_grants names
-- such a record as the grant's contract), so every grant's contract is here, by its name.
with

contracts as (
    select * from {{ ref('stg_crm__service_contracts') }}
),

entitlement_records as (
    select * from {{ ref('stg_crm__entitlements') }}
    where package_code is not null and contract_id is null
),

accounts as (
    select * from {{ ref('stg_crm__accounts') }}
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
    union all
    select
        records.entitlement_id as contract_id,
        records.customer_id,
        cast(null as {{ dbt.type_string() }}) as renewal_of_contract_id,
        records.entitlement_name as contract_name,
        cast(null as {{ dbt.type_string() }}) as contract_number,
        'entitlement' as contract_type,
        -- Salesforce's Inactive is not started yet: active in our model, as for contracts
        case when records.entitlement_status = 'expired' then 'expired' else 'active' end as contract_status,
        accounts.currency,
        false as is_auto_renew,
        records.start_date,
        records.end_date
    from entitlement_records as records
    left join accounts
        on records.customer_id = accounts.customer_id
)

select * from final
