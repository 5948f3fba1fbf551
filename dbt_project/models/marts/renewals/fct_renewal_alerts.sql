-- The renewal alerts of every contract in fct_renewal_pipeline: 90, 60 and 30 days before
-- end_date (DOMAIN.md). An alert that would fall before the contract's start is not made.
-- A renewed contract keeps its alert dates but none is due (status 'renewed'); the alerts
-- of a contract that ended unrenewed are 'missed'.
with

pipeline as (
    select * from {{ ref('fct_renewal_pipeline') }}
),

alert_offsets as (
    select 90 as days_before_expiry
    union all
    select 60 as days_before_expiry
    union all
    select 30 as days_before_expiry
),

scheduled as (
    select
        pipeline.*,
        alert_offsets.days_before_expiry,
        -- cast: dateadd yields a timestamp on some engines
        cast(
            {{ dbt.dateadd('day', '-1 * alert_offsets.days_before_expiry', 'pipeline.end_date') }} as date
        ) as alert_date
    from pipeline
    cross join alert_offsets
)

select
    contract_id || ':' || {{ dbt.cast('days_before_expiry', dbt.type_string()) }} || 'd' as alert_id,
    contract_id,
    customer_id,
    contract_type,
    start_date,
    end_date,
    days_before_expiry,
    alert_date,
    alert_date <= as_of_date and renewal_window <> 'renewed' as is_due,
    case
        when renewal_window = 'renewed' then 'renewed'
        when renewal_window = 'expired_not_renewed' then 'missed'
        when alert_date <= as_of_date then 'due'
        else 'upcoming'
    end as alert_status,
    renewal_window,
    annual_value,
    value_at_risk,
    currency,
    auto_renew,
    as_of_date
from scheduled
where alert_date >= start_date
