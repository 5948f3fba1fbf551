-- De-duplicated usage per customer, meter and allowance period, attributed to the
-- entitlement active when each event occurred (late events count in their true
-- period). Usage with no active entitlement keeps entitlement_id null.
with

events as (
    select * from {{ ref('int_usage_events_deduplicated') }}
),

grants as (
    select * from {{ ref('int_entitlement_grants') }}
    where consumed_by = 'usage'
),

accounts as (
    select * from {{ ref('stg_crm__accounts') }}
),

attributed as (
    select
        events.customer_id,
        events.meter_code,
        events.quantity,
        grants.entitlement_id,
        grants.contract_id,
        grants.contract_line_id,
        grants.limit_quantity,
        case
            when grants.entitlement_id is null then {{ month_start('events.occurred_on') }}
            else {{ period_start('grants.limit_period', 'grants.contract_start_date', 'events.occurred_on') }}
        end as period_start,
        case
            when grants.entitlement_id is null then 'month'
            else grants.limit_period
        end as limit_period,
        grants.contract_end_date,
        row_number() over (
            partition by events.event_id
            order by
                case when grants.limit_quantity is null then 0 else 1 end,
                grants.limit_quantity desc,
                grants.contract_line_id asc
        ) as preference
    from events
    left join grants
        on
            events.customer_id = grants.customer_id
            and events.meter_code = grants.entitlement_code
            and events.occurred_on >= grants.valid_from
            and events.occurred_on < grants.valid_to
),

periods as (
    select
        attributed.customer_id,
        attributed.meter_code,
        attributed.period_start,
        {{ period_end('attributed.limit_period', 'attributed.period_start', 'attributed.contract_end_date') }}
            as period_end,
        attributed.entitlement_id,
        attributed.contract_id,
        attributed.contract_line_id,
        attributed.limit_quantity,
        accounts.currency,
        sum(attributed.quantity) as used_quantity,
        count(*) as event_count
    from attributed
    left join accounts
        on attributed.customer_id = accounts.customer_id
    where attributed.preference = 1
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9
)

select
    customer_id || ':' || meter_code || ':'
    || substr(cast(period_start as {{ dbt.type_string() }}), 1, 7) as usage_period_id,
    *
from periods
