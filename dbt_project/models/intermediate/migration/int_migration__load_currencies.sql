-- The load judged as a whole, per currency, for the phase: the share of contracts with no
-- counterpart on the other side, and of paired contracts whose value or term differs. A few are
-- records to fix (each in the reconciliation); a large share is a systematic fault (a load that
-- lost an account or a currency, amounts at the wrong scale, shifted dates), which the load
-- check stops (macro is_systematic: at least 3 contracts and over --max-fault-share).
{{ config(tags=['migration_load']) }}

with

pairs as (
    select
        *,
        coalesce(new_currency, legacy_currency) as currency
    from {{ ref('int_migration__contract_pairs') }}
    where in_phase and pair_kind <> 'duplicate'
),

judged as (
    select
        currency,
        count(*) as contracts,
        sum(case when pair_kind in ('legacy_only', 'new_only') then 1 else 0 end) as unmatched_contracts,
        sum(case when pair_kind = 'paired' then 1 else 0 end) as paired_contracts,
        sum(
            case when pair_kind = 'paired' and {{ is_distinct('legacy_value', 'new_value') }} then 1 else 0 end
        ) as value_mismatches,
        sum(
            case
                when
                    pair_kind = 'paired'
                    and (
                        {{ is_distinct('legacy_start_date', 'new_start_date') }}
                        or {{ is_distinct('legacy_end_date', 'new_end_date') }}
                    )
                    then 1
                else 0
            end
        ) as date_range_mismatches,
        sum(coalesce(legacy_value, 0)) as legacy_value,
        sum(coalesce(new_value, 0)) as new_value
    from pairs
    group by currency
)

select
    coalesce(currency, '(none)') as currency,
    contracts,
    unmatched_contracts,
    paired_contracts,
    value_mismatches,
    date_range_mismatches,
    legacy_value,
    new_value,
    cast(unmatched_contracts as {{ dbt.type_float() }}) / contracts as unmatched_share,
    cast(value_mismatches as {{ dbt.type_float() }}) / nullif(paired_contracts, 0) as value_mismatch_share,
    cast(date_range_mismatches as {{ dbt.type_float() }}) / nullif(paired_contracts, 0) as date_range_mismatch_share,
    {{ is_systematic('unmatched_contracts', 'contracts') }} as is_unmatched_systematic,
    {{ is_systematic('value_mismatches', 'paired_contracts') }} as is_value_mismatch_systematic,
    {{ is_systematic('date_range_mismatches', 'paired_contracts') }} as is_date_range_mismatch_systematic
from judged
