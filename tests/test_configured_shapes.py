"""The shapes as entitlements.yml adjusts them (entitlements/ingest/configured.py), landed by the real ingest.

Each test writes a small export in a vendor's documented format plus a configuration, lands it and
checks the raw rows against values written here: meters reading any path and filtering by event
type, an event type no meter counts reported like an unmapped id, unique_count keeping what it
counts, Stripe customers keyed by a metadata key, a Salesforce picklist deciding who pays,
ParentServiceContractId as the renewal link, and contract line prices per term or per year.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from entitlements.config import load_config
from entitlements.ingest.errors import IngestError
from entitlements.ingest.land import ingest_exports
from tests.conftest import query_rows

pytestmark = pytest.mark.integration


def export(root: Path, files: dict[str, str], config: str) -> tuple[Path, Path]:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    (root / "entitlements.yml").write_text(config, encoding="utf-8")
    return root, root.parent / f"{root.name}.duckdb"


def land(root: Path, warehouse: Path, **options) -> list:
    config = load_config(root / "entitlements.yml")
    return ingest_exports(warehouse, root, progress=False, config=config, **options)


def event(event_id: str, event_type: str, data: dict, time: str = "2026-03-02T10:00:00+01:00") -> str:
    return json.dumps(
        {"specversion": "1.0", "id": event_id, "source": "/gw", "type": event_type, "time": time,
         "data": data}
    )  # fmt: skip


METERS = """\
usage_events:
  event_id: [source, id]
  customer: data.account.id
meters:
  API_CALLS:
    event_type: [api.request, api.batch]
    value: data.units
  ACTIVE_USERS:
    event_type: user.seen
    value: data.user
    aggregation: unique_count
"""


def test_meters_read_their_paths_and_an_event_no_meter_counts_refuses_the_file(tmp_path: Path) -> None:
    events = [
        event("e1", "api.request", {"units": 120, "account": {"id": "C1"}}),
        event("e2", "api.batch", {"units": "2.5", "account": {"id": "C2"}}),
        event("e3", "user.seen", {"user": "u-17", "account": {"id": "C1"}}),
        event("e4", "heartbeat", {"account": {"id": "C1"}}),
    ]
    root, warehouse = export(tmp_path / "x", {"usage/gateway.jsonl": "\n".join(events) + "\n"}, METERS)
    with pytest.raises(IngestError) as refused:
        land(root, warehouse)
    assert "usage/gateway.jsonl" in str(refused.value) and "heartbeat" in str(refused.value)

    (result,) = land(root, warehouse, quarantine_unmapped=True)
    assert (result.rows, result.rows_rejected) == (3, 1)
    rows = query_rows(
        warehouse,
        "SELECT event_id, customer_id, meter_code, quantity, distinct_value, occurred_at"
        " FROM raw.usage_events ORDER BY event_id",
    )
    assert [tuple(r.values()) for r in rows] == [
        ("/gw|e1", "C1", "API_CALLS", Decimal("120.0000"), None, datetime(2026, 3, 2, 9)),
        ("/gw|e2", "C2", "API_CALLS", Decimal("2.5000"), None, datetime(2026, 3, 2, 9)),
        ("/gw|e3", "C1", "ACTIVE_USERS", Decimal("1.0000"), "u-17", datetime(2026, 3, 2, 9)),
    ]
    rejected = "SELECT disposition, reason_kind FROM audit.rejected_rows ORDER BY rejected_at"
    assert [tuple(r.values()) for r in query_rows(warehouse, rejected)] == [
        ("refused", "unmapped"),  # the first attempt, kept for the record
        ("quarantined", "unmapped"),
    ]


STRIPE_CONFIG = """\
identity:
  billing_customer_metadata_key: sf_account
evidence:
  invoice_line_reference:
    - metadata_key: case_ref
    - description_pattern: 'Case #(\\d+)'
