"""The demo business's catalog and price book.

Terms are set at the highest level that applies and inherited below unless an
entitlement overrides them (GOLD on-site visits keep an 8-hour SLA while the
group promises 4). `resolved_terms` applies that inheritance; the dbt model
`int_catalog_entitlements` does the same in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

# fmt: off
# node_code, parent_code, level, name, entitlement_code, type, unit, limit, period, consumed_by, sla, hours, resets
CATALOG: tuple[tuple, ...] = (
    ("GOLD_SUPPORT", None, "package", "Gold Support", None, "service", None, None, None, None, None, None, None),
    ("GOLD_SUPPORT.CORE", "GOLD_SUPPORT", "group", "Premium Services", None, None, None, None, "year", "service", 4, "24x7", None),
    ("GOLD_SUPPORT.INCIDENT", "GOLD_SUPPORT.CORE", "entitlement", "Incidents", "INCIDENT", None, "incidents", 12, None, None, None, None, None),
    ("GOLD_SUPPORT.PHONE", "GOLD_SUPPORT.CORE", "entitlement", "24/7 phone support", "PHONE_SUPPORT", None, "calls", None, None, None, None, None, None),
    ("GOLD_SUPPORT.ONSITE", "GOLD_SUPPORT.CORE", "entitlement", "On-site visits", "ONSITE_VISIT", None, "visits", 4, None, None, 8, None, None),
    ("SILVER_SUPPORT", None, "package", "Silver Support", None, "service", None, None, None, None, None, None, None),
    ("SILVER_SUPPORT.CORE", "SILVER_SUPPORT", "group", "Standard Services", None, None, None, None, "year", "service", 24, "business_hours", None),
    ("SILVER_SUPPORT.INCIDENT", "SILVER_SUPPORT.CORE", "entitlement", "Incidents", "INCIDENT", None, "incidents", 5, None, None, None, None, None),
    ("SILVER_SUPPORT.ONSITE", "SILVER_SUPPORT.CORE", "entitlement", "On-site visits", "ONSITE_VISIT", None, "visits", 1, None, None, 48, None, None),
    ("STANDARD_WARRANTY", None, "package", "Standard Warranty", None, "time_based", None, None, None, None, None, None, None),
    ("STANDARD_WARRANTY.REPAIR", "STANDARD_WARRANTY", "group", "Repair", None, None, None, None, "term", "service", 72, "business_hours", None),
    ("STANDARD_WARRANTY.VISIT", "STANDARD_WARRANTY.REPAIR", "entitlement", "Repair visits", "ONSITE_VISIT", None, "visits", None, None, None, None, None, None),
    ("API_PRO", None, "package", "API Pro", None, "feature", None, None, None, None, None, None, None),
    ("API_PRO.QUOTA", "API_PRO", "group", "Pro quotas", None, None, None, None, "month", "usage", None, None, None),
    ("API_PRO.CALLS", "API_PRO.QUOTA", "entitlement", "API calls", "API_CALLS", None, "calls", 100000, None, None, None, None, None),
    ("API_PRO.DATA", "API_PRO.QUOTA", "entitlement", "Data transfer", "DATA_GB", None, "GB", 500, None, None, None, None, None),
    ("API_STARTER", None, "package", "API Starter", None, "feature", None, None, None, None, None, None, None),
    ("API_STARTER.QUOTA", "API_STARTER", "group", "Starter quotas", None, None, None, None, "month", "usage", None, None, None),
    ("API_STARTER.CALLS", "API_STARTER.QUOTA", "entitlement", "API calls", "API_CALLS", None, "calls", 20000, None, None, None, None, None),
    ("API_STARTER.DATA", "API_STARTER.QUOTA", "entitlement", "Data transfer", "DATA_GB", None, "GB", 100, None, None, None, None, None),
)
# fmt: on
CATALOG_COLUMNS = (
    "node_code",
    "parent_code",
    "node_level",
    "node_name",
    "entitlement_code",
    "entitlement_type",
    "unit",
    "limit_quantity",
    "limit_period",
    "consumed_by",
    "sla_response_hours",
    "coverage_hours",
    "resets",
)

SUPPORT_PACKAGES = ("GOLD_SUPPORT", "SILVER_SUPPORT")
API_PACKAGES = ("API_PRO", "API_STARTER")
WARRANTY_PACKAGE = "STANDARD_WARRANTY"
SERVICE_CODES = ("INCIDENT", "PHONE_SUPPORT", "ONSITE_VISIT")
METER_CODES = ("API_CALLS", "DATA_GB")

# USD list prices; other currencies are converted at fixed list-price factors.
CURRENCY_FACTORS = {"USD": Decimal("1"), "EUR": Decimal("0.9"), "GBP": Decimal("0.8")}
ANNUAL_FEES = {
    "GOLD_SUPPORT": 24000,
    "SILVER_SUPPORT": 9600,
    "STANDARD_WARRANTY": 0,
    "API_PRO": 36000,
    "API_STARTER": 6000,
}
UNIT_PRICES = {
    "INCIDENT": "350",
    "PHONE_SUPPORT": "80",
    "ONSITE_VISIT": "900",
    "API_CALLS": "0.002",
    "DATA_GB": "0.5",
}
PREMIUM_SURCHARGES = {"INCIDENT": 250, "PHONE_SUPPORT": 50, "ONSITE_VISIT": 400}
# A response at or under this many hours is a premium response (see the dbt var premium_response_hours).
PREMIUM_RESPONSE_HOURS = 4


@dataclass(frozen=True)
class Terms:
    package_code: str
    node_code: str
    entitlement_code: str
    unit: str
    limit: int | None
    period: str
    consumed_by: str
    sla_hours: float | None
    coverage_hours: str | None


def resolved_terms() -> dict[str, dict[str, Terms]]:
    """package_code -> entitlement_code -> terms, with inheritance applied."""
    nodes = {row[0]: dict(zip(CATALOG_COLUMNS, row, strict=True)) for row in CATALOG}

    def inherited(node: dict, key: str):
        while node is not None:
            if node[key] is not None:
                return node[key]
            node = nodes.get(node["parent_code"])
        return None

    out: dict[str, dict[str, Terms]] = {}
    for node in nodes.values():
        if node["node_level"] != "entitlement":
            continue
        package = nodes[nodes[node["parent_code"]]["parent_code"]]["node_code"]
        out.setdefault(package, {})[node["entitlement_code"]] = Terms(
            package_code=package,
            node_code=node["node_code"],
            entitlement_code=node["entitlement_code"],
            unit=node["unit"],
            limit=inherited(node, "limit_quantity"),
            period=inherited(node, "limit_period"),
            consumed_by=inherited(node, "consumed_by"),
            sla_hours=inherited(node, "sla_response_hours"),
            coverage_hours=inherited(node, "coverage_hours"),
        )
    return out


def price(kind: str, code: str, currency: str) -> Decimal:
    """Price-book amount in a currency: kind is annual_fee, unit or premium_surcharge."""
    table = {"annual_fee": ANNUAL_FEES, "unit": UNIT_PRICES, "premium_surcharge": PREMIUM_SURCHARGES}[kind]
    return (Decimal(str(table[code])) * CURRENCY_FACTORS[currency]).quantize(Decimal("0.0001"))


def price_book_rows() -> list[dict]:
    rows = []
    for currency in CURRENCY_FACTORS:
        for kind, table in (
            ("annual_fee", ANNUAL_FEES),
            ("unit", UNIT_PRICES),
            ("premium_surcharge", PREMIUM_SURCHARGES),
        ):
            for code in table:
                rows.append(
                    {
                        "item_code": code,
                        "currency": currency,
                        "price_type": kind,
                        "unit_amount": price(kind, code, currency),
                    }
                )
    return rows
