-- Each free ("covered") delivery attributed to the one entitlement it consumes:
-- among the grants covering it that day, asset and site, the one with the lowest
-- precedence_rank (rule per entitlement type, see int_entitlement_grants).
-- consumption_rank numbers the deliveries within the winner's allowance period.
with

deliveries as (
    select * from {{ ref('int_service_deliveries') }}
    where excluded_by is null  -- excluded by a condition of entitlements.yml: judged by no rule
),

grants as (
    select * from {{ ref('int_entitlement_grants') }}
    where consumed_by = 'service'
),

approved_overrides as (
    {{ approved_overrides() }}
),

candidates as (
    select
        deliveries.delivery_id,
        grants.entitlement_id,
        grants.contract_id,
        grants.contract_line_id,
        grants.package_code,
        grants.entitlement_code,
        grants.limit_quantity,
        grants.limit_period,
        grants.sla_response_hours,
        grants.coverage_hours,
        grants.contract_start_date,
        grants.contract_end_date,
        row_number() over (
            partition by deliveries.delivery_id
            order by grants.precedence_rank
        ) as preference
    from deliveries
    inner join grants
        on
            deliveries.customer_id = grants.customer_id
            and deliveries.service_code = grants.entitlement_code
            and {{ in_force(
                'grants.valid_from_at', 'grants.valid_to_at', 'deliveries.created_at'
            ) }}
            and (grants.asset_id is null or deliveries.asset_id = grants.asset_id)
            and (grants.location_id is null or deliveries.location_id = grants.location_id)
    where deliveries.billing_type = 'covered'
),

winners as (
    select
        *,
        {{ period_start('limit_period', 'contract_start_date', 'delivered_on_') }} as period_start
    from (
        select
            candidates.*,
            deliveries.delivered_on as delivered_on_
        from candidates
        inner join deliveries
            on candidates.delivery_id = deliveries.delivery_id
        where candidates.preference = 1
    ) as preferred
),

override_extras as (
    select
        winners.delivery_id,
        sum(approved_overrides.extra_quantity) as extra_quantity
    from winners
    inner join approved_overrides
        on
            winners.contract_id = approved_overrides.contract_id
            and winners.entitlement_code = approved_overrides.entitlement_code
            and {{ in_force(
                'approved_overrides.valid_from', 'approved_overrides.valid_to', 'winners.delivered_on_',
                null_to_unbounded=false
            ) }}
    group by winners.delivery_id
),

attributed as (
    select
        deliveries.*,
        winners.entitlement_id,
        winners.contract_id,
        winners.contract_line_id,
        winners.package_code,
        winners.limit_quantity,
        winners.limit_period,
        winners.sla_response_hours,
        winners.coverage_hours,
        winners.period_start,
        {{ period_end('winners.limit_period', 'winners.period_start', 'winners.contract_end_date') }}
            as period_end,
        winners.limit_quantity + coalesce(override_extras.extra_quantity, 0) as effective_limit_quantity,
        case
            when winners.entitlement_id is not null
                then row_number() over (
                    partition by winners.contract_line_id, winners.entitlement_code, winners.period_start
                    order by deliveries.created_at, deliveries.delivery_id
                )
        end as consumption_rank
    from deliveries
    left join winners
        on deliveries.delivery_id = winners.delivery_id
    left join override_extras
        on deliveries.delivery_id = override_extras.delivery_id
)

select * from attributed
-- Stored in customer order so a one-customer lookup (entitlements check) reads few row groups.
order by customer_id, delivered_on
