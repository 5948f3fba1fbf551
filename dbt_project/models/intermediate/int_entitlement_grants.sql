-- One row per entitlement granted by a contract line version: the line's package
-- expanded into its entitlements, valid over [valid_from, valid_to).
-- precedence_rank orders all grants of a customer and entitlement code by the rule
-- configured for the entitlement type (var precedence_rules): wherever several cover
-- the same request, the lowest rank wins. Rules:
--   most_generous  unlimited, then the largest limit, the fastest SLA, asset-specific
--                  before general, the lowest contract line id (the default)
--   most_specific  asset-specific, then site-specific, then as most_generous
--   latest_start   the latest valid_from, then as most_generous
with

contract_lines as (
    select * from {{ ref('stg_crm__contract_lines') }}
),

contracts as (
    select * from {{ ref('stg_crm__service_contracts') }}
),

catalog as (
    select * from {{ ref('int_catalog_entitlements') }}
),

grants as (
    select
        contract_lines.contract_line_id
        || '/v' || cast(contract_lines.version_no as {{ dbt.type_string() }})
        || '/' || catalog.entitlement_code as entitlement_id,
        contracts.customer_id,
        contracts.contract_id,
        contract_lines.contract_line_id,
        contract_lines.version_no,
        contract_lines.package_code,
        catalog.entitlement_code,
        catalog.entitlement_type,
        catalog.unit,
        catalog.limit_period,
        catalog.consumed_by,
        catalog.coverage_hours,
        catalog.sla_response_hours,
        contract_lines.asset_id,
        contract_lines.location_id,
        contract_lines.change_reason,
        contracts.contract_type,
        contracts.currency,
        catalog.limit_quantity * contract_lines.quantity as limit_quantity,
        contracts.start_date as contract_start_date,
        contracts.end_date as contract_end_date,
        contract_lines.valid_from,
        contract_lines.valid_to
    from contract_lines
    inner join contracts
        on contract_lines.contract_id = contracts.contract_id
    inner join catalog
        on contract_lines.package_code = catalog.package_code
    where contracts.contract_status not in ('draft', 'cancelled')
),

ruled as (
    select
        *,
        case entitlement_type
            {%- for entitlement_type, rule in var('precedence_rules').items() %}
                when '{{ entitlement_type }}' then '{{ rule }}'
            {%- endfor %}
            else 'most_generous'
        end as precedence_rule
    from grants
)

select
    *,
    row_number() over (
        partition by customer_id, entitlement_code
        order by
            case
                when precedence_rule = 'most_specific'
                    then
                        case when asset_id is null then 1 else 0 end
                        + case when location_id is null then 1 else 0 end
                else 0
            end,
            case
                when precedence_rule = 'latest_start'
                    then {{ dbt.datediff('valid_from', "cast('2999-12-31' as date)", 'day') }}
                else 0
            end,
            case when limit_quantity is null then 0 else 1 end,
            limit_quantity desc,
            coalesce(sla_response_hours, 1000000),
            case when asset_id is null then 1 else 0 end,
            contract_line_id asc,
            version_no asc
    ) as precedence_rank
from ruled
