-- Consumption of each entitlement per allowance period: one row per contract line,
-- entitlement code and period, for every period that has started by the as-of date while
-- a version of the line granted the entitlement - periods with no use too, so underuse
-- shows. Limited and unlimited grants (limit null) alike.
--
-- Periods and resets: the versions (amendments) of a line share its periods, anchored at
--   the contract start (macros period_start/period_end): calendar months, contract years,
--   or the whole term for an allowance that does not reset. An amendment mid-period keeps
--   counting in the same period.
-- Unit: a delivery counts 1; metered usage sums its quantity, except units listed in the
--   var peak_units (seats, licences), whose use is the peak reading so far in the period.
-- Limit on a day: the limit of the line's version in force that day plus approved
--   overrides in force that day (as for delivery attribution).
-- Thresholds: use and limit change only on a "change day" (a day with use, a version
--   starting to apply, an approved override starting or ending), so the threshold T
--   (80, 90, 100 %) is crossed on the first change day where use so far >= T % of the
--   limit in force that day. A limit raised later does not undo a crossing.
-- limit_quantity, used_quantity and pct_used describe the period on its last day so far.
-- overage_quantity: sum units, the units consumed while above the limit in force that day
--   (the number of over-allowance deliveries); peak units, the largest excess of the peak
--   over the limit in force.
with

grants as (
    select * from {{ ref('int_entitlement_grants') }}
    where consumed_by in ('service', 'usage') and valid_from <= {{ as_of_date() }}
),

deliveries as (
    select * from {{ ref('int_service_deliveries_attributed') }}
    where entitlement_id is not null and delivered_on <= {{ as_of_date() }}
),

usage_days as (
    -- metered use per day (int_usage_daily: the events summed once, for every model after them)
    select * from {{ ref('int_usage_daily') }}
    where entitlement_id is not null and occurred_on <= {{ as_of_date() }}
),

approved_overrides as (
    {{ approved_overrides() }}
),

period_offsets as (
    -- 0, 1, 2, ...: the n-th period of a grant; 1200 covers 100 years of monthly periods
    select generated_number - 1 as period_offset
    from ({{ dbt.generate_series(1200) }}) as series
),

grant_spans as (
    -- each grant from the start of its first period to its last day in force up to the as-of date
    select
        *,
        {{ period_start('limit_period', 'contract_start_date', 'valid_from') }} as first_period_start,
        case
            when valid_to <= {{ as_of_date() }} then cast({{ dbt.dateadd('day', -1, 'valid_to') }} as date)
            else {{ as_of_date() }}
        end as last_day_in_force
    from grants
),

grant_periods as (
    select
        grant_spans.*,
        cast(case grant_spans.limit_period
            when 'month'
                then {{ dbt.dateadd('month', 'period_offsets.period_offset', 'grant_spans.first_period_start') }}
            when 'year'
                then {{ dbt.dateadd('month', '12 * period_offsets.period_offset', 'grant_spans.first_period_start') }}
            else grant_spans.first_period_start
        end as date) as period_start
    from grant_spans
    inner join period_offsets
        on period_offsets.period_offset <= case grant_spans.limit_period
            when 'month'
                then {{ dbt.datediff('grant_spans.first_period_start', 'grant_spans.last_day_in_force', 'month') }}
            when 'year'
                then cast(floor(
                    {{ dbt.datediff('grant_spans.first_period_start', 'grant_spans.last_day_in_force', 'month') }}
                    / 12.0
                ) as {{ dbt.type_int() }})
            else 0
        end
),

