-- One row per entitlement node with its terms resolved: a term left empty on the
-- entitlement is inherited from its group, then from its package. An allowance that
-- does not reset (resets = false) is one bucket for the whole term: its period is 'term'.
with

nodes as (
    select * from {{ ref('stg_crm__catalog_nodes') }}
),

entitlements as (
    select * from nodes
    where node_level = 'entitlement'
),

entitlement_groups as (
    select * from nodes
    where node_level = 'group'
),

packages as (
    select * from nodes
    where node_level = 'package'
),

resolved as (
    select
        entitlements.node_code,
        packages.node_code as package_code,
        entitlement_groups.node_code as group_code,
        entitlements.entitlement_code,
        entitlements.node_name as entitlement_name,
        coalesce(
            entitlements.entitlement_type,
            entitlement_groups.entitlement_type,
            packages.entitlement_type
        ) as entitlement_type,
        coalesce(entitlements.unit, entitlement_groups.unit, packages.unit) as unit,
        coalesce(
            entitlements.limit_quantity,
            entitlement_groups.limit_quantity,
            packages.limit_quantity
        ) as limit_quantity,
        case
            when coalesce(entitlements.resets, entitlement_groups.resets, packages.resets, true)
                then coalesce(
                    entitlements.limit_period,
                    entitlement_groups.limit_period,
                    packages.limit_period,
                    'term'
                )
            else 'term'
        end as limit_period,
        coalesce(entitlements.resets, entitlement_groups.resets, packages.resets, true) as resets,
        coalesce(
            entitlements.consumed_by,
            entitlement_groups.consumed_by,
            packages.consumed_by,
            'none'
        ) as consumed_by,
        coalesce(
            entitlements.sla_response_hours,
            entitlement_groups.sla_response_hours,
            packages.sla_response_hours
        ) as sla_response_hours,
        coalesce(
            entitlements.coverage_hours,
            entitlement_groups.coverage_hours,
            packages.coverage_hours
        ) as coverage_hours
    from entitlements
    inner join entitlement_groups
        on entitlements.parent_code = entitlement_groups.node_code
    inner join packages
        on entitlement_groups.parent_code = packages.node_code
)

select * from resolved
