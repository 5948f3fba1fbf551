-- Customers who keep hitting a limit: one row per customer and entitlement code that
-- reached 90 % of the limit (crossed_90_on) in at least 2 of its last 3 allowance periods
-- (completed or current, every contract line of the customer for that code, most recent
-- first; ties by the higher contract line id).
-- The package that would cover them: among catalog packages offering the entitlement with
-- the same entitlement type as the current package, a higher limit (unlimited counts as
-- higher) and an annual fee in the contract's currency, the cheapest one whose limit covers
-- the peak period use of those last 3 periods; if none covers it, the largest. No such
-- package: recommended columns are null (the customer still needs a conversation).
-- Limits and fees scale with the contract line's quantity; fees are the price book's annual fees
-- (the package's own code as the item) in force on the as-of date, for the line's quantity.
with

periods as (
    select * from {{ ref('int_allowance_periods') }}
),

contract_lines as (
    select * from {{ ref('stg_crm__contract_lines') }}
),

catalog as (
    select * from {{ ref('int_catalog_entitlements') }}
),

recent as (
    select
        *,
        row_number() over (
            partition by customer_id, entitlement_code
            order by period_start desc, contract_line_id desc
        ) as recency
    from periods
),

repeated as (
    select
        customer_id,
        entitlement_code,
        cast(count(*) as {{ dbt.type_int() }}) as periods_assessed,
        cast(sum(case when crossed_90_on is not null then 1 else 0 end) as {{ dbt.type_int() }}) as periods_over_90,
        max(used_quantity) as peak_period_use
    from recent
    where recency <= 3
    group by customer_id, entitlement_code
),

candidates as (
    -- the current terms: the latest period's grant
    select
        recent.customer_id,
        recent.entitlement_code,
        recent.unit,
        recent.entitlement_type,
        recent.contract_id,
        recent.contract_line_id,
        recent.package_code,
        recent.package_limit_quantity,
        recent.period_start as last_period_start,
        recent.currency,
        repeated.periods_assessed,
        repeated.periods_over_90,
        repeated.peak_period_use,
        contract_lines.quantity as line_quantity
    from recent
    inner join repeated
        on
            recent.customer_id = repeated.customer_id
            and recent.entitlement_code = repeated.entitlement_code
    inner join contract_lines
        on
            recent.contract_line_id = contract_lines.contract_line_id
            and recent.version_no = contract_lines.version_no
    where recent.recency = 1 and repeated.periods_over_90 >= 2
),

-- The annual fee of every package that could be offered (and the current one) per candidate.
fees_to_price as (
    select distinct
        candidates.customer_id || ':' || candidates.entitlement_code || ':' || catalog.package_code as pricing_key,
        catalog.package_code as item_code,
        catalog.package_code,
        candidates.currency,
        'annual_fee' as price_type,
        {{ as_of_date() }} as priced_on,
        candidates.line_quantity as quantity
    from candidates
    inner join catalog
        on
            candidates.entitlement_code = catalog.entitlement_code
            and candidates.entitlement_type = catalog.entitlement_type
),

fees as (
    {{ priced_quantities('fees_to_price') }}
),

offers as (
    select
        candidates.customer_id,
        candidates.entitlement_code,
        catalog.package_code,
        catalog.limit_quantity * candidates.line_quantity as limit_quantity,
        offered_fees.amount as annual_fee,
        (
            catalog.limit_quantity is null
            or catalog.limit_quantity * candidates.line_quantity >= candidates.peak_period_use
        ) as covers_peak_use
    from candidates
    inner join catalog
        on
            candidates.entitlement_code = catalog.entitlement_code
            and candidates.entitlement_type = catalog.entitlement_type
            and candidates.package_code <> catalog.package_code
    inner join fees as offered_fees
        on
            candidates.customer_id || ':' || candidates.entitlement_code || ':' || catalog.package_code
            = offered_fees.pricing_key
    where
        candidates.package_limit_quantity is not null
        and (
            catalog.limit_quantity is null
            or catalog.limit_quantity * candidates.line_quantity > candidates.package_limit_quantity
        )
),

recommended as (
    select
        *,
        row_number() over (
            partition by customer_id, entitlement_code
            order by
                case when covers_peak_use then 0 else 1 end asc,
                case when covers_peak_use then annual_fee end asc,
                case when limit_quantity is null then 0 else 1 end asc,
                limit_quantity desc,
                annual_fee asc,
                package_code asc
        ) as preference
    from offers
),

priced as (
    select
        candidates.*,
        recommended.package_code as recommended_package_code,
        recommended.limit_quantity as recommended_limit_quantity,
        recommended.covers_peak_use,
        recommended.annual_fee as recommended_annual_fee,
        current_fees.amount as current_annual_fee
    from candidates
    left join recommended
        on
            candidates.customer_id = recommended.customer_id
            and candidates.entitlement_code = recommended.entitlement_code
            and recommended.preference = 1
    left join fees as current_fees
        on
            candidates.customer_id || ':' || candidates.entitlement_code || ':' || candidates.package_code
            = current_fees.pricing_key
)

select
    customer_id || ':' || entitlement_code as upsell_id,
    customer_id,
    entitlement_code,
    unit,
    periods_assessed,
    periods_over_90,
    last_period_start,
    cast(peak_period_use as decimal(38, 4)) as peak_period_use,
    contract_id,
    contract_line_id,
    package_code as current_package_code,
    cast(package_limit_quantity as decimal(38, 4)) as current_limit_quantity,
    recommended_package_code,
    cast(recommended_limit_quantity as decimal(38, 4)) as recommended_limit_quantity,
    covers_peak_use,
    cast(current_annual_fee as decimal(18, 2)) as current_annual_fee,
    cast(recommended_annual_fee as decimal(18, 2)) as recommended_annual_fee,
    cast(recommended_annual_fee - current_annual_fee as decimal(18, 2)) as annual_fee_difference,
    currency
from priced
