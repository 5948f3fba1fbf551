"""The demo export rewritten as the source systems export it: Salesforce, Stripe, CloudEvents.

`entitlements demo --shape vendor` writes the same business (and the same ground truth) as the
canonical demo, but as a company's systems would hand it over, with the conventions of
tests/fixtures/real_exports/ and an entitlements.yml (docs/configuration.md) that reads them:

- crm/: Salesforce Data Loader CSVs with API field names; EndDate the last day covered; renewals
  linked by ParentServiceContractId; ContractLineItem.UnitPrice the price of the line's whole term
  (Annual_Price__c where a term price would not be a whole number of cents); who pays a case in
  the Case Type picklist ("Paid <service>" / "Contract <service>"), invoices quoting CaseNumber.
- billing/: Stripe list responses (customers with their account in metadata.crm_account, invoices
  with embedded lines, minor units, epoch periods, pricing.price_details.price).
- usage/: CloudEvents JSON lines whose subject is the Stripe customer and quantity data.units.

What no vendor has (catalog, price book, locations, overrides) stays in this project's layouts;
mapping.csv translates products, case types, work types and prices.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb

from entitlements.demo import catalog
from entitlements.ingest._sql import quote_literal

ZERO_DECIMAL = {"JPY"}
EVENT_SOURCE = "/demo/metering"
CONFIG = """\
# Written by `entitlements demo --shape vendor` (docs/configuration.md).
version: 1
usage_events:
  event_id: [source, id]
  customer: subject
  customer_key: billing_customer
  recorded_time: recordedtime
meters:
{meters}
identity:
  billing_customer_metadata_key: crm_account
service_deliveries:
  billable:
    field: Type
    customer_pay: [{paid}]
    covered: [{covered}]
evidence:
  invoice_line_reference:
    - metadata_key: reference_id
    - description_pattern: 'Case (\\d{{8}})'
crm:
  renewal_link_field: ParentServiceContractId
  contract_line_price: per_term
"""


def write_vendor_shapes(out_dir: Path) -> None:
    """Replace the canonical CRM, billing and usage files of a demo export by vendor exports."""
    crm, billing = out_dir / "crm", out_dir / "billing"
    with duckdb.connect() as con:
        read = _reader(con)
        accounts, contracts, lines = (
            read(crm / "accounts.csv"),
            read(crm / "service_contracts.csv"),
            read(crm / "contract_lines.csv"),
        )
        cases, work_orders, assets = (
            read(crm / "cases.csv"),
            read(crm / "work_orders.csv"),
            read(crm / "assets.csv"),
        )
        invoices, invoice_lines = read(billing / "invoices.csv"), read(billing / "invoice_lines.csv")
        credit_notes = read(billing / "credit_note_lines.csv")
        mapping: list[tuple[str, str, str]] = []
        case_numbers = _case_numbers(cases)
        _salesforce(crm, accounts, contracts, lines, cases, work_orders, assets, case_numbers, mapping)
        _stripe(billing, accounts, invoices, invoice_lines, case_numbers, mapping)
        _stripe_credit_notes(billing, credit_notes)
        _cloudevents(con, out_dir / "usage")
    for name in ("accounts", "service_contracts", "contract_lines", "cases", "work_orders", "assets"):
        (crm / f"{name}.csv").unlink()
    for name in ("invoices", "invoice_lines", "credit_note_lines"):
        (billing / f"{name}.csv").unlink()
    _write(out_dir / "mapping.csv", ("kind", "source_id", "target_id"), sorted(set(mapping)))
    services = sorted({c["service_code"] for c in cases})
    meters = "\n".join(
        f"  {code}:\n    event_type: {_event_type(code)}\n    value: data.units"
        for code in catalog.METER_CODES
    )
    (out_dir / "entitlements.yml").write_text(
        CONFIG.format(
            meters=meters,
            paid=", ".join(_case_type(s, True) for s in services),
            covered=", ".join(_case_type(s, False) for s in services),
        )
    )


def _reader(con: duckdb.DuckDBPyConnection):
    def read(path: Path) -> list[dict[str, str]]:
        cursor = con.execute("SELECT * FROM read_csv(?, header = true, all_varchar = true)", [str(path)])
        names = [d[0] for d in cursor.description]
        return [{k: v or "" for k, v in zip(names, row, strict=True)} for row in cursor.fetchall()]

    return read


def _write(path: Path, header: tuple[str, ...], rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _sf_id(prefix: str, key: str) -> str:
    """A stable 18-character Salesforce-style id (never 15: those get a case-safe suffix)."""
    digits = re.sub(r"[^0-9A-Za-z]", "", key)[-12:]
    return f"{prefix}{digits:0>12}AAA"


def _case_numbers(cases: list[dict[str, str]]) -> dict[str, str]:
    numbers = {c["case_id"]: f"{int(re.sub(r'[^0-9]', '', c['case_id'])):08d}" for c in cases}
    if len(set(numbers.values())) != len(numbers):
        raise ValueError("demo case ids do not give unique case numbers")
    return numbers


def _case_type(service: str, paid: bool) -> str:
    return f"{'Paid' if paid else 'Contract'} {service.replace('_', ' ').title()}"


def _event_type(meter: str) -> str:
    return f"com.demo.{meter.lower()}"


def _last_day(exclusive_end: str) -> str:
    return (date.fromisoformat(exclusive_end) - timedelta(days=1)).isoformat() if exclusive_end else ""


def _iso_z(timestamp: str) -> str:
    return datetime.fromisoformat(timestamp).strftime("%Y-%m-%dT%H:%M:%S.000Z") if timestamp else ""


def _epoch(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


def _term_price(annual: Decimal, valid_from: str, valid_to: str) -> Decimal | None:
    """The line's price for its whole term, when it is a whole number of cents (else None)."""
    start, end = date.fromisoformat(valid_from), date.fromisoformat(valid_to)
    if start.day == end.day:
        months = (end.year - start.year) * 12 + end.month - start.month
        price = annual * months / 12
    else:
        price = annual * (end - start).days / 365
    return price if price == price.quantize(Decimal("0.01")) else None


