-- A warning, one row per contract whose status says it expired but which has no end date: with
-- no end it reads as open-ended (evergreen) and covers every later date. Give it its EndDate (or
-- Term) in the export, or the status it has.
{{ config(severity='warn') }}

select
    contract_id,
    contract_status,
    start_date
from {{ ref('stg_crm__service_contracts') }}
where contract_status = 'expired' and end_date is null
