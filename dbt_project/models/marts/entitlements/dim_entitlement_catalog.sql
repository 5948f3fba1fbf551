-- One row per entitlement of a package, its terms resolved through the catalog's inheritance,
-- with the package's name: what each package grants.
with

catalog_entitlements as (
    select * from {{ ref('int_catalog_entitlements') }}
),

packages as (
    select * from {{ ref('stg_crm__catalog_nodes') }}
    where node_level = 'package'
),

final as (
    select
        catalog_entitlements.node_code,
        catalog_entitlements.package_code,
        packages.node_name as package_name,
        catalog_entitlements.group_code,
        catalog_entitlements.entitlement_code,
        catalog_entitlements.entitlement_name,
        catalog_entitlements.entitlement_type,
        catalog_entitlements.unit,
        catalog_entitlements.limit_quantity,
        catalog_entitlements.limit_period,
        catalog_entitlements.resets,
        catalog_entitlements.consumed_by,
        catalog_entitlements.sla_response_hours,
        catalog_entitlements.coverage_hours
    from catalog_entitlements
    inner join packages
        on catalog_entitlements.package_code = packages.node_code
)

select * from final