def _salesforce(crm, accounts, contracts, lines, cases, work_orders, assets, case_numbers, mapping) -> None:
    _write(
        crm / "Account.csv",
        ("Id", "IsDeleted", "Name", "Type", "BillingCountryCode", "CurrencyIsoCode", "CreatedDate"),
        (
            (a["customer_id"], "false", a["customer_name"], a["segment"], a["country"], a["currency"],
             f"{a['created_date']}T08:00:00.000Z")
            for a in accounts
        ),
    )  # fmt: skip
    status = {"active": "Active", "expired": "Expired", "cancelled": "Canceled", "draft": "Draft"}
    _write(
        crm / "ServiceContract.csv",
        ("Id", "AccountId", "StartDate", "EndDate", "Status", "CurrencyIsoCode", "ParentServiceContractId",
         "Contract_Type__c", "Contract_Status__c", "Auto_Renew__c"),
        (
            (c["contract_id"], c["customer_id"], c["start_date"], _last_day(c["end_date"]),
             status[c["status"]] if c["status"] in ("active", "expired") else "Inactive", c["currency"],
             c["renewal_of_contract_id"], c["contract_type"],
             c["status"] if c["status"] in ("cancelled", "draft") else "", c["auto_renew"])
            for c in contracts
        ),
    )  # fmt: skip
    rows = []
    for line in lines:
        product = _sf_id("01t", line["package_code"])
        mapping.append(("product", product, line["package_code"]))
        version = int(line["version_no"])
        annual = Decimal(line["annual_price"])
        term = _term_price(annual, line["valid_from"], line["valid_to"])
        rows.append(
            (line["contract_line_id"] if version == 1 else f"{line['contract_line_id']}-v{version}",
             line["contract_id"], product, line["asset_id"], line["location_id"], line["quantity"],
             "" if term is None else f"{term:.2f}", "" if term is not None else f"{annual:.2f}",
             line["valid_from"], _last_day(line["valid_to"]),
             line["contract_line_id"] if version > 1 else "", version, line["change_reason"].title())
        )  # fmt: skip
    _write(
        crm / "ContractLineItem.csv",
        ("Id", "ServiceContractId", "Product2Id", "AssetId", "LocationId", "Quantity", "UnitPrice",
         "Annual_Price__c", "StartDate", "EndDate", "Original_Line__c", "Line_Version__c",
         "Change_Reason__c"),
        rows,
    )  # fmt: skip
    _write(
        crm / "Asset.csv",
        ("Id", "AccountId", "LocationId", "ProductCode", "SerialNumber", "InstallDate"),
        ((a["asset_id"], a["customer_id"], a["location_id"], a["product_code"], a["serial_number"],
          a["installed_date"]) for a in assets),
    )  # fmt: skip
    case_rows = []
    for c in cases:
        paid = c["billing_type"] == "customer_pay"
        case_type = _case_type(c["service_code"], paid)
        mapping.append(("service", case_type, c["service_code"]))
        closed = c["status"] == "closed"
        case_rows.append(
            (c["case_id"], case_numbers[c["case_id"]], c["customer_id"], c["asset_id"], c["location_id"],
             case_type, _iso_z(c["created_at"]), _iso_z(c["closed_at"]), c["priority"],
             "Closed" if closed else "Working", str(closed).lower(), c["response_hours"], c["after_hours"])
        )  # fmt: skip
    _write(
        crm / "Case.csv",
        ("Id", "CaseNumber", "AccountId", "AssetId", "Location__c", "Type", "CreatedDate", "ClosedDate",
         "Priority", "Status", "IsClosed", "Response_Hours__c", "After_Hours__c"),
        case_rows,
    )  # fmt: skip
    wo_rows = []
    for w in work_orders:
        work_type = _sf_id("08q", w["service_code"])
        mapping.append(("service", work_type, w["service_code"]))
        done = w["status"] == "completed"
        wo_rows.append(
            (w["work_order_id"], w["customer_id"], w["asset_id"], w["location_id"], work_type,
             _iso_z(w["created_at"]), _iso_z(w["completed_at"]), "Completed" if done else "In Progress",
             w["response_hours"], w["after_hours"],
             "Customer Pay" if w["billing_type"] == "customer_pay" else "Covered")
        )  # fmt: skip
    _write(
        crm / "WorkOrder.csv",
        ("Id", "AccountId", "AssetId", "LocationId", "WorkTypeId", "CreatedDate", "EndDate", "Status",
         "Response_Hours__c", "After_Hours__c", "Billing_Type__c"),
        wo_rows,
    )  # fmt: skip


