-- under_billed: a contract line billed net below its contract price for a billing period by
-- more than both tolerances (vars under_billed_tolerance_*).
-- A billing period is a subscription line that charges (amount > 0, not a proration): its
-- period, its contract line. Credits and prorations of the same contract line whose period
-- starts inside it (an "unused time" credit, a "remaining time" charge after a mid-period
-- change) belong to it; net billed is the sum of their net amounts (int_invoice_lines: less
-- discounts and credit notes). A credit or proration inside no billing period is not judged.
with

invoice_lines as (
    select * from {{ ref('int_invoice_lines') }}
    where line_type = 'subscription' and period_start <= {{ as_of_date() }}
),

contract_lines as (
    select * from {{ ref('int_contract_lines') }}
),

billing_periods as (
    select * from invoice_lines
    where amount > 0 and not is_proration
),

adjustments as (
    select * from invoice_lines
    where amount <= 0 or is_proration
),

-- each adjustment belongs to the billing period of its contract line containing its start
-- (the earliest such period if several do)
adjustments_placed as (
    select
        adjustments.invoice_line_id,
        adjustments.net_amount,
        billing_periods.invoice_line_id as billing_line_id,
        row_number() over (
            partition by adjustments.invoice_line_id
            order by billing_periods.period_start, billing_periods.invoice_line_id
        ) as placement
    from adjustments
    inner join billing_periods
        on
            adjustments.contract_line_id = billing_periods.contract_line_id
            and {{ in_force(
                'billing_periods.period_start', 'billing_periods.period_end', 'adjustments.period_start',
                null_to_unbounded=false
            ) }}
),

adjusted as (
    select
        billing_line_id,
        sum(net_amount) as adjustment_amount,
        count(*) as adjustment_count
    from adjustments_placed
    where placement = 1
    group by billing_line_id
),

expected as (
    select
        billing_periods.*,
        coalesce(adjusted.adjustment_amount, 0) as adjustment_amount,
        coalesce(adjusted.adjustment_count, 0) as adjustment_count,
        billing_periods.net_amount + coalesce(adjusted.adjustment_amount, 0) as net_billed,
        cast(round(
            contract_lines.annual_price * contract_lines.quantity
            * {{ dbt.datediff('billing_periods.period_start', 'billing_periods.period_end', 'month') }} / 12,  -- noqa: LT05
            2
        ) as decimal(18, 2)) as expected_amount
    from billing_periods
    inner join contract_lines
        on
            billing_periods.contract_line_id = contract_lines.contract_line_id
            and {{ in_force('contract_lines.valid_from', 'contract_lines.valid_to', 'billing_periods.period_start') }}
    left join adjusted
        on billing_periods.invoice_line_id = adjusted.billing_line_id
),

leaks as (
    select
        *,
        expected_amount - net_billed as shortfall
    from expected
    where
        expected_amount - net_billed > {{ var('under_billed_tolerance_amount') }}
        and expected_amount - net_billed > expected_amount * {{ var('under_billed_tolerance_pct') }} / 100
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
    'Invoice line ' || invoice_line_id || ' billed ' || cast(net_billed as {{ dbt.type_string() }})
    || ' net for ' || substr(cast(period_start as {{ dbt.type_string() }}), 1, 7)
    || ' (' || cast(amount as {{ dbt.type_string() }})
    || case
        when discount_amount <> 0 then ', discounts -' || cast(discount_amount as {{ dbt.type_string() }})
        else ''
    end
    || case
        when credited_amount <> 0 then ', credit notes -' || cast(credited_amount as {{ dbt.type_string() }})
        else ''
    end
    || case
        when adjustment_count > 0
            then
                ', ' || cast(adjustment_count as {{ dbt.type_string() }}) || ' credit or proration line(s) '
                || cast(adjustment_amount as {{ dbt.type_string() }})
        else ''
    end
    || ') against a contract price of ' || cast(expected_amount as {{ dbt.type_string() }}) as explanation
from leaks
