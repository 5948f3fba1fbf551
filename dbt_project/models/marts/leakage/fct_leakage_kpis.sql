-- Leakage key figures per month and currency. Amounts stay in the currency of the row;
-- only the *_reporting columns (converted with the seed fx_rates) may be added across
-- currencies. period_month: the month of a leak's occurred_on, of an invoice line's
-- period_start, of a billable record's date. One leaked_<category> column per row of the seed
-- leakage_categories, in its display_order.
-- depends_on: {{ ref('leakage_categories') }}
{%- set categories = leakage_categories() %}
with

leaks as (
    select
        *,
        {{ month_start('occurred_on') }} as period_month,
        {{ dbt.datediff('occurred_on', as_of_date(), 'day') }} as age_days  -- noqa: LT05
    from {{ ref('fct_revenue_leakage') }}
),

invoice_lines as (
    -- billed by the as-of date (invoices are dated; void ones are already excluded)
    select
        *,
        {{ month_start('period_start') }} as period_month
    from {{ ref('int_invoice_lines') }}
    where invoice_date <= {{ as_of_date() }}
),

billable_records as (
    select
        *,
        {{ month_start('occurred_on') }} as period_month
    from {{ ref('int_billable_records') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates_to_reporting') }}
),

billed as (
    select
        period_month,
        currency,
        sum(net_amount) as billed_revenue  -- net of discounts and credit notes (docs/pricing.md)
    from invoice_lines
    group by period_month, currency
),

leaked as (
    select
        period_month,
        currency,
        {%- for category in categories %}
            sum(case when category = '{{ category }}' then amount else 0 end) as leaked_{{ category }},
        {%- endfor %}
        sum(amount) as leaked_total,
        count(*) as leak_count,
        -- still invoiceable: at most recoverable_billing_window_days old on the as-of date
        sum(
            case
                when age_days between 0 and {{ var('recoverable_billing_window_days') }} then amount else 0
            end
        ) as recoverable_value
    from leaks
    group by period_month, currency
),

alignment as (
    select
        billable_records.period_month,
        billable_records.currency,
        count(*) as billable_records,
        count(leaks.leakage_id) as misaligned_records
    from billable_records
    left join leaks
        on
            billable_records.record_id = leaks.evidence_id
            and billable_records.mismatch_category = leaks.category
    group by billable_records.period_month, billable_records.currency
),

months as (
    select
        period_month,
        currency
    from billed
    union
    select
        period_month,
        currency
    from leaked
    union
    select
        period_month,
        currency
    from alignment
),

combined as (
    select
        months.period_month,
        months.currency,
        coalesce(billed.billed_revenue, 0) as billed_revenue,
        {%- for category in categories %}
            coalesce(leaked.leaked_{{ category }}, 0) as leaked_{{ category }},
        {%- endfor %}
        coalesce(leaked.leaked_total, 0) as leaked_total,
        coalesce(leaked.leak_count, 0) as leak_count,
        coalesce(leaked.recoverable_value, 0) as recoverable_value,
        coalesce(alignment.billable_records, 0) as billable_records,
        coalesce(alignment.misaligned_records, 0) as misaligned_records,
        {{ reporting_fx_rate('months.currency', 'fx_rates.fx_rate') }} as fx_rate
    from months
    left join billed
        on months.period_month = billed.period_month and months.currency = billed.currency
    left join leaked
        on months.period_month = leaked.period_month and months.currency = leaked.currency
    left join alignment
        on months.period_month = alignment.period_month and months.currency = alignment.currency
    left join fx_rates
        on months.period_month = fx_rates.rate_month and months.currency = fx_rates.currency
)

select
    substr(cast(period_month as {{ dbt.type_string() }}), 1, 7) || ':' || currency as kpi_id,
    period_month,
    currency,
    cast(billed_revenue as decimal(18, 2)) as billed_revenue,
    {%- for category in categories %}
        cast(leaked_{{ category }} as decimal(18, 2)) as leaked_{{ category }},
    {%- endfor %}
    cast(leaked_total as decimal(18, 2)) as leaked_total,
    cast(leak_count as {{ dbt.type_bigint() }}) as leak_count,
    cast(case when billed_revenue > 0 then leaked_total / billed_revenue end as decimal(18, 6)) as leakage_share,
    cast(recoverable_value as decimal(18, 2)) as recoverable_value,
    cast(billable_records as {{ dbt.type_bigint() }}) as billable_records,
    cast(misaligned_records as {{ dbt.type_bigint() }}) as misaligned_records,
    cast(
        case when billable_records > 0 then 1.0 * misaligned_records / billable_records end as decimal(18, 6)
    ) as misaligned_share,
    '{{ var("reporting_currency") }}' as reporting_currency,
    fx_rate,
    fx_rate is null as is_fx_rate_missing,
    {{ to_reporting_currency('billed_revenue', 'currency', 'fx_rate') }} as billed_revenue_reporting,
    {{ to_reporting_currency('leaked_total', 'currency', 'fx_rate') }} as leaked_total_reporting,
    {{ to_reporting_currency('recoverable_value', 'currency', 'fx_rate') }} as recoverable_value_reporting
from combined
