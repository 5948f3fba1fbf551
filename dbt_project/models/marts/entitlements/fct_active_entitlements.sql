-- Entitlements in force on the as-of date, with use and remaining allowance in
-- the current period. Limits include approved overrides in force that day.
{{ active_entitlements(as_of_date()) }}
