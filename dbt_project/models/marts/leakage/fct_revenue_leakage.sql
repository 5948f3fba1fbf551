-- Every leak: one row per evidence record, priced in the contract's currency.
with

leaks as (
    {% for model in [
        'int_leakage_service_deliveries',
        'int_leakage_usage_periods',
        'int_leakage_invoice_lines',
        'int_leakage_overrides',
    ] %}
        select
            category,
            evidence_type,
            evidence_id,
            customer_id,
            occurred_on,
            amount,
            currency,
            entitlement_code,
            contract_id,
            explanation
        from {{ ref(model) }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select
    category || ':' || evidence_id as leakage_id,
    customer_id,
    category,
    evidence_type,
    evidence_id,
    occurred_on,
    cast(amount as decimal(18, 2)) as amount,
    currency,
    entitlement_code,
    contract_id,
    explanation
from leaks
