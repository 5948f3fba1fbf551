-- Every customer id the source systems use, and the CRM account it stands for: a CRM account
-- stands for itself; a billing customer (Stripe cus_...) for the account its record names
-- (mapping file kind customer, or the metadata key entitlements.yml declares). Usage and
-- invoices may carry either; int_invoice_lines and int_usage_events_deduplicated resolve them
-- here. A billing customer with no account keeps customer_id null and is listed, with every
-- record that uses an unresolved id, in fct_unresolved_customer_ids.
with

accounts as (
    select * from {{ ref('stg_crm__accounts') }}
),

billing_customers as (
    select * from {{ ref('stg_billing__customers') }}
),

identities as (
    select
        customer_id as source_id,
        'crm' as source_system,
        customer_id,
        'crm_account' as resolved_by,
        1 as preference
    from accounts
    union all
    select
        customer_ref as source_id,
        'billing' as source_system,
        customer_id,
        case when customer_id is not null then 'billing_customer' end as resolved_by,
        2 as preference
    from billing_customers
),

ranked as (
    select
        *,
        row_number() over (partition by source_id order by preference) as rank_in_id
    from identities
)

select
    source_id,
    source_system,
    customer_id,
    resolved_by
from ranked
where rank_in_id = 1
