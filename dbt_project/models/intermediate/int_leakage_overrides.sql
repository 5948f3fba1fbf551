-- unapproved_override: an override granted without an approver; the amount is the
-- list value given away (extra quantity at the unit price).
with

overrides as (
    select * from {{ ref('stg_crm__overrides') }}
    where approved_by is null and valid_from <= {{ as_of_date() }}
),

accounts as (
    select * from {{ ref('stg_crm__accounts') }}
)

select
    'unapproved_override' as category,
    'override' as evidence_type,
    overrides.override_id as evidence_id,
    overrides.customer_id,
    overrides.valid_from as occurred_on,
    {{ price_amount('overrides.extra_quantity', 'prices.unit_amount') }} as amount,
    accounts.currency,
    overrides.entitlement_code,
    overrides.contract_id,
    'Override ' || overrides.override_id || ' granted '
    || cast(cast(overrides.extra_quantity as {{ dbt.type_int() }}) as {{ dbt.type_string() }})
    || ' extra ' || overrides.entitlement_code || ' without approval ('
    || coalesce(overrides.reason, 'no reason given') || ')' as explanation
from overrides
inner join accounts
    on overrides.customer_id = accounts.customer_id
-- an override with no price stays, with a null amount that fct_revenue_leakage's tests fail on
{{ join_price_book('prices', 'unit', 'overrides.entitlement_code', 'accounts.currency') }}
