"""Stripe exports (ingest/adapters/stripe.py): API JSON and Dashboard CSV onto the billing tables.

Each test writes a small hand-made export (objects as Stripe's API documents them, Dashboard
headers as its exports name them), lands it with the real ingest and checks the raw rows against
the values written here: minor units per currency (JPY has none), subscription periods on the
subscription (older API versions) or on its items (2025-03-31.basil on), a list response and
JSON lines giving the same rows, Dashboard header aliases, and an unmapped price id named.
Credits land as they are: negative proration lines, discount amounts and credit notes, with no
row rejected for being negative.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from entitlements.ingest.adapters.stripe import MACROS
from entitlements.ingest.errors import IngestError
from entitlements.ingest.land import FileResult, ingest_exports
from tests.conftest import query_rows

pytestmark = pytest.mark.integration

MAPPING = """kind,source_id,target_id
customer,cus_A,C00001
customer,cus_B,C00002
price,price_gold_usd,GOLD_SUPPORT
line_type,price_gold_usd,subscription
price,price_incident_jpy,INCIDENT
line_type,price_incident_jpy,service
price,price_calls_usd,API_CALLS
line_type,price_calls_usd,overage
"""

JUNE_1, JULY_1, AUG_1 = 1717200000, 1719792000, 1722470400  # 2024-06-01, 07-01, 08-01 00:00 UTC

# Invoice line items as GET /v1/invoices/:id/lines returns them, one per API generation.
LINE_ITEMS: list[dict[str, Any]] = [
    {  # 2025-03-31.basil and later: the price id under pricing.price_details
        "id": "il_jpy",
        "object": "line_item",
        "invoice": "in_1",
        "amount": 35000,
        "currency": "jpy",
        "quantity": 1,
        "period": {"start": JUNE_1, "end": JULY_1},
        "pricing": {
            "type": "price_details",
            "price_details": {"price": "price_incident_jpy", "product": "prod_i"},
        },
        "parent": {"type": "invoice_item_details", "invoice_item_details": {"proration": False}},
        "metadata": {"reference_id": "CS-0000045"},
    },
    {  # older versions: the expanded price object
        "id": "il_gold",
        "object": "line_item",
        "invoice": "in_2",
        "amount": 200000,
        "currency": "usd",
        "quantity": 1,
        "period": {"start": JUNE_1, "end": JULY_1},
        "price": {"id": "price_gold_usd", "object": "price", "unit_amount": 200000},
        "proration": False,
        "subscription": "sub_old",
        "subscription_item": "si_old",
        "metadata": {"contract_id": "SC-000001", "contract_line_id": "SCL-000001"},
    },
    {
        "id": "il_calls",
        "object": "line_item",
        "invoice": "in_2",
        "amount": 3534,
        "currency": "usd",
        "quantity": 17669,
        "period": {"start": JUNE_1, "end": JULY_1},
        "price": {"id": "price_calls_usd", "object": "price"},
        "metadata": {"reference_id": "C00001:API_CALLS:2024-06"},
    },
]


def list_response(objects: list[dict[str, Any]], url: str) -> str:
    return json.dumps({"object": "list", "url": url, "has_more": False, "data": objects}, indent=1)


def json_lines(objects: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(o) + "\n" for o in objects)


def export(root: Path, files: dict[str, str], mapping: str = MAPPING) -> Path:
    for name, text in {**files, "mapping.csv": mapping}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def ingest(export_dir: Path, **options: Any) -> tuple[Path, list[FileResult]]:
    warehouse = export_dir.parent / f"{export_dir.name}.duckdb"
    return warehouse, ingest_exports(warehouse, export_dir, progress=False, **options)


def raw(warehouse: Path, table: str, order: str) -> list[dict[str, Any]]:
    rows = query_rows(warehouse, f"SELECT * FROM raw.{table} ORDER BY {order}")
    for row in rows:
        for lineage in ("_load_id", "_source_file", "_loaded_at", "_extra"):
            row.pop(lineage)
    return rows


def test_amounts_in_minor_units_are_scaled_by_the_currency_exponent(tmp_path: Path) -> None:
    bad = {**LINE_ITEMS[2], "id": "il_bad", "amount": 12.5}  # a fraction of a cent: not Stripe's
    exported = export(
        tmp_path / "x", {"billing/invoice_line_items.json": list_response([*LINE_ITEMS, bad], "/v1/x")}
    )
    warehouse, (result,) = ingest(exported, file_format="stripe", max_rejected_share=1.0)

    assert (result.shape, result.rows, result.rows_rejected) == ("stripe.invoice_line_items", 3, 1)
    lines = {r["invoice_line_id"]: r for r in raw(warehouse, "billing_invoice_lines", "invoice_line_id")}
    assert {k: (v["amount"], v["currency"]) for k, v in lines.items()} == {
        "il_jpy": (Decimal("35000.00"), "JPY"),  # yen have no minor unit
        "il_gold": (Decimal("2000.00"), "USD"),
        "il_calls": (Decimal("35.34"), "USD"),
    }
    assert lines["il_jpy"] | {"amount": None} == {
        "invoice_line_id": "il_jpy",
        "invoice_id": "in_1",
        "line_type": "service",
        "contract_id": None,
        "contract_line_id": None,
        "item_code": "INCIDENT",
        "reference_id": "CS-0000045",
        "reference_matched_by": "metadata_key:reference_id",
        "subscription_item_id": None,
        "period_start": date(2024, 6, 1),
        "period_end": date(2024, 7, 1),
        "quantity": Decimal("1.0000"),
        "amount": None,
        "currency": "JPY",
        "discount_amount": None,  # no discount_amounts key: nothing says
        "is_proration": False,  # parent.invoice_item_details.proration
    }
    assert (lines["il_gold"]["contract_id"], lines["il_gold"]["contract_line_id"]) == (
        "SC-000001",
        "SCL-000001",
    )
    assert (lines["il_calls"]["line_type"], lines["il_calls"]["quantity"]) == ("overage", Decimal("17669"))
    rejected = query_rows(warehouse, "SELECT line, column_name, reason FROM audit.rejected_rows")
    assert rejected == [
        {
            "line": 4,
            "column_name": "amount",
            "reason": "cannot read 'not an integer amount in minor units: 12.5' as DECIMAL(18,2)"
            " (expected a number)",
        }
    ]


@pytest.mark.parametrize(
    ("amount", "currency", "major"),
    [
        ("123456", "usd", "1234.560"),
        ("123456", "EUR", "1234.560"),
        ("5000", "jpy", "5000.000"),  # zero-decimal
        ("1500", "krw", "1500.000"),
        ("1230", "kwd", "1.230"),  # three-decimal
        ("-250", "gbp", "-2.500"),
        ("1235", "bhd", "a three-decimal amount not ending in 0: 1235"),
        ("19.99", "usd", "not an integer amount in minor units: 19.99"),
        (None, "usd", None),
    ],
)
def test_minor_unit_macro(amount: str | None, currency: str, major: str | None) -> None:
    con = duckdb.connect()
    for statement in MACROS:
        con.execute(statement)
    assert con.execute("SELECT stripe_major(?, ?)", [amount, currency]).fetchone() == (major,)


SUBSCRIPTIONS: list[dict[str, Any]] = [
    {  # before 2025-03-31.basil: one current period on the subscription
        "id": "sub_old",
        "object": "subscription",
        "customer": "cus_A",
        "status": "active",
        "cancel_at_period_end": False,
        "created": 1701475200,
        "current_period_start": JUNE_1,
        "current_period_end": JULY_1,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": "si_old",
                    "object": "subscription_item",
                    "created": 1701475200,
                    "quantity": 1,
                    "price": {"id": "price_gold_usd", "object": "price", "currency": "usd"},
                }
            ],
            "has_more": False,
        },
    },
    {  # 2025-03-31.basil on: each item has its own period; the customer expanded
        "id": "sub_new",
        "object": "subscription",
        "customer": {"id": "cus_B", "object": "customer"},
        "status": "past_due",
        "cancel_at_period_end": True,
        "created": 1704067200,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": "si_seats",
                    "object": "subscription_item",
                    "created": 1704067200,
                    "quantity": 3,
                    "current_period_start": JUNE_1,
                    "current_period_end": JULY_1,
                    "price": {"id": "price_gold_usd", "object": "price"},
                },
                {  # metered: no quantity, a later period
                    "id": "si_calls",
                    "object": "subscription_item",
                    "created": 1706745600,
                    "current_period_start": JULY_1,
                    "current_period_end": AUG_1,
                    "price": {"id": "price_calls_usd", "object": "price"},
                },
            ],
            "has_more": False,
        },
    },
]


def test_subscription_periods_on_the_subscription_or_on_its_items(tmp_path: Path) -> None:
    exported = export(tmp_path / "x", {"billing/subscriptions.json": list_response(SUBSCRIPTIONS, "/v1/s")})
    warehouse, (result,) = ingest(exported)

    assert (result.shape, result.rows, result.rows_rejected) == ("stripe.subscriptions", 3, 0)
    assert raw(warehouse, "billing_subscriptions", "subscription_item_id") == [
        {
            "subscription_item_id": "si_calls",
            "subscription_id": "sub_new",
            "customer_id": "C00002",
            "price_id": "price_calls_usd",
            "item_code": "API_CALLS",
            "quantity": None,
            "status": "past_due",
            "current_period_start": datetime(2024, 7, 1),
            "current_period_end": datetime(2024, 8, 1),
            "cancel_at_period_end": True,
            "created_at": datetime(2024, 2, 1),
            "contract_line_id": None,
            "currency": None,
            "started_at": datetime(2024, 2, 1),  # no start_date: the item's creation
            "ended_at": None,
            "cancel_at": None,
        },
        {
            "subscription_item_id": "si_old",
            "subscription_id": "sub_old",
            "customer_id": "C00001",
            "price_id": "price_gold_usd",
            "item_code": "GOLD_SUPPORT",
            "quantity": Decimal("1.0000"),
            "status": "active",
            "current_period_start": datetime(2024, 6, 1),
            "current_period_end": datetime(2024, 7, 1),
            "cancel_at_period_end": False,
            "created_at": datetime(2023, 12, 2),
            "contract_line_id": None,
            "currency": "USD",
            "started_at": datetime(2023, 12, 2),  # no start_date: the item's creation
            "ended_at": None,
            "cancel_at": None,
        },
        {
            "subscription_item_id": "si_seats",
            "subscription_id": "sub_new",
            "customer_id": "C00002",
            "price_id": "price_gold_usd",
            "item_code": "GOLD_SUPPORT",
            "quantity": Decimal("3.0000"),
            "status": "past_due",
            "current_period_start": datetime(2024, 6, 1),
            "current_period_end": datetime(2024, 7, 1),
            "cancel_at_period_end": True,
            "created_at": datetime(2024, 1, 1),
            "contract_line_id": None,
            "currency": None,
            "started_at": datetime(2024, 1, 1),  # no start_date: the item's creation
            "ended_at": None,
            "cancel_at": None,
        },
    ]


CUSTOMERS: list[dict[str, Any]] = [
    {
        "id": "cus_A",
        "object": "customer",
        "created": 1701475200,
        "currency": "usd",
        "email": "billing@customer-a.example",
        "name": "Customer 00001 Ltd",
        "metadata": {"crm_account_id": "C00001"},
    },
    {
        "id": "cus_B",
        "object": "customer",
        "created": 1701478800,
        "currency": None,
        "email": None,
        "name": None,
    },
]


def test_a_list_response_and_json_lines_land_the_same_rows(tmp_path: Path) -> None:
    listed = export(
        tmp_path / "listed",
        {
            "billing/customers.json": list_response(CUSTOMERS, "/v1/customers"),
            "billing/invoice_line_items.json": list_response(LINE_ITEMS, "/v1/invoices/in_1/lines"),
        },
    )
    lines = export(
        tmp_path / "lines",
        {
            "billing/customers.jsonl": json_lines(CUSTOMERS),
            "billing/invoice_line_items.jsonl": json_lines(LINE_ITEMS),
        },
    )
    listed_warehouse, listed_results = ingest(listed)
    lines_warehouse, lines_results = ingest(lines)

    assert [(r.shape, r.rows) for r in listed_results] == [
        ("stripe.customers", 2),
        ("stripe.invoice_line_items", 3),
    ]
    assert [(r.shape, r.rows) for r in lines_results] == [(r.shape, r.rows) for r in listed_results]
    customers = raw(listed_warehouse, "billing_customers", "customer_ref")
    assert customers == [
        {
            "customer_ref": "cus_A",
            "customer_id": "C00001",
            "name": "Customer 00001 Ltd",
            "email": "billing@customer-a.example",
            "currency": "USD",
            "created_at": datetime(2023, 12, 2),
        },
        {
            "customer_ref": "cus_B",
            "customer_id": "C00002",
            "name": None,
            "email": None,
            "currency": None,
            "created_at": datetime(2023, 12, 2, 1),
        },
    ]
    assert raw(lines_warehouse, "billing_customers", "customer_ref") == customers
    assert raw(lines_warehouse, "billing_invoice_lines", "invoice_line_id") == raw(
        listed_warehouse, "billing_invoice_lines", "invoice_line_id"
    )


INVOICES: list[dict[str, Any]] = [
    {
        "id": "in_1",
        "object": "invoice",
        "customer": "cus_B",
        "currency": "jpy",
        "status": "paid",
        "created": 1719788400,  # 2024-06-30 23:00: the draft; finalized on 07-01
        "effective_at": 1719792000,
        "status_transitions": {"finalized_at": 1719792000, "paid_at": 1719900000},
        "amount_due": 35000,
        "lines": {
            "object": "list",
            "data": [LINE_ITEMS[0]],
            "has_more": False,
            "url": "/v1/invoices/in_1/lines",
        },
    },
    {
        "id": "in_2",
        "object": "invoice",
        "customer": "cus_A",
        "currency": "usd",
        "status": "uncollectible",
        "created": 1719792000,
        "effective_at": None,
        "status_transitions": {"finalized_at": 1719878400, "marked_uncollectible_at": 1725148800},
        "amount_due": 203534,
        "lines": {
            "object": "list",
            "data": LINE_ITEMS[1:],
            "has_more": False,
            "url": "/v1/invoices/in_2/lines",
        },
    },
    {
        "id": "in_3",
        "object": "invoice",
        "customer": "cus_A",
        "currency": "usd",
        "status": "draft",
        "created": 1722470400,
        "effective_at": None,
        "status_transitions": {"finalized_at": None},
        "amount_due": 0,
        "lines": {"object": "list", "data": [], "has_more": False, "url": "/v1/invoices/in_3/lines"},
    },
]


# (invoice_id, customer_id, invoice_date, currency, status); uncollectible lands as open.
EXPECTED_INVOICES = [
    ("in_1", "C00002", date(2024, 7, 1), "JPY", "paid"),
    ("in_2", "C00001", date(2024, 7, 2), "USD", "open"),
    ("in_3", "C00001", date(2024, 8, 1), "USD", "draft"),
]


def invoices(warehouse: Path) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in raw(warehouse, "billing_invoices", "invoice_id")]


def test_an_invoice_list_lands_its_invoices_and_their_nested_lines(tmp_path: Path) -> None:
    exported = export(tmp_path / "x", {"billing/invoices.json": list_response(INVOICES, "/v1/invoices")})
    warehouse, results = ingest(exported)

    assert sorted((r.shape, r.table, r.rows) for r in results) == [
        ("stripe.invoices", "billing_invoices", 3),
        ("stripe.invoices.lines", "billing_invoice_lines", 3),
    ]
    # invoice_date: effective_at, else the finalization, else (a draft) the creation
    assert invoices(warehouse) == EXPECTED_INVOICES
    lines = raw(warehouse, "billing_invoice_lines", "invoice_line_id")
    assert [(r["invoice_line_id"], r["invoice_id"], r["amount"]) for r in lines] == [
        ("il_calls", "in_2", Decimal("35.34")),
        ("il_gold", "in_2", Decimal("2000.00")),
        ("il_jpy", "in_1", Decimal("35000.00")),
    ]


DASHBOARD_INVOICES = """\
id,Number,Customer,Customer Name,Customer Email,Subscription,Status,Currency,Amount Due,Amount Paid,\
Subtotal,Total,Date (UTC),Due Date (UTC),Finalized At (UTC),Paid At (UTC),Period Start (UTC),Period End (UTC)
in_1,A1B2C3D4-0001,cus_B,Customer 00002 Ltd,,,paid,jpy,35000,35000,35000,35000,2024-06-30 23:00,,\
2024-07-01 00:00,2024-07-02 06:00,2024-06-01 00:00,2024-07-01 00:00
in_2,A1B2C3D4-0002,cus_A,Customer 00001 Ltd,billing@customer-a.example,sub_old,uncollectible,usd,2035.34,\
0.00,2035.34,2035.34,2024-07-01 00:00,2024-07-31 00:00,2024-07-02 00:00,,2024-06-01 00:00,2024-07-01 00:00
in_3,A1B2C3D4-0003,cus_A,Customer 00001 Ltd,billing@customer-a.example,,draft,usd,0.00,0.00,0.00,0.00,\
2024-08-01 00:00,,,,2024-08-01 00:00,2024-08-01 00:00
"""

DASHBOARD_LINE_ITEMS = """\
Line Item ID,Invoice ID,Invoice Number,Customer ID,Description,Amount,Currency,Quantity,Period Start (UTC),\
Period End (UTC),Proration,Price ID,Product ID,Subscription,contract_id (metadata),\
contract_line_id (metadata),reference_id (metadata)
il_jpy,in_1,A1B2C3D4-0001,cus_B,Incident,35000,jpy,1,2024-06-01 00:00,2024-07-01 00:00,false,\
price_incident_jpy,prod_i,,,,CS-0000045
il_gold,in_2,A1B2C3D4-0002,cus_A,Gold Support (Jun 1 - Jul 1),2000.00,usd,1,2024-06-01 00:00,\
2024-07-01 00:00,false,price_gold_usd,prod_g,sub_old,SC-000001,SCL-000001,
il_calls,in_2,A1B2C3D4-0002,cus_A,API calls,35.34,usd,17669,2024-06-01 00:00,2024-07-01 00:00,false,\
price_calls_usd,prod_c,sub_old,,,C00001:API_CALLS:2024-06
"""


def test_dashboard_csv_headers_are_matched_through_the_alias_table(tmp_path: Path) -> None:
    exported = export(
        tmp_path / "x",
        {"billing/invoices.csv": DASHBOARD_INVOICES, "billing/invoice_line_items.csv": DASHBOARD_LINE_ITEMS},
    )
    warehouse, results = ingest(exported, file_format="stripe_csv")

    assert [(r.shape, r.rows, r.rows_rejected) for r in results] == [
        ("stripe_csv.invoice_line_items", 3, 0),
        ("stripe_csv.invoices", 3, 0),
    ]
    assert invoices(warehouse) == EXPECTED_INVOICES
    lines = raw(warehouse, "billing_invoice_lines", "invoice_line_id")
    # Dashboard amounts are in major units already: 35000 yen, 35.34 dollars.
    assert [
        (r["invoice_line_id"], r["line_type"], r["item_code"], r["amount"], r["currency"]) for r in lines
    ] == [
        ("il_calls", "overage", "API_CALLS", Decimal("35.34"), "USD"),
        ("il_gold", "subscription", "GOLD_SUPPORT", Decimal("2000.00"), "USD"),
        ("il_jpy", "service", "INCIDENT", Decimal("35000.00"), "JPY"),
    ]
    gold = next(r for r in lines if r["invoice_line_id"] == "il_gold")
    assert (gold["contract_id"], gold["contract_line_id"], gold["period_end"]) == (
        "SC-000001",
        "SCL-000001",
        date(2024, 7, 1),
    )
    # Columns no field reads are kept, not dropped.
    (extra,) = query_rows(
        warehouse, "SELECT _extra->>'Amount Due' AS due FROM raw.billing_invoices WHERE invoice_id = 'in_2'"
    )
    assert extra == {"due": "2035.34"}


def test_an_unmapped_price_id_is_named_and_nothing_lands(tmp_path: Path) -> None:
    unknown = {**LINE_ITEMS[1], "id": "il_new", "price": {"id": "price_1PlatinumNew", "object": "price"}}
    exported = export(
        tmp_path / "x", {"billing/invoice_line_items.json": list_response([*LINE_ITEMS, unknown], "/v1/x")}
    )
    with pytest.raises(IngestError) as raised:
        ingest(exported)

    message = str(raised.value)
    assert raised.value.source_file == "billing/invoice_line_items.json"
    # The row's first unmapped lookup is named, with the mapping row to add.
    assert "record 4, column 'line_type': unmapped line_type id 'price_1PlatinumNew'" in message
    assert '"line_type,price_1PlatinumNew,<line_type>"' in message
    warehouse = exported.parent / "x.duckdb"
    assert query_rows(warehouse, "SELECT count(*) AS n FROM raw.billing_invoice_lines") == [{"n": 0}]


# Invoices with credits and discounts, as GET /v1/invoices lists them: a proration credit in each
# API generation, a line with two discounts, and a yen line (no minor unit) with a discount.
CREDITED_LINES: list[dict[str, Any]] = [
    {  # before 2025-03-31.basil: proration and subscription_item at the top; no discount_amounts
        "id": "il_credit_old",
        "object": "line_item",
        "invoice": "in_10",
        "amount": -66667,  # unused time on the old quantity: a credit
        "currency": "usd",
        "quantity": 1,
        "period": {"start": JUNE_1 + 864000, "end": JULY_1},
        "price": {"id": "price_gold_usd", "object": "price"},
        "proration": True,
        "subscription_item": "si_old",
    },
    {  # 2025-03-31.basil on: proration under parent.subscription_item_details
        "id": "il_credit_new",
        "object": "line_item",
        "invoice": "in_10",
        "amount": -1234,
        "currency": "usd",
        "quantity": 1,
        "period": {"start": JUNE_1 + 864000, "end": JULY_1},
        "pricing": {"type": "price_details", "price_details": {"price": "price_calls_usd"}},
        "parent": {
            "type": "subscription_item_details",
            "subscription_item_details": {
                "subscription": "sub_new",
                "subscription_item": "si_calls",
                "proration": True,
                "proration_details": {"credited_items": {"invoice": "in_9", "invoice_line_items": ["il_9"]}},
            },
        },
        "discount_amounts": [],
    },
    {  # two discounts; amount is before them
        "id": "il_discounted",
        "object": "line_item",
        "invoice": "in_10",
        "amount": 200000,
        "currency": "usd",
        "quantity": 1,
        "period": {"start": JUNE_1, "end": JULY_1},
        "pricing": {"type": "price_details", "price_details": {"price": "price_gold_usd"}},
        "parent": {
            "type": "subscription_item_details",
            "subscription_item_details": {"subscription_item": "si_seats", "proration": False},
        },
        "discount_amounts": [
            {"amount": 20000, "discount": "di_partner"},
            {"amount": 5050, "discount": "di_loyal"},
        ],
        "metadata": {"contract_id": "SC-000001", "contract_line_id": "SCL-000001"},
    },
    {  # yen: 3,500 yen off 35,000 yen
        "id": "il_yen",
        "object": "line_item",
        "invoice": "in_11",
        "amount": 35000,
        "currency": "jpy",
        "quantity": 1,
        "period": {"start": JUNE_1, "end": JULY_1},
        "pricing": {"type": "price_details", "price_details": {"price": "price_incident_jpy"}},
        "parent": {"type": "invoice_item_details", "invoice_item_details": {"proration": False}},
        "discount_amounts": [{"amount": 3500, "discount": "di_yen"}],
        "metadata": {"reference_id": "CS-0000046"},
    },
]

CREDITED_INVOICES: list[dict[str, Any]] = [
    {
        "id": "in_10",
        "object": "invoice",
        "customer": "cus_A",
        "currency": "usd",
        "status": "paid",
        "created": JULY_1,
        "effective_at": JULY_1,
        "lines": {"object": "list", "data": CREDITED_LINES[:3], "has_more": False},
    },
    {
        "id": "in_11",
        "object": "invoice",
        "customer": "cus_B",
        "currency": "jpy",
        "status": "open",
        "created": JULY_1,
        "effective_at": JULY_1,
        "lines": {"object": "list", "data": CREDITED_LINES[3:], "has_more": False},
    },
]

# (invoice_line_id, invoice_id, item_code, amount, discount_amount, is_proration, currency,
#  subscription_item_id)
EXPECTED_CREDITED_LINES = [
    ("il_credit_new", "in_10", "API_CALLS", Decimal("-12.34"), Decimal("0.00"), True, "USD", "si_calls"),
    ("il_credit_old", "in_10", "GOLD_SUPPORT", Decimal("-666.67"), None, True, "USD", "si_old"),
    (
        "il_discounted",
        "in_10",
        "GOLD_SUPPORT",
        Decimal("2000.00"),
        Decimal("250.50"),
        False,
        "USD",
        "si_seats",
    ),
    ("il_yen", "in_11", "INCIDENT", Decimal("35000.00"), Decimal("3500.00"), False, "JPY", None),
]


def credited_lines(warehouse: Path) -> list[tuple[Any, ...]]:
    return [
        (
            r["invoice_line_id"],
            r["invoice_id"],
            r["item_code"],
            r["amount"],
            r["discount_amount"],
            r["is_proration"],
            r["currency"],
            r["subscription_item_id"],
        )
        for r in raw(warehouse, "billing_invoice_lines", "invoice_line_id")
    ]


def test_proration_credits_and_discounts_land_from_an_invoice_list(tmp_path: Path) -> None:
    exported = export(
        tmp_path / "x", {"billing/invoices.json": list_response(CREDITED_INVOICES, "/v1/invoices")}
    )
    warehouse, results = ingest(exported)

    assert sorted((r.shape, r.rows, r.rows_rejected) for r in results) == [
        ("stripe.invoices", 2, 0),
        ("stripe.invoices.lines", 4, 0),
    ]
    # Negative amounts land as credits; discount_amount: 0 for an empty list, NULL without one.
    assert credited_lines(warehouse) == EXPECTED_CREDITED_LINES
    assert query_rows(warehouse, "SELECT count(*) AS n FROM audit.rejected_rows") == [{"n": 0}]


def test_a_line_items_file_gives_the_same_credits_and_discounts(tmp_path: Path) -> None:
    exported = export(tmp_path / "x", {"billing/invoice_line_items.jsonl": json_lines(CREDITED_LINES)})
    warehouse, (result,) = ingest(exported)

    assert (result.shape, result.rows, result.rows_rejected) == ("stripe.invoice_line_items", 4, 0)
    assert credited_lines(warehouse) == EXPECTED_CREDITED_LINES


DASHBOARD_CREDITED_LINE_ITEMS = """\
Line Item ID,Invoice ID,Description,Amount,Currency,Quantity,Period Start (UTC),Period End (UTC),\
Proration,Discount Amount,Price ID,Subscription Item
il_credit,in_10,Unused time on Gold Support,-666.67,usd,1,2024-06-11 00:00,2024-07-01 00:00,true,,\
price_gold_usd,si_old
il_discounted,in_10,Gold Support,2000.00,usd,1,2024-06-01 00:00,2024-07-01 00:00,false,250.50,\
price_gold_usd,si_seats
il_yen,in_11,Incident,35000,jpy,1,2024-06-01 00:00,2024-07-01 00:00,false,3500,price_incident_jpy,
"""


def test_dashboard_line_items_carry_proration_and_discount_columns(tmp_path: Path) -> None:
    exported = export(tmp_path / "x", {"billing/invoice_line_items.csv": DASHBOARD_CREDITED_LINE_ITEMS})
    warehouse, (result,) = ingest(exported, file_format="stripe_csv")

    assert (result.shape, result.rows, result.rows_rejected) == ("stripe_csv.invoice_line_items", 3, 0)
    lines = raw(warehouse, "billing_invoice_lines", "invoice_line_id")
    assert [(r["invoice_line_id"], r["amount"], r["discount_amount"], r["is_proration"]) for r in lines] == [
        ("il_credit", Decimal("-666.67"), None, True),  # a blank cell: nothing said
        ("il_discounted", Decimal("2000.00"), Decimal("250.50"), False),
        ("il_yen", Decimal("35000.00"), Decimal("3500.00"), False),
    ]


# Credit notes as GET /v1/credit_notes lists them: one crediting an invoice line (with a
# discount) and adding a custom line, and a voided one in yen on an expanded invoice.
CREDIT_NOTES: list[dict[str, Any]] = [
    {
        "id": "cn_1",
        "object": "credit_note",
        "invoice": "in_10",
        "customer": "cus_A",
        "currency": "usd",
        "status": "issued",
        "reason": "order_change",
        "type": "post_payment",
        "created": AUG_1,
        "effective_at": JULY_1 + 86400 * 14,  # backdated to 2024-07-15
        "amount": 47500,
        "lines": {
            "object": "list",
            "data": [
                {
                    "id": "cnli_line",
                    "object": "credit_note_line_item",
                    "type": "invoice_line_item",
                    "invoice_line_item": "il_discounted",
                    "amount": 50000,  # gross: before the line's discounts
                    "discount_amount": 5000,
                    "discount_amounts": [{"amount": 5000, "discount": "di_partner"}],
                    "quantity": 1,
                },
                {
                    "id": "cnli_custom",
                    "object": "credit_note_line_item",
                    "type": "custom_line_item",
                    "description": "Service credit",
                    "amount": 2500,
                    "discount_amount": 0,
                    "discount_amounts": [],
                    "quantity": 1,
                    "unit_amount": 2500,
                },
            ],
            "has_more": False,
        },
    },
    {
        "id": "cn_2",
        "object": "credit_note",
        "invoice": {"id": "in_11", "object": "invoice"},
        "customer": "cus_B",
        "currency": "jpy",
        "status": "void",
        "reason": None,
        "type": "pre_payment",
        "created": AUG_1,  # no effective_at (records before 2023): the creation date
        "voided_at": AUG_1 + 3600,
        "amount": 3500,
        "lines": {
            "object": "list",
            "data": [
                {
                    "id": "cnli_yen",
                    "object": "credit_note_line_item",
                    "type": "invoice_line_item",
                    "invoice_line_item": "il_yen",
                    "amount": 3500,
                    "discount_amount": 0,
                    "discount_amounts": [],
                    "quantity": 1,
                }
            ],
            "has_more": False,
        },
    },
]


def test_credit_notes_land_one_row_per_line_net_of_discounts(tmp_path: Path) -> None:
    exported = export(tmp_path / "x", {"billing/credit_notes.json": list_response(CREDIT_NOTES, "/v1/cn")})
    warehouse, (result,) = ingest(exported)

    assert (result.shape, result.table, result.rows, result.rows_rejected) == (
        "stripe.credit_notes",
        "billing_credit_note_lines",
        3,
        0,
    )
    assert raw(warehouse, "billing_credit_note_lines", "credit_note_line_id") == [
        {
            "credit_note_line_id": "cnli_custom",
            "credit_note_id": "cn_1",
            "invoice_id": "in_10",
            "invoice_line_id": None,  # a custom line credits no invoice line
            "credited_on": date(2024, 7, 15),
            "status": "issued",
            "reason": "order_change",
            "amount": Decimal("25.00"),
            "currency": "USD",
        },
        {
            "credit_note_line_id": "cnli_line",
            "credit_note_id": "cn_1",
            "invoice_id": "in_10",
            "invoice_line_id": "il_discounted",
            "credited_on": date(2024, 7, 15),
            "status": "issued",
            "reason": "order_change",
            "amount": Decimal("450.00"),  # 500.00 less its 50.00 discount
            "currency": "USD",
        },
        {
            "credit_note_line_id": "cnli_yen",
            "credit_note_id": "cn_2",
            "invoice_id": "in_11",  # the expanded invoice's id
            "invoice_line_id": "il_yen",
            "credited_on": date(2024, 8, 1),
            "status": "void",
            "reason": None,
            "amount": Decimal("3500.00"),
            "currency": "JPY",
        },
    ]
    assert query_rows(warehouse, "SELECT count(*) AS n FROM audit.rejected_rows") == [{"n": 0}]


def test_a_credit_note_with_an_unreadable_amount_is_named(tmp_path: Path) -> None:
    bad_line = {**CREDIT_NOTES[0]["lines"]["data"][1], "id": "cnli_bad", "amount": 12.5}
    bad = {**CREDIT_NOTES[0], "id": "cn_bad", "lines": {"object": "list", "data": [bad_line]}}
    exported = export(
        tmp_path / "x", {"billing/credit_notes.json": list_response([*CREDIT_NOTES, bad], "/v1/cn")}
    )
    with pytest.raises(IngestError) as raised:
        ingest(exported)

    assert raised.value.source_file == "billing/credit_notes.json"
    assert (
        "billing/credit_notes.json, record 3, column 'amount': cannot read 'not an integer amount in minor"
        " units: 12.5' as DECIMAL(18,2)" in str(raised.value)
    )
    warehouse = exported.parent / "x.duckdb"
    assert query_rows(warehouse, "SELECT count(*) AS n FROM raw.billing_credit_note_lines") == [{"n": 0}]


def test_a_credit_note_without_lines_is_rejected_not_lost(tmp_path: Path) -> None:
    empty = {**CREDIT_NOTES[1], "id": "cn_empty", "lines": {"object": "list", "data": [], "has_more": False}}
    exported = export(
        tmp_path / "x", {"billing/credit_notes.json": list_response([*CREDIT_NOTES, empty], "/v1/cn")}
    )
    warehouse, (result,) = ingest(exported, max_rejected_share=1.0)

    assert (result.rows, result.rows_rejected) == (3, 1)
    rejected = query_rows(warehouse, "SELECT source_file, line, column_name FROM audit.rejected_rows")
    assert rejected == [
        {"source_file": "billing/credit_notes.json", "line": 3, "column_name": "credit_note_line_id"}
    ]


CANONICAL_CREDIT_NOTE_LINES = """\
credit_note_line_id,credit_note_id,invoice_id,invoice_line_id,credited_on,status,reason,amount,currency
CNL-1,CN-1,INV-10,IL-10,2024-07-15,issued,order_change,450.00,USD
CNL-2,CN-1,INV-10,,2024-07-15,issued,,25.00,USD
CNL-3,CN-2,INV-11,IL-11,2024-08-01,void,,3500,JPY
"""


def test_a_canonical_credit_note_lines_file_lands(tmp_path: Path) -> None:
    exported = export(tmp_path / "x", {"billing/credit_note_lines.csv": CANONICAL_CREDIT_NOTE_LINES})
    warehouse, (result,) = ingest(exported)

    assert (result.shape, result.rows, result.rows_rejected) == ("canonical.billing_credit_note_lines", 3, 0)
    rows = raw(warehouse, "billing_credit_note_lines", "credit_note_line_id")
    assert [(r["credit_note_line_id"], r["invoice_line_id"], r["reason"], r["amount"]) for r in rows] == [
        ("CNL-1", "IL-10", "order_change", Decimal("450.00")),
        ("CNL-2", None, None, Decimal("25.00")),
        ("CNL-3", "IL-11", None, Decimal("3500.00")),
    ]
    assert (rows[2]["credited_on"], rows[2]["status"], rows[2]["currency"]) == (
        date(2024, 8, 1),
        "void",
        "JPY",
    )
