-- Each legacy contract paired with the new contract it became, and each new contract no legacy
-- contract maps to, with both sides' header values and contract values (sum over segments or
-- versions of annual price x months / 12). pair_kind: paired (compared field by field),
-- duplicate (not compared: rows repeated, or another legacy contract claims the same new one),
-- legacy_only (the crosswalk names no new contract, or one the new model lacks) or new_only.
-- A legacy contract belongs to the phase of its legacy customer, a new-only one to its customer's.
{{ config(tags=['migration_load']) }}

with

legacy as (
    select * from {{ ref('int_migration__mapped_contracts') }}
),

new_values as (
    select
        contract_id,
        count(*) as versions,
        cast(sum({{ term_value('annual_price', 'valid_from', 'valid_to') }}) as decimal(18, 2)) as new_value
    from {{ ref('int_contract_lines') }}
    group by contract_id
),

new_contracts as (
    select
        contracts.*,
        new_values.versions,
        new_values.new_value
    from {{ ref('stg_crm__service_contracts') }} as contracts
    left join new_values
        on contracts.contract_id = new_values.contract_id
)

-- Full outer: a legacy contract whose crosswalk target is missing keeps its row (legacy_only), a
-- new contract no legacy contract names gets one (new_only), and one named by several legacy
-- contracts (duplicates) appears once per legacy contract.
select
    coalesce(legacy.legacy_contract_id, 'new:' || new_contracts.contract_id) as pair_id,
    legacy.legacy_contract_id,
    new_contracts.contract_id as new_contract_id,
    legacy.new_contract_id as crosswalk_contract_id,
    case
        when legacy.legacy_contract_id is null then 'new_only'
        when legacy.duplicate_rows > 1 or legacy.claim_rank > 1 then 'duplicate'
        when new_contracts.contract_id is null then 'legacy_only'
        else 'paired'
    end as pair_kind,
    legacy.claimed_by,
    legacy.duplicate_rows,
    legacy.legacy_customer_no,
    legacy.is_customer_in_master,
    coalesce(legacy.customer_id, new_contracts.customer_id) as customer_id,
    case
        when legacy.legacy_contract_id is null then {{ in_migration_phase('new_contracts.customer_id') }}
        else legacy.in_phase
    end as in_phase,
    -- legacy side
    legacy.customer_id as legacy_customer_id,
    legacy.legacy_contract_type as legacy_contract_type_code,
    legacy.contract_type as legacy_contract_type,
    legacy.start_date as legacy_start_date,
    legacy.end_date as legacy_end_date,
    legacy.currency as legacy_currency,
    legacy.is_auto_renew as legacy_is_auto_renew,
    legacy.previous_legacy_contract_id,
    legacy.renewal_of_contract_id as legacy_renewal_of_contract_id,
    legacy.segments as legacy_segments,
    legacy.has_overlapping_segments,
    legacy.legacy_value,
    -- new side
    new_contracts.customer_id as new_customer_id,
    new_contracts.contract_type as new_contract_type,
    new_contracts.start_date as new_start_date,
    new_contracts.end_date as new_end_date,
    new_contracts.currency as new_currency,
    new_contracts.is_auto_renew as new_is_auto_renew,
    new_contracts.renewal_of_contract_id as new_renewal_of_contract_id,
    new_contracts.versions as new_versions,
    new_contracts.new_value
from legacy
full outer join new_contracts
    on legacy.new_contract_id = new_contracts.contract_id
