-- Customer ids used by usage events, invoices or billing customers that resolve to no CRM
-- account, with how many records carry each: add the account, the mapping row, or the billing
-- customer's metadata key (docs/configuration.md, identity).
select
    used_in,
    source_id,
    record_count,
    first_seen_on,
    last_seen_on
from {{ ref('dim_customer_identities') }}
where customer_id is null
