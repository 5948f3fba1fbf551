-- Legacy contracts mapped to the new model's contract header: one row per legacy contract number,
-- its header read from its first segment. The crosswalk gives the new contract it became
-- (crosswalk_targets counts the entries: more than one fans it out, which the map checks stop)
-- and, through the previous contract's number, the contract it renews. Several legacy contracts
-- naming one new contract are one contract entered twice: the lowest number claims it
-- (claim_rank 1), the others are duplicates of it.
{{ config(tags=['migration_map']) }}

with

segments as (
    select
        *,
        row_number() over (
            partition by legacy_contract_id
            order by segment_no, _source_file, _load_id
        ) as header_rank
    from {{ ref('int_migration__legacy_segments') }}
),

contract_crosswalk as (
    select
        legacy_key as legacy_contract_id,
        min(new_key) as new_contract_id,
        count(*) as crosswalk_targets
    from {{ ref('stg_legacy__crosswalk') }}
    where object_type = 'CONTR'
    group by legacy_key
),

segment_totals as (
    select
        legacy_contract_id,
        count(*) as segments,
        cast(sum({{ term_value('annual_price', 'valid_from', 'valid_to') }}) as decimal(18, 2)) as legacy_value,
        {{ dbt.bool_or('next_valid_from < valid_to') }} as has_overlapping_segments
    from {{ ref('int_migration__mapped_segments') }}
    group by legacy_contract_id
),

key_counts as (
    select
        legacy_contract_id,
        max(key_occurrences) as duplicate_rows
    from segments
    group by legacy_contract_id
),

mapped as (
    select
        -- ids
        segments.legacy_contract_id,
        segments.legacy_customer_no,
        segments.customer_id,
        segments.is_customer_in_master,
        segments.in_phase,
        contract_crosswalk.new_contract_id,
        coalesce(contract_crosswalk.crosswalk_targets, 0) as crosswalk_targets,
        segments.previous_legacy_contract_id,
        previous_crosswalk.new_contract_id as renewal_of_contract_id,
        case
            when segments.previous_legacy_contract_id is not null then previous_crosswalk.new_contract_id is not null
        end as is_renewal_resolved,
        -- codes: the legacy system's fixed enumerations
        segments.legacy_contract_type,
        case segments.legacy_contract_type
            when 'SVC' then 'service_contract'
            when 'SUB' then 'subscription'
            when 'WTY' then 'warranty'
        end as contract_type,
        segments.legacy_status,
        case segments.legacy_status
            when 'A' then 'active'
            when 'E' then 'expired'
            when 'C' then 'cancelled'
        end as contract_status,
        segments.currency,
        case segments.auto_renew_flag
            when 'Y' then true
            when 'N' then false
        end as is_auto_renew,
        -- dates: [start_date, end_date)
        segments.start_date,
        {{ exclusive_end('segments.end_date_inclusive') }} as end_date,
        -- segments
        coalesce(segment_totals.segments, 0) as segments,
        segment_totals.legacy_value,
        coalesce(segment_totals.has_overlapping_segments, false) as has_overlapping_segments,
        key_counts.duplicate_rows
    from segments
    left join contract_crosswalk
        on segments.legacy_contract_id = contract_crosswalk.legacy_contract_id
    left join contract_crosswalk as previous_crosswalk
        on segments.previous_legacy_contract_id = previous_crosswalk.legacy_contract_id
    left join segment_totals
        on segments.legacy_contract_id = segment_totals.legacy_contract_id
    left join key_counts
        on segments.legacy_contract_id = key_counts.legacy_contract_id
    where segments.header_rank = 1
)

select
    *,
    case
        when new_contract_id is not null
            then row_number() over (partition by new_contract_id order by legacy_contract_id)
    end as claim_rank,
    case
        when new_contract_id is not null
            then min(legacy_contract_id) over (partition by new_contract_id)
    end as claimed_by
from mapped
