-- under_billed: a subscription invoice line billed below the contract line's price
-- for its period by more than both tolerances (vars under_billed_tolerance_*).
with

invoice_lines as (
    select * from {{ ref('int_invoice_lines') }}
    where line_type = 'subscription' and period_start <= {{ as_of_date() }}
),

contract_lines as (
    select * from {{ ref('stg_crm__contract_lines') }}
),

expected as (
    select
        invoice_lines.*,
        round(
            contract_lines.annual_price * contract_lines.quantity
            * {{ dbt.datediff('invoice_lines.period_start', 'invoice_lines.period_end', 'month') }} / 12,  -- noqa: LT05
            2
        ) as expected_amount
    from invoice_lines
    inner join contract_lines
        on
            invoice_lines.contract_line_id = contract_lines.contract_line_id
            and invoice_lines.period_start >= contract_lines.valid_from
            and invoice_lines.period_start < contract_lines.valid_to
),

leaks as (
    select
        *,
        expected_amount - amount as shortfall
    from expected
    where
        expected_amount - amount > {{ var('under_billed_tolerance_amount') }}
        and expected_amount - amount > expected_amount * {{ var('under_billed_tolerance_pct') }} / 100
)

select
    'under_billed' as category,
    'invoice_line' as evidence_type,
    invoice_line_id as evidence_id,
    customer_id,
    period_start as occurred_on,
    round(shortfall, 2) as amount,
    currency,
    item_code as entitlement_code,
    contract_id,
    'Invoice line ' || invoice_line_id || ' billed ' || cast(amount as {{ dbt.type_string() }})
    || ' for ' || substr(cast(period_start as {{ dbt.type_string() }}), 1, 7) || ' against a contract price of '
    || cast(expected_amount as {{ dbt.type_string() }}) as explanation
from leaks
