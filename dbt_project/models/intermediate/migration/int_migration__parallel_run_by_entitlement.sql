-- The parallel run judged per entitlement, for the phase: the customer-and-scope rows where the
-- legacy system and the new model disagree. A few are records to fix; a large share of one
-- entitlement disagreeing means the catalog or the legacy allowances differ systematically,
-- which the reconcile check stops (macro is_systematic: at least 3 rows and over --max-fault-share).
{{ config(tags=['migration_reconcile']) }}

with

judged as (
    select
        entitlement_code,
        count(*) as entitlements,
        sum(case when status <> 'matched' then 1 else 0 end) as differing
    from {{ ref('fct_migration_parallel_run') }}
    where phase = {{ migration_run('phase') }}
    group by entitlement_code
)

select
    *,
    cast(differing as {{ dbt.type_float() }}) / entitlements as differing_share,
    {{ is_systematic('differing', 'entitlements') }} as is_systematic
from judged
