-- One row per legacy contract, and per new contract without a legacy source, for each validated
-- phase (a phase's rows are replaced when it is validated again): its status, why, the fields
-- that differ (fct_migration_differences lists them) and the value difference.
with

pairs as (
    select * from {{ ref('int_migration__contract_pairs') }}
    where in_phase
),

differences as (
    select
        pair_id,
        count(*) as field_differences,
        {{ dbt.listagg('distinct field', "', '", 'order by field') }} as changed_fields
    from {{ ref('fct_migration_differences') }}
    where phase = {{ migration_run('phase') }}
    group by pair_id
),

judged as (
    select
        pairs.*,
        coalesce(differences.field_differences, 0) as field_differences,
        differences.changed_fields,
        case
            when pairs.pair_kind = 'duplicate' then 'duplicate'
            when pairs.pair_kind = 'legacy_only' then 'missing_in_new'
            when pairs.pair_kind = 'new_only' then 'unexpected_in_new'
            when differences.field_differences > 0 then 'changed'
            else 'matched'
        end as status
    from pairs
    left join differences
        on pairs.pair_id = differences.pair_id
)

select
    {{ migration_run('phase') }} || ':' || pair_id as reconciliation_id,
    {{ migration_run('phase') }} as phase,
    pair_id,
    legacy_contract_id,
    new_contract_id,
    customer_id,
    legacy_customer_no,
    coalesce(new_currency, legacy_currency) as currency,
    status,
    case
        when status = 'duplicate' and duplicate_rows > 1 then 'duplicate_rows'
        when status = 'duplicate' then 'duplicate_contract'
        when status = 'missing_in_new' and customer_id is null and not is_customer_in_master then 'orphan'
        when status = 'missing_in_new' and crosswalk_contract_id is null then 'not_in_crosswalk'
        when status = 'missing_in_new' then 'not_in_new_model'
        when status = 'unexpected_in_new' then 'no_legacy_source'
        when status = 'changed' then 'fields_differ'
    end as reason_code,
    case
        when status = 'duplicate' and duplicate_rows > 1
            then
                'its rows appear ' || cast(duplicate_rows as {{ dbt.type_string() }})
                || ' times in the legacy extract'
        when status = 'duplicate'
            then
                'maps to ' || crosswalk_contract_id || ', as does legacy contract ' || claimed_by
                || ' (compared instead)'
        when status = 'missing_in_new' and customer_id is null and not is_customer_in_master
            then
                'orphan: legacy customer ' || legacy_customer_no
                || ' is in neither the customer master nor the crosswalk'
        when status = 'missing_in_new' and crosswalk_contract_id is null
            then 'no crosswalk entry names a new contract for it'
        when status = 'missing_in_new'
            then 'the crosswalk names ' || crosswalk_contract_id || ', which the new model lacks'
        when status = 'unexpected_in_new' then 'no legacy contract maps to it'
        when status = 'changed' then 'differs in ' || changed_fields
    end as reason,
    changed_fields,
    cast(field_differences as {{ dbt.type_int() }}) as field_differences,
    legacy_value,
    new_value,
    cast(case when status in ('matched', 'changed') then new_value - legacy_value end as decimal(18, 2))
        as value_difference,
    {{ migration_as_of() }} as as_of_date,
    {{ migration_run('run_id') }} as run_id
from judged
