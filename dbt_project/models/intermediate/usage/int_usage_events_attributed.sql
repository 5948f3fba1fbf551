-- Each de-duplicated usage event attributed to the entitlement active when it
-- occurred, to the second (late events count in their true period; a subscription ending at
-- 10:00 does not cover 10:05), with its allowance period.
-- Usage with no active entitlement keeps entitlement_id null.
-- Incremental (macros/incremental_usage.sql): a build redoes the events a new or removed load
-- touches; for a meter not summed, every event of each customer's touched meter, since what an
-- event adds to its period depends on the events before it. The pre-hooks record those ids for the
-- key test (macros/incremental_keys.sql).
-- depends_on: {{ ref('int_usage_load_changes') }}
{{ config(
    materialized=usage_events_materialization(),
    unique_key='event_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    pre_hook=[
        "{{ forget_incremental_keys() }}",
        "{{ record_incremental_keys(usage_events_redone(ref('int_usage_events_deduplicated'))) }}"
    ],
    post_hook="{{ delete_removed_usage_loads() }}"
) }}

{%- set aggregations = var('meter_aggregations', {}) %}

with

{% if is_incremental() -%}
redone as (
    {{ usage_events_redone(ref('int_usage_events_deduplicated')) }}
),

{% endif -%}
events as (
    select * from {{ ref('int_usage_events_deduplicated') }}
    {%- if is_incremental() %}
        where event_id in (select event_id from redone)
    {%- endif %}
),

grants as (
    select * from {{ ref('int_entitlement_grants') }}
    where consumed_by = 'usage'
),

attributed as (
    select
        events.event_id,
        events.occurred_on,
        events.customer_id,
        events.meter_code,
        events.quantity,
        events.distinct_value,
        events.occurred_at,
        events.load_id,
        grants.entitlement_id,
        grants.contract_id,
        grants.contract_line_id,
        grants.version_no,
        grants.package_code,
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
            order by grants.precedence_rank
        ) as preference
    from events
    left join grants
        on
            events.customer_id = grants.customer_id
            and events.meter_code = grants.entitlement_code
            and {{ in_force(
                'grants.valid_from_at', 'grants.valid_to_at', 'events.occurred_at'
            ) }}
)
,

-- Meters not summed (entitlements.yml meters.*.aggregation) turn each event into what it adds
-- to its period's use, so every later sum is that use: max, what a reading adds to the highest
-- before it (use = the peak); latest, the change from the reading before (use = the last
-- reading, which may go down); unique_count, 1 for a value's first event (use = how many).
contributed as (
    select
        *,
        {% if aggregations -%}
            case
                {%- for code, aggregation in aggregations.items() %}
                    {%- if aggregation == 'max' %}
                        when meter_code = '{{ code }}'
                            then greatest(
                                quantity - coalesce(max(quantity) over (
                                    partition by customer_id, meter_code, entitlement_id, period_start
                                    order by occurred_at, event_id
                                    rows between unbounded preceding and 1 preceding
                                ), 0),
                                0
                            )
                    {%- elif aggregation == 'latest' %}
                        when meter_code = '{{ code }}'
                            then quantity - coalesce(lag(quantity) over (
                                partition by customer_id, meter_code, entitlement_id, period_start
                                order by occurred_at, event_id
                            ), 0)
                    {%- else %}
                        when meter_code = '{{ code }}'
                            then case
                                when row_number() over (
                                    partition by
                                        customer_id, meter_code, entitlement_id, period_start, distinct_value
                                    order by occurred_at, event_id
                                ) = 1 then 1
                                else 0
                            end
                    {%- endif %}
                {%- endfor %}
                else quantity
            end
        {%- else -%}
            quantity
        {%- endif %} as contribution
    from attributed
    where preference = 1
)

select
    event_id,
    occurred_on,
    customer_id,
    meter_code,
    contribution as quantity,
    quantity as reading,
    entitlement_id,
    contract_id,
    contract_line_id,
    version_no,
    package_code,
    limit_quantity,
    period_start,
    {{ period_end('limit_period', 'period_start', 'contract_end_date') }} as period_end,
    load_id
from contributed
-- Stored in customer order so a one-customer lookup (entitlements check) reads few row groups.
order by customer_id, occurred_on
