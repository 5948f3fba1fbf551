-- Customer ids that reach no CRM account, with how many records carry them: usage events,
-- invoices, billing customers. Their records are kept (raw, staging) but cannot be priced or
-- matched to entitlements until the id resolves: add the account, the mapping row, or the
-- billing customer's metadata key (docs/configuration.md, identity).
with

identities as (
    select * from {{ ref('int_customer_identities') }}
),

used as (
    select
        'usage_events' as used_in,
        customer_id as source_id,
        count(*) as record_count,
        min(cast(occurred_at as date)) as first_seen_on,
        max(cast(occurred_at as date)) as last_seen_on
    from {{ ref('stg_usage__events') }}
    group by customer_id
    union all
    select
        'invoices' as used_in,
        customer_id as source_id,
        count(*) as record_count,
        min(invoice_date) as first_seen_on,
        max(invoice_date) as last_seen_on
    from {{ ref('stg_billing__invoices') }}
    group by customer_id
    union all
    select
        'billing_customers' as used_in,
        customer_ref as source_id,
        count(*) as record_count,
        min(cast(created_at as date)) as first_seen_on,
        max(cast(created_at as date)) as last_seen_on
    from {{ ref('stg_billing__customers') }}
    where customer_id is null
    group by customer_ref
)

select
    used.used_in,
    used.source_id,
    used.record_count,
    used.first_seen_on,
    used.last_seen_on
from used
left join identities
    on used.source_id = identities.source_id
where identities.customer_id is null
