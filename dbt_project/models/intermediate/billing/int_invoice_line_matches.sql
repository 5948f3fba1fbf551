-- Which invoice line bills which delivery or usage period, and how the match was found. A
-- delivery no service (premium) line matches is unbilled (its premium unbilled); a usage period
-- is billed the overage quantity and net amount (int_invoice_lines) of the lines that match it.
--   service and premium lines: the reference the ingest found (entitlements.yml evidence:
--     metadata key, description pattern; reference_matched_by) is the delivery's id or its
--     number (CaseNumber).
--   overage lines, by the strategies of var usage_line_match, in order:
--     subscription_item  the line's subscription item is the grant of the period's allowance
--                        (a Stripe item granting it) and its period starts in the period;
--     customer_meter_month  the customer, meter (item_code) and month of the period; of
--                        several periods in the month, an entitled one, most over its limit.
with

invoice_lines as (
    select * from {{ ref('int_invoice_lines') }}
),

deliveries as (
    select * from {{ ref('int_service_deliveries') }}
),

usage_periods as (
    select * from {{ ref('int_usage_periods') }}
),

reference_lines as (
    select * from invoice_lines
    where line_type in ('service', 'premium') and reference_id is not null
),

delivery_matches as (
    select
        reference_lines.invoice_line_id,
        reference_lines.line_type,
        'delivery' as evidence_type,
        deliveries.delivery_id as evidence_id,
        coalesce(reference_lines.reference_matched_by, 'reference_id') || ' = delivery id' as matched_by,
        reference_lines.quantity,
        reference_lines.net_amount
    from reference_lines
    inner join deliveries
        on reference_lines.reference_id = deliveries.delivery_id
    union all
    select
        reference_lines.invoice_line_id,
        reference_lines.line_type,
        'delivery' as evidence_type,
        deliveries.delivery_id as evidence_id,
        coalesce(reference_lines.reference_matched_by, 'reference_id') || ' = delivery number' as matched_by,
        reference_lines.quantity,
        reference_lines.net_amount
    from reference_lines
    inner join deliveries
        on
            reference_lines.reference_id = deliveries.delivery_number
            and reference_lines.reference_id <> deliveries.delivery_id
),

overage_lines as (
    select * from invoice_lines
    where line_type = 'overage'
),

usage_candidates as (
    {%- for strategy in var('usage_line_match', ['subscription_item', 'customer_meter_month']) %}
        {%- if not loop.first %}
            union all
        {%- endif %}
        select
            overage_lines.invoice_line_id,
            usage_periods.usage_period_id,
            '{{ strategy }}' as matched_by,
            overage_lines.quantity,
            overage_lines.net_amount,
            {{ loop.index }} as strategy_rank,
            row_number() over (
                partition by overage_lines.invoice_line_id
                order by
                    case when usage_periods.entitlement_id is null then 1 else 0 end,
                    usage_periods.used_quantity - coalesce(usage_periods.limit_quantity, 0) desc,
                    usage_periods.usage_period_id
            ) as period_rank
        from overage_lines
        inner join usage_periods
            on
                overage_lines.customer_id = usage_periods.customer_id
                and overage_lines.item_code = usage_periods.meter_code
                and (
                    (
                        '{{ strategy }}' = 'subscription_item'
                        and overage_lines.subscription_item_id = usage_periods.contract_line_id
                        and {{ in_force(
                            'usage_periods.period_start', 'usage_periods.period_end', 'overage_lines.period_start',
                            null_to_unbounded=false
                        ) }}
                    )
                    or (
                        '{{ strategy }}' = 'customer_meter_month'
                        and overage_lines.period_start = usage_periods.period_start
                    )
                )
    {%- endfor %}
),

usage_matches as (
    select
        invoice_line_id,
        'overage' as line_type,
        'usage_period' as evidence_type,
        usage_period_id as evidence_id,
        matched_by,
        quantity,
        net_amount
    from (
        select
            *,
            row_number() over (
                partition by invoice_line_id
                order by strategy_rank, period_rank
            ) as match_rank
        from usage_candidates
    ) as ranked
    where match_rank = 1
)

select * from delivery_matches
union all
select * from usage_matches
