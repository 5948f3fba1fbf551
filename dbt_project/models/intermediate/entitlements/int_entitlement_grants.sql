-- One row per entitlement granted by a contract line version, a billing subscription item or a
-- CRM entitlement record of its own (record_lines below): the package expanded into its
-- entitlements, valid over [valid_from, valid_to) (dates) and [valid_from_at, valid_to_at)
-- (timestamps, UTC: attribution of usage and deliveries).
-- A null valid_to (and contract_end_date) is open-ended: an evergreen contract
-- (int_contract_lines).
-- Subscription items (docs/configuration.md, "Subscriptions as grants") grant the package their
-- price maps to, x quantity, from the later of the subscription's start and the item's creation
-- until it ended (ended_at), is set to end (cancel_at), else the current period's end. A
-- subscription and a CRM contract line describing one agreement grant once: an item naming a
-- contract line the CRM export has (metadata contract_line_id, in either form of a Salesforce id:
-- macros/salesforce_ids.sql), or overlapping a CRM line of the same customer and package, grants nothing
-- of its own (the CRM line is the agreement). An item naming a line the export lacks (rejected at
-- ingest, never exported) grants: the agreement billing shows is all there is.
-- precedence_rank orders all grants of a customer and entitlement code by the rule
-- configured for the entitlement type (var precedence_rules): wherever several cover
-- the same request, the lowest rank wins. Rules:
--   most_generous  unlimited, then the largest limit, the fastest SLA, asset-specific
--                  before general, the lowest contract line id (the default)
--   most_specific  asset-specific, then site-specific, then as most_generous
--   latest_start   the latest valid_from, then as most_generous
with

contract_lines as (
    select * from {{ ref('int_contract_lines') }}
),

entitlement_records as (
    select * from {{ ref('stg_crm__entitlements') }}
),

catalog as (
    select * from {{ ref('int_catalog_entitlements') }}
),

identities as (
    select * from {{ ref('int_customer_identities') }}
),

accounts as (
    select * from {{ ref('stg_crm__accounts') }}
),

crm_lines as (
    select
        contract_lines.contract_line_id,
        contract_lines.version_no,
        contract_lines.contract_id,
        contract_lines.package_code,
        contract_lines.asset_id,
        contract_lines.location_id,
        contract_lines.change_reason,
        contract_lines.quantity,
        cast(null as {{ dbt.type_int() }}) as cases_limit,
        contract_lines.customer_id,
        contract_lines.contract_type,
        contract_lines.currency,
        contract_lines.contract_start_date,
        contract_lines.contract_end_date,
        contract_lines.valid_from,
        contract_lines.valid_to,
        cast(contract_lines.valid_from as {{ dbt.type_timestamp() }}) as valid_from_at,
        cast(contract_lines.valid_to as {{ dbt.type_timestamp() }}) as valid_to_at
    from contract_lines
    -- a line whose contract the export lacks has no status: not granted
    where contract_lines.contract_status not in ('draft', 'cancelled')
),

subscription_items as (
    select
        subscriptions.*,
        coalesce(identities.customer_id, subscriptions.customer_id) as account_id,
        coalesce(subscriptions.started_at, subscriptions.created_at) as granted_from,
        coalesce(
            subscriptions.ended_at, subscriptions.cancel_at, subscriptions.current_period_end
        ) as granted_to
    from {{ ref('stg_billing__subscriptions') }} as subscriptions
    left join identities
        on subscriptions.customer_id = identities.source_id
    where
        subscriptions.subscription_status not in ('incomplete', 'incomplete_expired')
        and not exists (
            select 1
            from contract_lines
            where
                subscriptions.contract_line_id = contract_lines.contract_line_id
                or subscriptions.contract_line_id = {{ salesforce_id15('contract_lines.contract_line_id') }}
        )
),

