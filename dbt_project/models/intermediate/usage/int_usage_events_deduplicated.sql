-- Usage is delivered at least once: keep the first delivery of each event id. The event's
-- customer id may be a CRM account or a billing customer (entitlements.yml usage_events):
-- resolved to the CRM account through int_customer_identities; an unresolved id is kept as it
-- is (it matches no entitlement) and listed in fct_unresolved_customer_ids.
-- Incremental (macros/incremental_usage.sql): a build redoes only the event ids a new or removed
-- load touches, ranking every delivery of each again. The pre-hooks record those ids for the key
-- test (macros/incremental_keys.sql).
-- depends_on: {{ ref('int_usage_load_changes') }}
{{ config(
    materialized=usage_events_materialization(),
    unique_key='event_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    pre_hook=[
        "{{ forget_incremental_keys() }}",
        "{{ record_incremental_keys(usage_events_touched(ref('stg_usage__events'))) }}"
    ],
    post_hook="{{ delete_removed_usage_loads() }}"
) }}

with

events as (
    select * from {{ ref('stg_usage__events') }}
    {%- if is_incremental() %}
        where event_id in ({{ usage_events_touched(ref('stg_usage__events')) }})
    {%- endif %}
),

identities as (
    select * from {{ ref('int_customer_identities') }}
),

ranked as (
    select
        *,
        -- Deliveries alike in time and load (twice in one file) are told apart by their content,
        -- so the same raw rows keep the same delivery whatever order they landed in. Nulls last
        -- said explicitly: DuckDB's default, Spark sorts them first (sent_at, distinct_value).
        row_number() over (
            partition by event_id
            order by
                sent_at asc nulls last, loaded_at asc nulls last, load_id asc nulls last,
                customer_id asc nulls last, meter_code asc nulls last, occurred_at asc nulls last,
                quantity asc nulls last, distinct_value asc nulls last
        ) as delivery_no
    from events
)

select
    ranked.event_id,
    coalesce(identities.customer_id, ranked.customer_id) as customer_id,
    ranked.meter_code,
    ranked.quantity,
    ranked.distinct_value,
    ranked.occurred_at,
    cast(ranked.occurred_at as date) as occurred_on,
    ranked.sent_at,
    ranked.load_id
from ranked
left join identities
    on ranked.customer_id = identities.source_id
where ranked.delivery_no = 1
