-- Every request of the relation check_requests at once: the set-based form of
-- entitlement_check.sql, for `entitlements check-batch` (entitlements.serve.check). The
-- reader creates check_requests as a temporary table (request_no, customer_id,
-- entitlement_code, asset_id, location_id, checked_on) and runs this one query: one plan
-- for any number of requests.
--
-- One row per request and grant of its customer and code (int_entitlement_grants), or one
-- row with null grant columns when there is none, in no particular order; the columns of
-- entitlement_check.sql and the request_no. The allowance comes from the active_entitlements
-- macro evaluated once per distinct date asked (a lateral join on the dates), so it is
-- fct_active_entitlements' for that date; a grant covers the date when the macro counts it
-- in force that day. Customers and catalog packages are read from the marts a warm checker
-- reads them from (dim_customers, dim_entitlement_catalog).
with

requests as (
    select * from check_requests
),

asked_days as (
    select distinct checked_on from requests
),

in_force as (
    select
        asked_days.checked_on,
        active.entitlement_id,
        active.period_start,
        active.period_end,
        active.limit_quantity,
        active.used_quantity,
        active.remaining_quantity
    from asked_days,
        lateral ({{ active_entitlements('asked_days.checked_on') }}) as active
),

asked_pairs as (
    select distinct
        customer_id,
        entitlement_code
    from requests
),

grants as (
    select grants.*
    from {{ ref('int_entitlement_grants') }} as grants
    inner join asked_pairs
        on
            grants.customer_id = asked_pairs.customer_id
            and grants.entitlement_code = asked_pairs.entitlement_code
),

customers as (
    select customer_id from {{ ref('dim_customers') }}
),

catalog_packages as (
    select
        entitlement_code,
        list(distinct package_code order by package_code) as catalog_packages
    from {{ ref('dim_entitlement_catalog') }}
    group by entitlement_code
)

select
    requests.request_no,
    requests.customer_id in (select customers.customer_id from customers) as customer_known,
    catalog_packages.catalog_packages,
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
    in_force.entitlement_id is not null as covers_date,
    grants.asset_id is null or coalesce(grants.asset_id = requests.asset_id, false) as covers_asset,
    grants.location_id is null
    or coalesce(grants.location_id = requests.location_id, false) as covers_location,
    grants.precedence_rank,
    grants.precedence_rule,
    in_force.period_start,
    in_force.period_end,
    in_force.limit_quantity,
    in_force.used_quantity,
    in_force.remaining_quantity
from requests
left join catalog_packages
    on requests.entitlement_code = catalog_packages.entitlement_code
left join grants
    on
        requests.customer_id = grants.customer_id
        and requests.entitlement_code = grants.entitlement_code
left join in_force
    on
        grants.entitlement_id = in_force.entitlement_id
        and requests.checked_on = in_force.checked_on