version_periods as (
    -- the part of each period in which a version applies: [in_force_from, in_force_to)
    select
        *,
        case when valid_from > period_start then valid_from else period_start end as in_force_from,
        -- the earlier end; null (open-ended: an evergreen contract's term) is the later
        case when period_end is null or valid_to < period_end then valid_to else period_end end as in_force_to
    from (
        select
            *,
            {{ period_end('limit_period', 'period_start', 'contract_end_date') }} as period_end
        from grant_periods
    ) as bounded
),

daily_use as (
    select
        contract_line_id,
        service_code as entitlement_code,
        period_start,
        delivered_on as change_day,
        count(*) as day_total,
        count(*) as day_peak
    from deliveries
    group by contract_line_id, service_code, period_start, delivered_on
    union all
    select
        contract_line_id,
        meter_code as entitlement_code,
        period_start,
        occurred_on as change_day,
        sum(quantity) as day_total,
        max(peak_reading) as day_peak  -- the readings themselves (quantity is what they add)
    from usage_days
    group by contract_line_id, meter_code, period_start, occurred_on
),

override_edges as (
    -- an approved override changes the limit on its first day and on its (exclusive) end
    select
        contract_id,
        entitlement_code,
        valid_from as change_day
    from approved_overrides
    union all
    select
        contract_id,
        entitlement_code,
        valid_to as change_day
    from approved_overrides
),

limit_changes as (
    select
        contract_line_id,
        entitlement_code,
        period_start,
        in_force_from as change_day
    from version_periods
    union all
    select
        version_periods.contract_line_id,
        version_periods.entitlement_code,
        version_periods.period_start,
        override_edges.change_day
    from version_periods
    inner join override_edges
        on
            version_periods.contract_id = override_edges.contract_id
            and version_periods.entitlement_code = override_edges.entitlement_code
            and version_periods.in_force_from < override_edges.change_day
            and (version_periods.in_force_to is null or version_periods.in_force_to > override_edges.change_day)
    where override_edges.change_day <= {{ as_of_date() }}
),

change_days as (
    select
        contract_line_id,
        entitlement_code,
        period_start,
        change_day,
        sum(day_total) as day_total,
        max(day_peak) as day_peak
    from (
        select * from daily_use
        union all
        select
            contract_line_id,
            entitlement_code,
            period_start,
            change_day,
            0 as day_total,
            0 as day_peak
        from limit_changes
    ) as all_days
    group by contract_line_id, entitlement_code, period_start, change_day
),

versioned_days as (
    -- each change day with the version of the line in force that day
    select
        change_days.*,
        version_periods.entitlement_id,
        version_periods.version_no,
        version_periods.customer_id,
        version_periods.contract_id,
        version_periods.package_code,
        version_periods.entitlement_type,
        version_periods.unit,
        version_periods.consumed_by,
        version_periods.limit_period,
        version_periods.currency,
        version_periods.period_end,
        version_periods.limit_quantity as package_limit_quantity
    from change_days
    inner join version_periods
        on
            change_days.contract_line_id = version_periods.contract_line_id
            and change_days.entitlement_code = version_periods.entitlement_code
            and change_days.period_start = version_periods.period_start
            and {{ in_force(
                'version_periods.in_force_from', 'version_periods.in_force_to', 'change_days.change_day'
            ) }}
),

override_extras as (
    select
        versioned_days.contract_line_id,
        versioned_days.entitlement_code,
        versioned_days.period_start,
        versioned_days.change_day,
        sum(approved_overrides.extra_quantity) as extra_quantity
    from versioned_days
    inner join approved_overrides
        on
            versioned_days.contract_id = approved_overrides.contract_id
            and versioned_days.entitlement_code = approved_overrides.entitlement_code
            and {{ in_force(
                'approved_overrides.valid_from', 'approved_overrides.valid_to', 'versioned_days.change_day',
                null_to_unbounded=false
            ) }}
    group by
        versioned_days.contract_line_id,
        versioned_days.entitlement_code,
        versioned_days.period_start,
        versioned_days.change_day
),

running as (
    select
        versioned_days.*,
        {{ is_peak_unit('versioned_days.unit') }} as is_peak_unit,
        versioned_days.package_limit_quantity + coalesce(override_extras.extra_quantity, 0) as limit_quantity,
        sum(versioned_days.day_total) over (
            partition by versioned_days.contract_line_id, versioned_days.entitlement_code, versioned_days.period_start
            order by versioned_days.change_day
            rows between unbounded preceding and current row
        ) as total_so_far,
        max(versioned_days.day_peak) over (
            partition by versioned_days.contract_line_id, versioned_days.entitlement_code, versioned_days.period_start
            order by versioned_days.change_day
            rows between unbounded preceding and current row
        ) as peak_so_far
    from versioned_days
    left join override_extras
        on
            versioned_days.contract_line_id = override_extras.contract_line_id
            and versioned_days.entitlement_code = override_extras.entitlement_code
            and versioned_days.period_start = override_extras.period_start
            and versioned_days.change_day = override_extras.change_day
),

measured as (
    select
        *,
        case
            when limit_quantity is null or used_so_far <= limit_quantity then 0
            when is_peak_unit then used_so_far - limit_quantity
            -- sum units: the part of the day's use above the limit
            when used_so_far - limit_quantity < day_total then used_so_far - limit_quantity
            else day_total
        end as over_limit_quantity
    from (
        select
            *,
            case when is_peak_unit then peak_so_far else total_so_far end as used_so_far
        from running
    ) as used
),

periods as (
    select
        *,
        {%- for threshold in [80, 90, 100] %}
            min(case
                when limit_quantity > 0 and used_so_far * 100 >= {{ threshold }} * limit_quantity then change_day
            end) over (partition by contract_line_id, entitlement_code, period_start) as crossed_{{ threshold }}_on,
        {%- endfor %}
        sum(over_limit_quantity) over (
            partition by contract_line_id, entitlement_code, period_start
        ) as summed_over_limit_quantity,
        max(over_limit_quantity) over (
            partition by contract_line_id, entitlement_code, period_start
        ) as peak_over_limit_quantity,
        row_number() over (
            partition by contract_line_id, entitlement_code, period_start
            order by change_day desc
        ) as recency
    from measured
)

select
    contract_line_id || '/' || entitlement_code || '@'
    || cast(period_start as {{ dbt.type_string() }}) as allowance_period_id,
    customer_id,
    contract_id,
    contract_line_id,
    entitlement_id,
    version_no,
    package_code,
    entitlement_code,
    entitlement_type,
    consumed_by,
    unit,
    case when is_peak_unit then 'peak' else 'sum' end as aggregation,
    limit_period,
    period_start,
    period_end,
    coalesce(period_end <= {{ as_of_date() }}, false) as is_complete,
    change_day as last_change_on,
    package_limit_quantity,
    limit_quantity,
    used_so_far as used_quantity,
    -- a double on every engine (DuckDB divides decimals as doubles, Spark as decimals), rounded alike
    case
        when limit_quantity > 0
            then {{ round_double('cast(100.0 * used_so_far as double) / limit_quantity', 2) }}
    end as pct_used,
    crossed_80_on,
    crossed_90_on,
    crossed_100_on,
    case
        when limit_quantity is null then null
        when is_peak_unit then peak_over_limit_quantity
        else summed_over_limit_quantity
    end as overage_quantity,
    currency
from periods
where recency = 1
