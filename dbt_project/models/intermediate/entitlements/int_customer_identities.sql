-- Every customer id the source systems use, and the CRM account it stands for: a CRM account
-- stands for itself (in either form of a Salesforce id: int_crm_record_ids); a billing customer
-- (Stripe cus_...) for the account its record names (mapping file kind customer, or the
-- metadata key entitlements.yml declares), if the CRM export has that account. Usage and
-- invoices may carry either; int_invoice_lines and int_usage_events_deduplicated resolve them
-- here. A billing customer naming no account, or one the CRM export lacks (a mistyped
-- metadata value, another object's id), keeps customer_id null and is listed, with every
-- record that uses an unresolved id, in fct_unresolved_customer_ids.
with

account_ids as (
    select * from {{ ref('int_crm_record_ids') }}
    where record_type = 'account'
),

billing_customers as (
    select * from {{ ref('stg_billing__customers') }}
),

identities as (
    select
        source_id,
        'crm' as source_system,
        record_id as customer_id,
        'crm_account' as resolved_by,
        1 as preference
    from account_ids
    union all
    select
        billing_customers.customer_ref as source_id,
        'billing' as source_system,
        account_ids.record_id as customer_id,
        case when account_ids.record_id is not null then 'billing_customer' end as resolved_by,
        2 as preference
    from billing_customers
    left join account_ids
        on billing_customers.customer_id = account_ids.source_id
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
