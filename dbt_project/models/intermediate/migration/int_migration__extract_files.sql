-- Extract completeness: each landed legacy file against the legacy system's control totals
-- (CONTROL.csv: records per file, and for CONTRACTS the sum of FEE_MINOR). A file the control
-- names but the extract lacks, or one it does not name, has nulls on the missing side.
-- Whole files, not phases: a truncated file is truncated for every phase.
{{ config(tags=['migration_extract']) }}

with

manifest as (
    select * from {{ ref('stg_audit__ingest_manifest') }}
    where
        table_name like 'legacy%'
        and table_name <> 'legacy_control_totals'
        and status in ('landed', 'validated')
        and superseded_by is null
),

control as (
    select * from {{ ref('stg_legacy__control_totals') }}
),

fees as (
    select
        _source_file,
        cast(sum(fee_minor_units) as {{ dbt.type_bigint() }}) as fee_total
    from {{ ref('stg_legacy__contract_segments') }}
    group by _source_file
),

files as (
    select
        coalesce(manifest.source_file, control.file_name) as file_name,
        manifest.table_name,
        manifest.load_id,
        manifest.row_count as landed_records,
        control.record_count as control_records,
        case when manifest.table_name = 'legacy_contracts' then fees.fee_total end as landed_hash_total,
        control.hash_total as control_hash_total
    from manifest
    full outer join control
        on manifest.source_file = control.file_name
    left join fees
        on manifest.source_file = fees._source_file
)

select
    *,
    landed_records is not null as is_landed,
    control_records is not null as is_in_control,
    coalesce(landed_records = control_records, false) as is_record_count_equal,
    coalesce(
        landed_hash_total = control_hash_total, (landed_hash_total is null and control_hash_total is null)
    ) as is_hash_total_equal
from files
