-- The index a warm EntitlementChecker answers from (entitlements.serve.check): every grant
-- a check weighs (int_entitlement_grants), with its allowance on each day of the relation
-- check_days on which it is in force. The reader fills check_days (one column, checked_on;
-- a temporary table) with a month of days the first time a check asks about that month.
--
-- One row per grant and day it is in force, and one row with a null checked_on for a grant
-- in force on none of the days. The allowance comes from the active_entitlements macro
-- evaluated once per day (a lateral join on the days), so a day's rows are
-- fct_active_entitlements' for that date, and a grant covers a day when it has a row for it.
with

in_force as (
    select
        check_days.checked_on,
        active.entitlement_id,
        active.period_start,
        active.period_end,
        active.limit_quantity,
        active.used_quantity,
        active.remaining_quantity
    from check_days,
        lateral ({{ active_entitlements('check_days.checked_on') }}) as active
)

select
    grants.customer_id,
    grants.entitlement_code,
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
    grants.precedence_rank,
    grants.precedence_rule,
    in_force.checked_on,
    in_force.period_start,
    in_force.period_end,
    in_force.limit_quantity,
    in_force.used_quantity,
    in_force.remaining_quantity
from {{ ref('int_entitlement_grants') }} as grants
left join in_force
    on grants.entitlement_id = in_force.entitlement_id