def _minor(amount: str, currency: str) -> int:
    value = Decimal(amount) * (1 if currency in ZERO_DECIMAL else 100)
    if value != value.to_integral_value():
        raise ValueError(f"{amount} {currency} is not a whole number of minor units")
    return int(value)


def _stripe(billing, accounts, invoices, invoice_lines, case_numbers, mapping) -> None:
    customers = [
        {"id": f"cus_{a['customer_id']}", "object": "customer", "name": a["customer_name"],
         "currency": a["currency"].lower(), "created": _epoch(a["created_date"]), "livemode": False,
         "metadata": {"crm_account": a["customer_id"]}}
        for a in accounts
    ]  # fmt: skip
    (billing / "customers.json").write_text(
        json.dumps({"object": "list", "url": "/v1/customers", "has_more": False, "data": customers}) + "\n"
    )
    by_invoice: dict[str, list[dict]] = {}
    for line in invoice_lines:
        currency = line["currency"]
        price = f"price_{line['item_code']}_{line['line_type']}_{currency}".lower()
        mapping += [("price", price, line["item_code"]), ("line_type", price, line["line_type"])]
        metadata = {k: line[k] for k in ("contract_id", "contract_line_id") if line[k]}
        reference = line["reference_id"]
        description = f"{line['item_code'].replace('_', ' ').title()} ({line['line_type']})"
        if reference in case_numbers:  # invoices quote the case number people see
            description += f" - Case {case_numbers[reference]}"
        elif reference:
            metadata["reference_id"] = reference
        item = {
            "id": line["invoice_line_id"], "object": "line_item", "amount": _minor(line["amount"], currency),
            "currency": currency.lower(), "description": description,
            "quantity": json.loads(str(Decimal(line["quantity"]).normalize())),
            "period": {"start": _epoch(line["period_start"]), "end": _epoch(line["period_end"])},
            "pricing": {"type": "price_details", "price_details": {"price": price}},
            "metadata": metadata,
        }  # fmt: skip
        if line.get("discount_amount"):  # a coupon on the line (docs/ingest.md: Stripe, discounts)
            discount = {
                "amount": _minor(line["discount_amount"], currency),
                "discount": f"di_{line['invoice_line_id']}",
            }
            item |= {"discount_amounts": [discount], "discounts": [discount["discount"]]}
        if line.get("is_proration") in ("true", "True"):  # API 2025-03-31.basil and later
            item["parent"] = {
                "type": "subscription_item_details",
                "subscription_item_details": {"proration": True, "subscription_item": None},
            }
        by_invoice.setdefault(line["invoice_id"], []).append(item)
    documents = [
        {"id": i["invoice_id"], "object": "invoice", "customer": f"cus_{i['customer_id']}",
         "currency": i["currency"].lower(), "status": i["status"], "created": _epoch(i["invoice_date"]),
         "effective_at": _epoch(i["invoice_date"]), "livemode": False,
         "lines": {"object": "list", "has_more": False, "data": by_invoice.get(i["invoice_id"], [])}}
        for i in invoices
    ]  # fmt: skip
    (billing / "invoices.json").write_text(
        json.dumps({"object": "list", "url": "/v1/invoices", "has_more": False, "data": documents}) + "\n"
    )


