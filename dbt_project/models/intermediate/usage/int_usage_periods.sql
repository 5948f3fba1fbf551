-- De-duplicated usage per customer, meter and allowance period (see
-- int_usage_events_attributed). Usage with no active entitlement keeps entitlement_id null.
-- One calendar month can hold several periods of a customer's meter: a grant that ends or
-- starts mid-month (usage before and after it), or an amendment that changes the limit. So the
-- id names the contract line version whose allowance it is, or 'unentitled':
--   <customer_id>:<meter_code>:<YYYY-MM of the period start>:<contract_line_id>/v<version_no>
with

events as (
    select * from {{ ref('int_usage_events_attributed') }}
),

accounts as (
    select * from {{ ref('stg_crm__accounts') }}
),

periods as (
    select
        events.customer_id,
        events.meter_code,
        events.period_start,
        events.period_end,
        events.entitlement_id,
        events.contract_id,
        events.contract_line_id,
        events.version_no,
        events.package_code,
        events.limit_quantity,
        accounts.currency,
        sum(events.quantity) as used_quantity,
        count(*) as event_count
    from events
    left join accounts
        on events.customer_id = accounts.customer_id
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
)

select
    customer_id || ':' || meter_code || ':'
    || substr(cast(period_start as {{ dbt.type_string() }}), 1, 7) || ':'
    || coalesce(
        contract_line_id || '/v' || cast(version_no as {{ dbt.type_string() }}),
        'unentitled'
    ) as usage_period_id,
    *
from periods
