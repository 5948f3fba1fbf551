-- Nothing dropped silently: every legacy contract of the phase has exactly one reconciliation
-- row, and every new contract of the phase's accounts is reconciled (here, or as the
-- counterpart of a legacy contract of another phase). One row, for the reconcile checks.
{{ config(tags=['migration_reconcile']) }}

with

reconciliation as (
    select * from {{ ref('fct_migration_reconciliation') }}
    where phase = {{ migration_run('phase') }}
),

legacy_contracts as (
    select count(*) as legacy_contracts
    from {{ ref('int_migration__mapped_contracts') }}
    where in_phase
),

reconciled as (
    select
        count(distinct legacy_contract_id) as reconciled_legacy_contracts,
        sum(case when legacy_contract_id is not null then 1 else 0 end) as legacy_rows
    from reconciliation
),

paired_new_contracts as (
    select distinct new_contract_id from {{ ref('int_migration__contract_pairs') }}
    where new_contract_id is not null
),

new_contracts as (
    select
        count(*) as new_contracts,
        sum(case when paired_new_contracts.new_contract_id is null then 1 else 0 end) as unaccounted_new_contracts
    from {{ ref('stg_crm__service_contracts') }} as contracts
    left join paired_new_contracts
        on contracts.contract_id = paired_new_contracts.new_contract_id
    where {{ in_migration_phase('contracts.customer_id') }}
)

select
    {{ migration_run('phase') }} as phase,
    legacy_contracts.legacy_contracts,
    reconciled.reconciled_legacy_contracts,
    reconciled.legacy_rows,
    new_contracts.new_contracts,
    new_contracts.unaccounted_new_contracts
from legacy_contracts
cross join reconciled
cross join new_contracts
