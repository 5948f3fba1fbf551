-- Renewable contracts (service contracts and subscriptions) by renewal window on
-- the as-of date. A contract ends on end_date (exclusive): one ending on or before
-- the as-of date and not renewed is a missed renewal ('expired').
with

contracts as (
    select * from {{ ref('stg_crm__service_contracts') }}
    where contract_type in ('service_contract', 'subscription') and contract_status <> 'cancelled'
),

contract_lines as (
    select * from {{ ref('stg_crm__contract_lines') }}
),

renewals as (
    select
        renewal_of_contract_id as contract_id,
        min(contract_id) as renewed_by_contract_id
    from contracts
    where renewal_of_contract_id is not null
    group by renewal_of_contract_id
),

closing_value as (
    -- The annual value at the end of the term: line versions still in force then.
    select
        contract_lines.contract_id,
        sum(contract_lines.annual_price * contract_lines.quantity) as annual_value
    from contract_lines
    inner join contracts
        on contract_lines.contract_id = contracts.contract_id
    where contract_lines.valid_to = contracts.end_date
    group by contract_lines.contract_id
),

measured as (
    select
        contracts.*,
        renewals.renewed_by_contract_id,
        coalesce(closing_value.annual_value, 0) as annual_value,
        {{ dbt.datediff(as_of_date(), 'contracts.end_date', 'day') }} as days_to_expiry  -- noqa: LT05
    from contracts
    left join renewals
        on contracts.contract_id = renewals.contract_id
    left join closing_value
        on contracts.contract_id = closing_value.contract_id
)

select
    contract_id,
    customer_id,
    contract_type,
    start_date,
    end_date,
    days_to_expiry,
    case
        when renewed_by_contract_id is not null then 'renewed'
        when days_to_expiry <= 0 then 'expired'
        when days_to_expiry <= 30 then '0-30'
        when days_to_expiry <= 60 then '31-60'
        when days_to_expiry <= 90 then '61-90'
        else '90+'
    end as renewal_window,
    cast(annual_value as decimal(18, 2)) as annual_value,
    currency,
    is_auto_renew as auto_renew,
    renewed_by_contract_id,
    {{ as_of_date() }} as as_of_date
from measured
