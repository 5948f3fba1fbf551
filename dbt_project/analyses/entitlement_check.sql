-- Is customer $customer_id entitled to $entitlement_code on $on, for asset $asset_id at
-- site $location_id (either may be null: none given)? Parameters are bound at run time by
-- entitlements.check; the build stores this compiled SQL in audit.compiled_queries.
--
-- One row per grant of that customer and code (int_entitlement_grants), or a single row
-- with null grant columns when there is none. Each grant says whether it covers the
-- request (validity [valid_from, valid_to), asset and site null on the grant or equal) and
-- its precedence_rank: among covering grants the lowest rank wins. When in force that day
-- it carries its allowance period, use and remaining allowance from the same
-- active_entitlements macro as fct_active_entitlements (joined by entitlement_id), so the
-- remaining allowance is the mart's. Every row also carries whether the customer is known
-- and the catalog packages that include the code (empty: unknown code), which the answer
-- names when nothing covers. Kept narrow: planning it is most of a check's time.
with

grants as (
    select * from {{ ref('int_entitlement_grants') }}
    where customer_id = $customer_id and entitlement_code = $entitlement_code
),

in_force as (
    select * from ({{ active_entitlements('cast($on as date)') }}) as active
    where customer_id = $customer_id and entitlement_code = $entitlement_code
),

request as (
    select
        exists (
            select 1 from {{ ref('stg_crm__accounts') }}
            where customer_id = $customer_id
        ) as customer_known,
        (
            select list(distinct package_code order by package_code)
            from {{ ref('int_catalog_entitlements') }}
            where entitlement_code = $entitlement_code
        ) as catalog_packages
)

select
    request.customer_known,
    request.catalog_packages,
    grants.entitlement_id,
    grants.contract_id,
    grants.contract_line_id,
    grants.version_no,
    grants.package_code,
    grants.entitlement_type,
    grants.asset_id,
    grants.location_id,
    grants.valid_from,
    grants.valid_to,
    {{ in_force('grants.valid_from', 'grants.valid_to', 'cast($on as date)') }} as covers_date,
    grants.asset_id is null or coalesce(grants.asset_id = cast($asset_id as varchar), false) as covers_asset,
    grants.location_id is null
    or coalesce(grants.location_id = cast($location_id as varchar), false) as covers_location,
    grants.precedence_rank,
    grants.precedence_rule,
    in_force.period_start,
    in_force.period_end,
    in_force.limit_quantity,
    in_force.used_quantity,
    in_force.remaining_quantity
from request
left join grants
    on true
left join in_force
    on grants.entitlement_id = in_force.entitlement_id
