-- Contract line versions as in force: a line exported without dates of its own (Salesforce's
-- ContractLineItem StartDate and EndDate are optional) starts and ends with its contract; a null
-- valid_to left after that is open-ended (an evergreen contract: in force until it gets an end
-- date). Every model that asks when a line applies reads it here, so they agree. With the facts of
-- its contract a grant needs (customer, type, status, currency, term).
with

contract_lines as (
    select * from {{ ref('stg_crm__contract_lines') }}
),

contracts as (
    select * from {{ ref('stg_crm__service_contracts') }}
)

select
    contract_lines.contract_line_id,
    contract_lines.version_no,
    contract_lines.contract_id,
    contract_lines.package_code,
    contract_lines.asset_id,
    contract_lines.location_id,
    contract_lines.change_reason,
    contract_lines.quantity,
    contract_lines.annual_price,
    coalesce(contract_lines.valid_from, contracts.start_date) as valid_from,
    coalesce(contract_lines.valid_to, contracts.end_date) as valid_to,
    contracts.customer_id,
    contracts.contract_type,
    contracts.contract_status,
    contracts.currency,
    contracts.start_date as contract_start_date,
    contracts.end_date as contract_end_date
from contract_lines
left join contracts
    on contract_lines.contract_id = contracts.contract_id