"""


def _list(objects: list[dict]) -> str:
    return json.dumps({"object": "list", "has_more": False, "url": "/v1/x", "data": objects})


def test_stripe_customers_keyed_by_metadata_and_lines_naming_their_case(tmp_path: Path) -> None:
    customers = [
        {"id": "cus_1", "object": "customer", "created": 1767225600, "metadata": {"sf_account": "001A"}},
        {"id": "cus_2", "object": "customer", "created": 1767225600, "metadata": {}},
    ]
    line = {"object": "line_item", "currency": "usd", "quantity": 1, "metadata": {},
            "period": {"start": 1767225600, "end": 1769904000},
            "pricing": {"type": "price_details", "price_details": {"price": "price_x"}}}  # fmt: skip
    invoices = [
        {"id": "in_1", "object": "invoice", "customer": "cus_1", "currency": "usd", "status": "paid",
         "created": 1769904000, "lines": {"object": "list", "data": [
             line | {"id": "il_1", "amount": 100, "description": "Repair, Case #1042"},
             line | {"id": "il_2", "amount": 200, "description": "Case #7", "metadata": {"case_ref": "500X"}},
             line | {"id": "il_3", "amount": 300, "description": "Support plan"}]}},
    ]  # fmt: skip
    mapping = "kind,source_id,target_id\nprice,price_x,INCIDENT\nline_type,price_x,service\n"
    root, warehouse = export(
        tmp_path / "x",
        {"billing/customers.json": _list(customers), "billing/invoices.json": _list(invoices),
         "mapping.csv": mapping},
        STRIPE_CONFIG,
    )  # fmt: skip
    land(root, warehouse)
    assert query_rows(
        warehouse, "SELECT customer_ref, customer_id FROM raw.billing_customers ORDER BY 1"
    ) == [
        {"customer_ref": "cus_1", "customer_id": "001A"},
        {"customer_ref": "cus_2", "customer_id": None},  # landed, listed as unresolved by dbt
    ]
    assert query_rows(warehouse, "SELECT customer_id FROM raw.billing_invoices") == [{"customer_id": "cus_1"}]
    lines = query_rows(
        warehouse,
        "SELECT invoice_line_id, reference_id, reference_matched_by"
        " FROM raw.billing_invoice_lines ORDER BY 1",
    )
    assert [tuple(r.values()) for r in lines] == [
        ("il_1", "1042", "description_pattern"),
        ("il_2", "500X", "metadata_key:case_ref"),  # the first strategy that finds one wins
        ("il_3", None, None),
    ]


def test_stripe_meter_events_keep_the_billing_customer_id_when_customers_are_keyed_by_metadata(
    tmp_path: Path,
) -> None:
    # Stripe's v1 billing.meter_event, as the API returns it (payload.stripe_customer_id).
    meter_events = "\n".join(
        json.dumps(
            {"object": "billing.meter_event", "event_name": "api_requests", "identifier": f"evt-{n}",
             "payload": {"stripe_customer_id": "cus_1", "value": "25"}, "timestamp": 1767225600 + n,
             "created": 1767225605 + n, "livemode": True}
        )
        for n in (1, 2)
    )  # fmt: skip
    customers = [
        {"id": "cus_1", "object": "customer", "created": 1767225600, "metadata": {"sf_account": "001A"}}
    ]
    files = {
        "billing/customers.json": _list(customers),
        "usage/meter_events.jsonl": meter_events,
        "mapping.csv": "kind,source_id,target_id\nmeter,api_requests,API_CALLS\n",
    }
    root, warehouse = export(tmp_path / "keyed", files, STRIPE_CONFIG)
    land(root, warehouse)
    # No customer mapping rows: the Stripe id lands, and dbt resolves it to 001A (int_customer_identities).
    events = "SELECT event_id, customer_id, meter_code FROM raw.usage_events ORDER BY 1"
    assert query_rows(warehouse, events) == [
        {"event_id": "evt-1", "customer_id": "cus_1", "meter_code": "API_CALLS"},
        {"event_id": "evt-2", "customer_id": "cus_1", "meter_code": "API_CALLS"},
    ]
    # Without the identity key, the mapping is the only way to an account: a row is asked for.
    root, warehouse = export(tmp_path / "mapped", files, "version: 1\n")
    with pytest.raises(IngestError, match=r"unmapped customer id 'cus_1': add a row \"customer,cus_1,"):
        land(root, warehouse)


def test_flat_meter_events_keep_unmapped_billing_ids_and_a_mapping_row_still_translates(
    tmp_path: Path,
) -> None:
    # Stripe's CSV upload template for meter events, or any metering system's flat export: the same
    # billing customer ids. With the identity key, an id the mapping lacks lands as written (dbt
    # resolves it); an id the mapping has is translated as before.
    flat = (
        "identifier,event_name,timestamp,payload_stripe_customer_id,payload_value\n"
        "evt-1,api_requests,1767225601,cus_1,25\n"
        "evt-2,api_requests,1767225602,cus_9,5\n"
    )
    customers = [
        {"id": "cus_1", "object": "customer", "created": 1767225600, "metadata": {"sf_account": "001A"}}
    ]
    files = {
        "billing/customers.json": _list(customers),
        "usage/meter_events.csv": flat,
        "mapping.csv": "kind,source_id,target_id\nmeter,api_requests,API_CALLS\ncustomer,cus_9,001Z\n",
    }
    root, warehouse = export(tmp_path / "keyed", files, STRIPE_CONFIG)
    land(root, warehouse)
    assert query_rows(warehouse, "SELECT event_id, customer_id FROM raw.usage_events ORDER BY 1") == [
        {"event_id": "evt-1", "customer_id": "cus_1"},
        {"event_id": "evt-2", "customer_id": "001Z"},
    ]
    # Without the identity key every id needs its mapping row, as before.
    root, warehouse = export(tmp_path / "mapped", files, "version: 1\n")
    with pytest.raises(IngestError, match=r"unmapped customer id 'cus_1'"):
        land(root, warehouse)


SALESFORCE_CONFIG = """\
service_deliveries:
  billable:
    field: Billing_Category__c
    customer_pay: [Time and Material]
    covered: [Contract]