def _stripe_credit_notes(billing: Path, lines: list[dict[str, str]]) -> None:
    """Credit notes as GET /v1/credit_notes lists them: each crediting one invoice line."""
    notes = [
        {"id": f"cn_{n['credit_note_id']}", "object": "credit_note", "invoice": n["invoice_id"],
         "currency": n["currency"].lower(), "status": n["status"], "reason": n["reason"],
         "created": _epoch(n["credited_on"]), "effective_at": _epoch(n["credited_on"]), "livemode": False,
         "lines": {"object": "list", "has_more": False, "data": [
             {"id": f"cnli_{n['credit_note_line_id']}", "object": "credit_note_line_item",
              "type": "invoice_line_item", "invoice_line_item": n["invoice_line_id"],
              "amount": _minor(n["amount"], n["currency"]), "discount_amounts": []}]}}
        for n in lines
    ]  # fmt: skip
    (billing / "credit_notes.json").write_text(
        json.dumps({"object": "list", "url": "/v1/credit_notes", "has_more": False, "data": notes}) + "\n"
    )


def _cloudevents(con: duckdb.DuckDBPyConnection, usage: Path) -> None:
    """Each usage file as CloudEvents JSON lines, in place (same name, so late files stay late)."""
    for path in sorted(usage.glob("*.jsonl")):
        target = path.with_name(path.stem + ".cloudevents.jsonl")
        con.execute(
            f"""COPY (SELECT '1.0' AS specversion, event_id AS id, '{EVENT_SOURCE}' AS source,
                    'com.demo.' || lower(meter_code) AS type, 'cus_' || customer_id AS subject,
                    strftime(CAST(occurred_at AS TIMESTAMP), '%Y-%m-%dT%H:%M:%SZ') AS time,
                    strftime(CAST(sent_at AS TIMESTAMP), '%Y-%m-%dT%H:%M:%SZ') AS recordedtime,
                    'application/json' AS datacontenttype,
                    json_object('units', CAST(quantity AS JSON)) AS data
                FROM read_json(?, format = 'newline_delimited', columns = {{
                    event_id: 'VARCHAR', customer_id: 'VARCHAR', meter_code: 'VARCHAR',
                    quantity: 'VARCHAR', occurred_at: 'VARCHAR', sent_at: 'VARCHAR'}}))
            TO {quote_literal(str(target))} (FORMAT json)""",
            [str(path)],
        )
        path.unlink()
        target.rename(path)
