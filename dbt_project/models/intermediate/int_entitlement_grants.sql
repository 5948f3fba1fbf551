-- One row per entitlement granted by a contract line version: the line's package
-- expanded into its entitlements, valid over [valid_from, valid_to).
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
)

select * from grants