crm:
  renewal_link_field: Previous_Contract__c
  contract_line_price: {price}
"""
ACCOUNT = (
    "Id,Name,BillingCountryCode,CurrencyIsoCode,CreatedDate\n"
    "001000000000001AAA,Acme,US,USD,2025-01-01T00:00:00.000Z\n"
)
CASES = (
    "Id,AccountId,Type,Billing_Category__c,CreatedDate,Status,EntitlementId\n"
    "500000000000001AAA,001000000000001AAA,Repair,Time and Material,2026-03-01T10:00:00.000Z,New,"
    "550000000000001AAA\n"
    "500000000000002AAA,001000000000001AAA,Repair,Contract,2026-03-01T10:00:00.000Z,New,\n"
    "500000000000003AAA,001000000000001AAA,Repair,,2026-03-01T10:00:00.000Z,New,\n"
)
CONTRACTS = (
    "Id,AccountId,StartDate,EndDate,Status,CurrencyIsoCode,ParentServiceContractId,Previous_Contract__c\n"
    "810000000000001AAA,001000000000001AAA,2024-03-01,2026-02-28,Expired,USD,,\n"
    "810000000000002AAA,001000000000001AAA,2026-03-01,2027-02-28,Active,USD,810000000000009AAA,"
    "810000000000001AAA\n"
)
LINES = (
    "Id,ServiceContractId,Product2Id,Quantity,UnitPrice,StartDate,EndDate\n"
    "811000000000001AAA,810000000000001AAA,01t000000000001AAA,1,48000.00,2024-03-01,2026-02-28\n"
    "811000000000002AAA,810000000000002AAA,01t000000000001AAA,1,20000.00,2026-03-01,2026-08-31\n"
)


@pytest.mark.parametrize(
    ("price", "annual"),
    [
        ("per_term", ("24000.00", "40000.00")),
        ("annual", ("48000.00", "20000.00")),
        ("monthly", ("576000.00", "240000.00")),
    ],
)
def test_salesforce_picklist_renewal_link_and_line_prices_as_configured(
    tmp_path: Path, price: str, annual: tuple[str, str]
) -> None:
    mapping = "kind,source_id,target_id\nservice,Repair,INCIDENT\nproduct,01t000000000001AAA,GOLD\n"
    root, warehouse = export(
        tmp_path / "x",
        {"crm/Account.csv": ACCOUNT, "crm/Case.csv": CASES, "crm/ServiceContract.csv": CONTRACTS,
         "crm/ContractLineItem.csv": LINES, "mapping.csv": mapping},
        SALESFORCE_CONFIG.format(price=price),
    )  # fmt: skip
    land(root, warehouse)
    assert [
        r["billing_type"]
        for r in query_rows(warehouse, "SELECT billing_type FROM raw.crm_cases ORDER BY case_id")
    ] == [
        "customer_pay",  # the picklist wins over the EntitlementId
        "covered",
        "customer_pay",  # no value: the default rule (no entitlement, no contract)
    ]
    assert query_rows(
        warehouse, "SELECT renewal_of_contract_id FROM raw.crm_service_contracts ORDER BY contract_id"
    ) == [{"renewal_of_contract_id": None}, {"renewal_of_contract_id": "810000000000001AAA"}]
    prices = query_rows(
        warehouse, "SELECT annual_price FROM raw.crm_contract_lines ORDER BY contract_line_id"
    )
    assert tuple(str(r["annual_price"]) for r in prices) == annual  # 24 months at 48,000; 6 at 20,000


def test_the_configuration_an_export_was_ingested_with_is_what_dbt_applies(tmp_path: Path) -> None:
    """The ingest records its configuration; dbt reads the last one recorded. A legacy export's
    ingest (migration) is not described by it and keeps it; another export's ingest replaces it."""
    from entitlements.config import recorded_dbt_vars
    from entitlements.demo import generate_demo

    demo = tmp_path / "demo"
    generate_demo(demo, seed=3, customers=10, usage_events=1000)
    (demo / "entitlements.yml").write_text("tolerances:\n  under_billed_percent: 2\n")
    warehouse = tmp_path / "warehouse.duckdb"
    ingest_exports(warehouse, demo, progress=False)
    assert recorded_dbt_vars(warehouse) == {"under_billed_tolerance_pct": 2}
    ingest_exports(warehouse, demo / "legacy", progress=False, file_format="legacy")
    assert recorded_dbt_vars(warehouse) == {"under_billed_tolerance_pct": 2}
    (demo / "entitlements.yml").unlink()
    ingest_exports(warehouse, demo, progress=False)
    assert recorded_dbt_vars(warehouse) == {}


def test_a_dbt_var_is_the_recorded_configurations_else_dbt_projects_default(tmp_path: Path) -> None:
    """What the run summary's notes quote (the recoverable window): the warehouse's value, not ours."""
    import duckdb

    from entitlements.config import effective_dbt_var, load_config, record_config

    warehouse = tmp_path / "warehouse.duckdb"
    assert effective_dbt_var(warehouse, "recoverable_billing_window_days") == 90  # no warehouse yet
    path = tmp_path / "entitlements.yml"
    path.write_text("windows:\n  recoverable_billing_window_days: 30\n")
    with duckdb.connect(str(warehouse)) as con:
        record_config(con, load_config(path))
    assert effective_dbt_var(warehouse, "recoverable_billing_window_days") == 30
    assert effective_dbt_var(warehouse, "renewal_lookback_days") == 365
