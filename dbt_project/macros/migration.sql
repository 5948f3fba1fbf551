{#-
    Helpers of the legacy migration models (models/intermediate/migration/, docs/migration.md).
-#}

{#- A legacy date text (var legacy_date_format, strptime style) as a date; null when unreadable. -#}
{% macro legacy_date(text) -%}
    {{ return(adapter.dispatch('legacy_date')(text)) }}
{%- endmacro %}

{% macro default__legacy_date(text) -%}
    cast(try_strptime(trim({{ text }}), '{{ var("legacy_date_format") }}') as date)
{%- endmacro %}

{% macro spark__legacy_date(text) -%}
    {%- set java = var("legacy_date_format") | replace('%d', 'dd') | replace('%m', 'MM') | replace('%Y', 'yyyy') -%}
    to_date(trim({{ text }}), '{{ java }}')
{%- endmacro %}

{#- The day after an inclusive end: the legacy system keeps the last day, the new model the end. -#}
{% macro exclusive_end(inclusive_end) -%}
    cast({{ dbt.dateadd('day', 1, inclusive_end) }} as date)
{%- endmacro %}

{#- The value of a version or segment over [valid_from, valid_to): its annual price per month, to the cent. -#}
{% macro term_value(annual_price, valid_from, valid_to) -%}
    cast(round({{ annual_price }} * {{ dbt.datediff(valid_from, valid_to, "month") }} / 12.0, 2) as decimal(18, 2))
{%- endmacro %}

{#-
    A fact of the migration run being validated (run_id, phase, is_remainder, as_of_date), as a
    scalar subquery on audit.migration_current_run (written by `entitlements migrate validate`
    before the models build). Its ref is rendered on every call, so dbt records the dependency
    of a model calling it (or in_migration_phase) without a depends_on line.
-#}
{% macro migration_run(fact) -%}
    (select current_run.{{ fact }} from {{ ref('stg_audit__migration_current_run') }} as current_run)
{%- endmacro %}

{#-
    True when a customer is in the phase being validated: every customer for 'all'; else the
    phase's accounts in audit.migration_phase_accounts (the migration plan). The remainder phase
    is every customer no other phase takes, and a null customer: a legacy contract of no known
    account.
-#}
{% macro in_migration_phase(customer_id) -%}
    (
        {{ migration_run('phase') }} = 'all'
        or (
            {{ migration_run('is_remainder') }}
            and (
                {{ customer_id }} is null
                or {{ customer_id }} not in (
                    select phase_accounts.customer_id
                    from {{ ref('stg_audit__migration_phase_accounts') }} as phase_accounts
                    where phase_accounts.phase <> {{ migration_run('phase') }}
                )
            )
        )
        or (
            not {{ migration_run('is_remainder') }}
            and coalesce({{ customer_id }} in (
                select phase_accounts.customer_id
                from {{ ref('stg_audit__migration_phase_accounts') }} as phase_accounts
                where phase_accounts.phase = {{ migration_run('phase') }}
            ), false)
        )
    )
{%- endmacro %}

{#- True when two values differ, a null differing from any value but another null (portable). -#}
{% macro is_distinct(a, b) -%}
    coalesce({{ a }} <> {{ b }}, ({{ a }} is null) <> ({{ b }} is null))
{%- endmacro %}

{#-
    The rows of `relation` (a pairing of legacy and new records) where `legacy` and `new` differ,
    as field differences: the field's name, both values as text, and `reason` (SQL), with the
    ids every difference carries.
-#}
{% macro field_difference(relation, field, legacy, new, reason, segment_no='null') -%}
    select
        pair_id,
        legacy_contract_id,
        new_contract_id,
        customer_id,
        in_phase,
        '{{ field }}' as field,
        cast({{ segment_no }} as {{ dbt.type_int() }}) as segment_no,
        cast({{ legacy }} as {{ dbt.type_string() }}) as legacy_value,
        cast({{ new }} as {{ dbt.type_string() }}) as new_value,
        {{ reason }} as reason
    from {{ relation }}
    where {{ is_distinct(legacy, new) }}
{%- endmacro %}

{#- Why a legacy value and a new value differ, unless `specific` (SQL, null when it does not apply) says more. -#}
{% macro difference_reason(legacy, new, specific='null') -%}
    coalesce(
        {{ specific }},
        case
            when {{ legacy }} is null then 'missing in the legacy export'
            when {{ new }} is null then 'missing in the new model'
            else 'differs'
        end
    )
{%- endmacro %}
{#- The date of the parallel run (`migrate validate --as-of`). -#}
{% macro migration_as_of() -%}
    cast({{ migration_run('as_of_date') }} as date)
{%- endmacro %}

{#-
    True when `failing` of `total` records is a systematic fault rather than records to fix: at
    least var migration_min_systematic_records, and more than var migration_max_fault_share.
-#}
{% macro is_systematic(failing, total) -%}
    (
        {{ failing }} >= {{ var('migration_min_systematic_records') }}
        and {{ failing }} > {{ var('migration_max_fault_share') }} * {{ total }}
    )
{%- endmacro %}

{#-
    The fields of the legacy contracts extract (CONTRACTS.csv) the extract checks judge: the
    header name, the staging column holding its text, the typed column when the text is parsed
    (a text that does not parse is unreadable), and whether a value is required.
-#}
{% macro legacy_contract_fields() -%}
    {{ return([
        {'header': 'CONTR_NO', 'text': 'legacy_contract_id', 'typed': none, 'required': true},
        {'header': 'SEG_NO', 'text': 'segment_no_text', 'typed': 'segment_no', 'required': true},
        {'header': 'CUST_NO', 'text': 'legacy_customer_no', 'typed': none, 'required': true},
        {'header': 'CONTR_TYPE', 'text': 'legacy_contract_type', 'typed': none, 'required': true},
        {'header': 'START_DT', 'text': 'start_date_text', 'typed': 'start_date', 'required': true},
        {'header': 'END_DT', 'text': 'end_date_text', 'typed': 'end_date_inclusive', 'required': true},
        {'header': 'SEG_FROM', 'text': 'segment_from_text', 'typed': 'segment_from', 'required': true},
        {'header': 'SEG_TO', 'text': 'segment_to_text', 'typed': 'segment_to_inclusive', 'required': true},
        {'header': 'PROD_CD', 'text': 'legacy_product_code', 'typed': none, 'required': true},
        {'header': 'QTY', 'text': 'quantity_text', 'typed': 'quantity', 'required': false},
        {'header': 'FEE_MINOR', 'text': 'fee_minor_text', 'typed': 'fee_minor_units', 'required': true},
        {'header': 'CURR_CD', 'text': 'currency', 'typed': none, 'required': true},
    ]) }}
{%- endmacro %}
