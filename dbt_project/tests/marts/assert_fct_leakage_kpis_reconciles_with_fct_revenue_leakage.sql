-- Leak amounts per month and currency in fct_leakage_kpis equal the sums of
-- fct_revenue_leakage, per category and in total, to the cent. Returns the rows that differ.
{%- set categories = leakage_categories() %}
with

leaks as (
    select
        {{ month_start('occurred_on') }} as period_month,
        currency,
        {%- for category in categories %}
            sum(case when category = '{{ category }}' then amount else 0 end) as leaked_{{ category }},
        {%- endfor %}
        sum(amount) as leaked_total,
        count(*) as leak_count
    from {{ ref('fct_revenue_leakage') }}
    group by 1, 2
),

kpis as (
    select * from {{ ref('fct_leakage_kpis') }}
    where leak_count > 0 or leaked_total <> 0
)

select
    coalesce(leaks.period_month, kpis.period_month) as period_month,
    coalesce(leaks.currency, kpis.currency) as currency,
    leaks.leaked_total as expected_total,
    kpis.leaked_total as kpi_total
from leaks
full outer join kpis
    on leaks.period_month = kpis.period_month and leaks.currency = kpis.currency
where
    leaks.period_month is null
    or kpis.period_month is null
    or leaks.leak_count <> kpis.leak_count
    or leaks.leaked_total <> kpis.leaked_total
    {%- for category in categories %}
        or leaks.leaked_{{ category }} <> kpis.leaked_{{ category }}
    {%- endfor %}
