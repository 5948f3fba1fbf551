-- fct_active_entitlements for any date: $as_of is bound at run time
-- (entitlements.asof.active_entitlements).
{{ active_entitlements('cast($as_of as date)') }}
