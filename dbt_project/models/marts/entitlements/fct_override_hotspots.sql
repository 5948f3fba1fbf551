-- Where overrides cluster: counts per entitlement, package and approver. Many
-- overrides on one entitlement or package suggest the catalog needs adjusting;
-- unapproved ones are leakage (fct_revenue_leakage, unapproved_override).
with

overrides as (
    select * from {{ ref('stg_crm__overrides') }}
),

grants as (
    select * from {{ ref('int_entitlement_grants') }}
),

with_package as (
    select
        overrides.*,
        (
            select min(grants.package_code)
            from grants
            where
                grants.contract_id = overrides.contract_id
                and grants.entitlement_code = overrides.entitlement_code
                and {{ in_force('grants.valid_from', 'grants.valid_to', 'overrides.valid_from') }}
        ) as package_code
    from overrides
),

dimensions as (
    select
        'entitlement' as dimension,
        entitlement_code as dimension_value,
        *
    from with_package
    union all
    select
        'package' as dimension,
        coalesce(package_code, '(none)') as dimension_value,
        *
    from with_package
    union all
    select
        'approver' as dimension,
        coalesce(approved_by, '(unapproved)') as dimension_value,
        *
    from with_package
)

select
    dimension || ':' || dimension_value as hotspot_id,
    dimension,
    dimension_value,
    count(*) as override_count,
    cast(sum(case when approved_by is null then 1 else 0 end) as {{ dbt.type_bigint() }}) as unapproved_count,
    count(distinct customer_id) as customer_count,
    cast(sum(extra_quantity) as decimal(38, 4)) as extra_quantity
from dimensions
group by dimension, dimension_value
