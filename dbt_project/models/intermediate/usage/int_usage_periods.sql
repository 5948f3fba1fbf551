-- De-duplicated usage per customer, meter and allowance period, summed from its days
-- (int_usage_daily). Usage with no active entitlement keeps entitlement_id null.
-- One calendar month can hold several periods of a customer's meter: a grant that ends or
-- starts mid-month (usage before and after it), or an amendment that changes the limit. So the
-- id names the contract line version whose allowance it is, or 'unentitled':
--   <customer_id>:<meter_code>:<YYYY-MM of the period start>:<contract_line_id>/v<version_no>
with

days as (
    select * from {{ ref('int_usage_daily') }}
),

accounts as (
    select * from {{ ref('stg_crm__accounts') }}
),

periods as (
    select
        days.customer_id,
        days.meter_code,
        days.period_start,
        days.period_end,
        days.entitlement_id,
        days.contract_id,
        days.contract_line_id,
        days.version_no,
        days.package_code,
        days.limit_quantity,
        accounts.currency,
        sum(days.quantity) as used_quantity,
        cast(sum(days.event_count) as {{ dbt.type_bigint() }}) as event_count
    from days
    left join accounts
        on days.customer_id = accounts.customer_id
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