subscription_lines as (
    select
        items.subscription_item_id as contract_line_id,
        1 as version_no,
        items.subscription_id as contract_id,
        items.item_code as package_code,
        cast(null as {{ dbt.type_string() }}) as asset_id,
        cast(null as {{ dbt.type_string() }}) as location_id,
        'granted' as change_reason,
        coalesce(items.quantity, 1) as quantity,
        cast(null as {{ dbt.type_int() }}) as cases_limit,
        items.account_id as customer_id,
        'subscription' as contract_type,
        coalesce(items.currency, accounts.currency) as currency,
        cast(items.granted_from as date) as contract_start_date,
        {{ date_ceil('items.granted_to') }} as contract_end_date,
        cast(items.granted_from as date) as valid_from,
        {{ date_ceil('items.granted_to') }} as valid_to,
        items.granted_from as valid_from_at,
        items.granted_to as valid_to_at
    from subscription_items as items
    left join accounts
        on items.account_id = accounts.customer_id
    where
        items.granted_to > items.granted_from
        and not exists (
            select 1
            from crm_lines
            where
                crm_lines.customer_id = items.account_id
                and crm_lines.package_code = items.item_code
                and crm_lines.valid_from_at < items.granted_to
                and (crm_lines.valid_to_at is null or crm_lines.valid_to_at > items.granted_from)
        )
),

record_lines as (
    -- Salesforce Entitlement records of their own (no contract line; stg_crm__entitlements has a
    -- package for them only then): the package the mapping gives their Type, for their account
    -- (and asset) over their dates. A per-incident one (IsPerIncident) allows CasesPerEntitlement
    -- cases over its whole term. One overlapping a CRM line of the same account and package is
    -- that line's record and grants nothing of its own.
    select
        records.entitlement_id as contract_line_id,
        1 as version_no,
        coalesce(records.contract_id, records.entitlement_id) as contract_id,
        records.package_code,
        records.asset_id,
        cast(null as {{ dbt.type_string() }}) as location_id,
        'granted' as change_reason,
        cast(1 as decimal(18, 4)) as quantity,
        case when records.is_per_incident then records.cases_per_entitlement end as cases_limit,
        records.customer_id,
        'entitlement' as contract_type,
        accounts.currency,
        records.start_date as contract_start_date,
        records.end_date as contract_end_date,
        records.start_date as valid_from,
        records.end_date as valid_to,
        cast(records.start_date as {{ dbt.type_timestamp() }}) as valid_from_at,
        cast(records.end_date as {{ dbt.type_timestamp() }}) as valid_to_at
    from entitlement_records as records
    left join accounts
        on records.customer_id = accounts.customer_id
    where
        records.package_code is not null
        and records.start_date is not null
        and not exists (
            select 1
            from crm_lines
            where
                crm_lines.customer_id = records.customer_id
                and crm_lines.package_code = records.package_code
                and (records.end_date is null or crm_lines.valid_from < records.end_date)
                and (crm_lines.valid_to is null or crm_lines.valid_to > records.start_date)
        )
),

lines as (
    select * from crm_lines
    union all
    select * from subscription_lines
    union all
    select * from record_lines
),

grants as (
    select
        lines.contract_line_id
        || '/v' || cast(lines.version_no as {{ dbt.type_string() }})
        || '/' || catalog.entitlement_code as entitlement_id,
        lines.customer_id,
        lines.contract_id,
        lines.contract_line_id,
        lines.version_no,
        lines.package_code,
        catalog.entitlement_code,
        catalog.entitlement_type,
        catalog.unit,
        -- a per-incident entitlement record counts its cases over its whole term
        case
            when lines.cases_limit is not null and catalog.consumed_by = 'service' then 'term'
            else catalog.limit_period
        end as limit_period,
        catalog.consumed_by,
        catalog.coverage_hours,
        catalog.sla_response_hours,
        lines.asset_id,
        lines.location_id,
        lines.change_reason,
        lines.contract_type,
        lines.currency,
        case
            when lines.cases_limit is not null and catalog.consumed_by = 'service' then lines.cases_limit
            else catalog.limit_quantity * lines.quantity
        end as limit_quantity,
        lines.contract_start_date,
        lines.contract_end_date,
        lines.valid_from,
        lines.valid_to,
        lines.valid_from_at,
        lines.valid_to_at
    from lines
    inner join catalog
        on lines.package_code = catalog.package_code
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
