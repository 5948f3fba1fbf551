-- Every customer id the source systems use, where it is used, and the CRM account it
-- resolves to (int_customer_identities): CRM accounts, billing customers (Stripe cus_...),
-- the customers invoices and usage events name (a metering subject may be either). Ids
-- translated by the mapping file at ingest arrive as accounts already. customer_id is null
-- where the id resolves to no account: its records are kept but match no entitlement and no
-- price until it does (fct_unresolved_customer_ids lists those; docs/configuration.md, identity).
with

identities as (
    select * from {{ ref('int_customer_identities') }}
),

used as (
    select
        'crm_accounts' as used_in,
        customer_id as source_id,
        count(*) as record_count,
        min(created_date) as first_seen_on,
        max(created_date) as last_seen_on
    from {{ ref('stg_crm__accounts') }}
    group by customer_id
    union all
    select
        'billing_customers' as used_in,
        customer_ref as source_id,
        count(*) as record_count,
        min(cast(created_at as date)) as first_seen_on,
        max(cast(created_at as date)) as last_seen_on
    from {{ ref('stg_billing__customers') }}
    group by customer_ref
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
        'usage_events' as used_in,
        customer_id as source_id,
        count(*) as record_count,
        min(cast(occurred_at as date)) as first_seen_on,
        max(cast(occurred_at as date)) as last_seen_on
    from {{ ref('stg_usage__events') }}
    group by customer_id
)

select
    used.used_in,
    used.source_id,
    identities.customer_id,
    coalesce(identities.resolved_by, 'unresolved') as resolved_by,
    used.record_count,
    used.first_seen_on,
    used.last_seen_on
from used
left join identities
    on used.source_id = identities.source_id
