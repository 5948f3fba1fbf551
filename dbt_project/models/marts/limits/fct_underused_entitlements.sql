-- Entitlements rarely used, candidates for review: one row per contract line and
-- entitlement code whose last N completed allowance periods (N = var underuse_periods,
-- default 3; completed = period_end <= the as-of date) all had a limit and together used
-- under 10 % of it: 100 x sum(used) / sum(limit) < 10. A line with fewer than N completed
-- periods is not judged (not listed). is_in_force tells whether the line still grants the
-- entitlement on the as-of date.
{%- set periods_needed = var('underuse_periods', 3) | int %}
with

periods as (
    select * from {{ ref('int_allowance_periods') }}
    where is_complete
),

grants_in_force as (
    select distinct
        contract_line_id,
        entitlement_code
    from {{ ref('int_entitlement_grants') }}
    where {{ in_force('valid_from', 'valid_to', as_of_date()) }}
),

recent as (
    select
        *,
        row_number() over (
            partition by contract_line_id, entitlement_code
            order by period_start desc
        ) as recency
    from periods
),

assessed as (
    select
        contract_line_id,
        entitlement_code,
        count(*) as periods_assessed,
        sum(case when limit_quantity > 0 then 1 else 0 end) as limited_periods,
        min(period_start) as first_period_start,
        max(period_end) as last_period_end,
        sum(limit_quantity) as limit_quantity,
        sum(used_quantity) as used_quantity
    from recent
    where recency <= {{ periods_needed }}
    group by contract_line_id, entitlement_code
),

latest as (
    select * from recent
    where recency = 1
)

select
    latest.contract_line_id || '/' || latest.entitlement_code as underused_id,
    latest.customer_id,
    latest.contract_id,
    latest.contract_line_id,
    latest.entitlement_id,
    latest.package_code,
    latest.entitlement_code,
    latest.unit,
    cast(assessed.periods_assessed as {{ dbt.type_int() }}) as periods_assessed,
    assessed.first_period_start,
    assessed.last_period_end,
    cast(assessed.limit_quantity as decimal(38, 4)) as limit_quantity,
    cast(assessed.used_quantity as decimal(38, 4)) as used_quantity,
    cast(round(100.0 * assessed.used_quantity / assessed.limit_quantity, 2) as decimal(9, 2)) as pct_used,
    grants_in_force.contract_line_id is not null as is_in_force
from latest
inner join assessed
    on
        latest.contract_line_id = assessed.contract_line_id
        and latest.entitlement_code = assessed.entitlement_code
left join grants_in_force
    on
        latest.contract_line_id = grants_in_force.contract_line_id
        and latest.entitlement_code = grants_in_force.entitlement_code
where
    assessed.periods_assessed = {{ periods_needed }}
    and assessed.limited_periods = {{ periods_needed }}
    and 100 * assessed.used_quantity < 10 * assessed.limit_quantity
