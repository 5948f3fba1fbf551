-- Renewable contracts (signed service contracts and subscriptions) by renewal window on
-- the as-of date. end_date is exclusive: days_to_expiry = end_date - as-of, so a contract
-- ending on the as-of date (0 days) is no longer in force and, without a successor, is a
-- missed renewal ('expired_not_renewed'); 1-30 days is '0-30'. Contracts whose term
-- ended more than var renewal_lookback_days before the as-of date are no longer listed, nor are
-- open-ended (evergreen) contracts: with no end date, nothing is due to renew.
-- Amounts are in the contract's currency; the uplift is null when the currency changed.
with

service_contracts as (
    select * from {{ ref('stg_crm__service_contracts') }}
),

contract_lines as (
    select * from {{ ref('int_contract_lines') }}
),

contracts as (
    -- Drafts are not signed yet, cancelled contracts do not renew: neither is listed
    -- nor counts as a renewal of another contract.
    select * from service_contracts
    where
        contract_type in ('service_contract', 'subscription')
        and contract_status not in ('cancelled', 'draft')
),

successors as (
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

valued as (
    select
        contracts.*,
        cast(coalesce(closing_value.annual_value, 0) as decimal(18, 2)) as annual_value
    from contracts
    left join closing_value
        on contracts.contract_id = closing_value.contract_id
),

measured as (
    select
        valued.*,
        successors.renewed_by_contract_id,
        previous_term.contract_id as found_previous_contract_id,
        previous_term.currency as previous_currency,
        previous_term.annual_value as previous_annual_value,
        {{ dbt.datediff(as_of_date(), 'valued.end_date', 'day') }} as days_to_expiry  -- noqa: LT05
    from valued
    left join successors
        on valued.contract_id = successors.contract_id
    left join valued as previous_term
        on valued.renewal_of_contract_id = previous_term.contract_id
),

windowed as (
    select
        *,
        case
            when renewed_by_contract_id is not null then 'renewed'
            when days_to_expiry <= 0 then 'expired_not_renewed'
            when days_to_expiry <= 30 then '0-30'
            when days_to_expiry <= 60 then '31-60'
            when days_to_expiry <= 90 then '61-90'
            else 'later'
        end as renewal_window,
        case
            when renewal_of_contract_id is null then 'no_previous_term'
            when found_previous_contract_id is null then 'previous_term_not_found'
            when coalesce(previous_currency, '') <> coalesce(currency, '') then 'currency_changed'
            when previous_annual_value = 0 then 'previous_value_zero'
        end as uplift_null_reason
    from measured
)

select
    contract_id,
    customer_id,
    contract_type,
    start_date,
    end_date,
    days_to_expiry,
    renewal_window,
    annual_value,
    currency,
    is_auto_renew as auto_renew,
    -- The value that renews only if someone acts: not renewed, due within 90 days or already
    -- ended, and not set to renew automatically. Auto-renew contracts carry no risk here.
    case
        when
            renewal_window in ('0-30', '31-60', '61-90', 'expired_not_renewed')
            and not is_auto_renew
            then annual_value
        else cast(0 as decimal(18, 2))
    end as value_at_risk,
    renewal_of_contract_id as previous_contract_id,
    previous_currency,
    previous_annual_value,
    case
        when uplift_null_reason is null or uplift_null_reason = 'previous_value_zero'
            then cast(annual_value - previous_annual_value as decimal(18, 2))
    end as uplift_amount,
    case
        when uplift_null_reason is null
            then cast(
                round(100.0 * (annual_value - previous_annual_value) / previous_annual_value, 2) as decimal(18, 2)
            )
    end as uplift_pct,
    uplift_null_reason,
    renewed_by_contract_id,
    {{ as_of_date() }} as as_of_date
from windowed
where end_date is not null and days_to_expiry >= -{{ var('renewal_lookback_days') }}
