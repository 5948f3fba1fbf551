-- The usage loads a build must apply to the incremental usage models: new (in raw, not in the
-- last build) or removed (in the last build, not in raw any more: superseded by a corrected file
-- or reverted). A view: what the next build has to apply, empty once a build is recorded
-- (audit.built_loads).
{{ config(materialized='view') }}

with

landed as (
    select distinct load_id from {{ ref('stg_usage__events') }}
),

built as (
    select load_id from {{ ref('stg_audit__built_loads') }}
    -- the raw table of source usage.events (entitlements/runs/build_plan.py INCREMENTAL_TABLES)
    where table_name = 'usage_events'
),

new_loads as (
    select
        landed.load_id,
        'new' as change_type
    from landed
    left join built
        on landed.load_id = built.load_id
    where built.load_id is null
),

removed_loads as (
    select
        built.load_id,
        'removed' as change_type
    from built
    left join landed
        on built.load_id = landed.load_id
    where landed.load_id is null
)

select * from new_loads
union all
select * from removed_loads
