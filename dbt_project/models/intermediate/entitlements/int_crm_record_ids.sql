-- Every id another system may use for a CRM account, service contract or contract line, and the
-- record it names: the record's own id and, for a Salesforce id, its 15-character form
-- (macros/salesforce_ids.sql), the one a person copies from Salesforce's user interface into a
-- Stripe customer's metadata or an invoice line's. Billing's references resolve here
-- (int_customer_identities, int_invoice_lines); a reference found here by neither form names no
-- record of the CRM export.
with

accounts as (
    select customer_id as record_id from {{ ref('stg_crm__accounts') }}
),

contracts as (
    select contract_id as record_id from {{ ref('stg_crm__service_contracts') }}
),

contract_lines as (
    select distinct contract_line_id as record_id from {{ ref('stg_crm__contract_lines') }}
),

records as (
    select
        'account' as record_type,
        record_id
    from accounts
    union all
    select
        'contract' as record_type,
        record_id
    from contracts
    union all
    select
        'contract_line' as record_type,
        record_id
    from contract_lines
),

written as (
    select
        record_type,
        record_id as source_id,
        record_id,
        'record_id' as written_as
    from records
    union all
    select
        record_type,
        {{ salesforce_id15('record_id') }} as source_id,
        record_id,
        'salesforce_id15' as written_as
    from records
    where {{ salesforce_id15('record_id') }} is not null
)

select
    record_type,
    source_id,
    record_id,
    written_as
from written
