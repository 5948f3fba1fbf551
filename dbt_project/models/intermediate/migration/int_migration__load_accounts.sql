-- The load checked per account and currency, for the phase: contracts, contract value and the
-- date range (first start, last end) on each side. The legacy side counts legacy contracts under
-- the account and currency the legacy system gives them, the new side new contracts under the
-- new model's; duplicates are left out (the reconciliation lists them).
{{ config(tags=['migration_load']) }}

with

pairs as (
    select * from {{ ref('int_migration__contract_pairs') }}
    where in_phase and pair_kind <> 'duplicate'
),

legacy_totals as (
    select
        legacy_customer_id as customer_id,
        legacy_currency as currency,
        count(*) as legacy_contracts,
        sum(legacy_value) as legacy_value,
        min(legacy_start_date) as legacy_first_start,
        max(legacy_end_date) as legacy_last_end
    from pairs
    where pair_kind in ('paired', 'legacy_only')
    group by legacy_customer_id, legacy_currency
),

new_totals as (
    select
        new_customer_id as customer_id,
        new_currency as currency,
        count(*) as new_contracts,
        sum(new_value) as new_value,
        min(new_start_date) as new_first_start,
        max(new_end_date) as new_last_end
    from pairs
    where pair_kind in ('paired', 'new_only')
    group by new_customer_id, new_currency
),

accounts as (
    select
        coalesce(legacy_totals.customer_id, new_totals.customer_id) as customer_id,
        coalesce(legacy_totals.currency, new_totals.currency) as currency,
        coalesce(legacy_totals.legacy_contracts, 0) as legacy_contracts,
        coalesce(new_totals.new_contracts, 0) as new_contracts,
        coalesce(legacy_totals.legacy_value, 0) as legacy_value,
        coalesce(new_totals.new_value, 0) as new_value,
        legacy_totals.legacy_first_start,
        new_totals.new_first_start,
        legacy_totals.legacy_last_end,
        new_totals.new_last_end
    from legacy_totals
    full outer join new_totals
        on
            {{ is_distinct('legacy_totals.customer_id', 'new_totals.customer_id') }} = false
            and {{ is_distinct('legacy_totals.currency', 'new_totals.currency') }} = false
)

select
    coalesce(customer_id, '(no account)') || ' ' || coalesce(currency, '(no currency)') as account_currency,
    *,
    new_value - legacy_value as value_difference,
    legacy_contracts = new_contracts as is_count_equal,
    new_value = legacy_value as is_value_equal,
    {{ is_distinct('legacy_first_start', 'new_first_start') }} = false
    and {{ is_distinct('legacy_last_end', 'new_last_end') }} = false as is_date_range_equal
from accounts
