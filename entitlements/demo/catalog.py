"""The demo business's catalog and price book.

Terms are set at the highest level that applies and inherited below unless an
entitlement overrides them (GOLD on-site visits keep an 8-hour SLA while the
group promises 4). `resolved_terms` applies that inheritance; the dbt model
`int_catalog_entitlements` does the same in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

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

# USD list prices; other currencies are converted at fixed list-price factors (amounts, not
# quantities: tier bounds and package sizes stay).
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
# ONSITE_VISIT's list price rises on this day: a visit is priced at the price in force that day.
PRICE_CHANGE = date(2025, 7, 1)
ONSITE_VISIT_NEW_PRICE = "950"


@dataclass(frozen=True)
class Price:
    """One price of the price book (docs/pricing.md), in USD; tiers are (up_to, unit, flat)."""

    item_code: str
    price_type: str
    unit_amount: str
    package_code: str | None = None
    charge_model: str = "per_unit"
    valid_from: date | None = None
    tiers: tuple[tuple[int | None, str, str], ...] = ()
    package_size: int | None = None
    rounding: str | None = None
    free_units: int = 0


# How each API package bills use over its allowance: one charge model each, so the demo plants a
# leak priced by every model. Use with no package (after a subscription ended) is priced at the
# per-unit fallback in UNIT_PRICES.
PACKAGE_PRICES: tuple[Price, ...] = (
    # API Pro: per started 1,000 calls (Stripe transform_quantity divide_by 1000, round up)
    Price("API_CALLS", "unit", "2.00", "API_PRO", "package", package_size=1000, rounding="up"),
    # API Starter: volume tiers, the whole overage at the rate of the tier it reaches
    Price(
        "API_CALLS", "unit", "0", "API_STARTER", "volume", tiers=((2500, "0.003", "0"), (None, "0.0025", "0"))
    ),
    # API Pro: graduated tiers, the first 50 GB over at 0.50, the rest at 0.40
    Price("DATA_GB", "unit", "0", "API_PRO", "graduated", tiers=((50, "0.5", "0"), (None, "0.4", "0"))),
    # API Starter: a flat overage fee, whatever the overage
    Price("DATA_GB", "unit", "20", "API_STARTER", "flat"),
)


def _prices() -> tuple[Price, ...]:
    out = [Price(code, "annual_fee", str(fee)) for code, fee in ANNUAL_FEES.items()]
    out += [Price(code, "unit", unit) for code, unit in UNIT_PRICES.items()]
    out += [Price("ONSITE_VISIT", "unit", ONSITE_VISIT_NEW_PRICE, valid_from=PRICE_CHANGE)]
    out += [Price(code, "premium_surcharge", str(fee)) for code, fee in PREMIUM_SURCHARGES.items()]
    return (*out, *PACKAGE_PRICES)


PRICES = _prices()
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


def _in(currency: str, usd: str) -> Decimal:
    # normalised without an exponent: 24000, not 2.4E+4, in the price book file
    return Decimal(
        format((Decimal(usd) * CURRENCY_FACTORS[currency]).quantize(Decimal("0.000001")).normalize(), "f")
    )


def price_in_force(kind: str, code: str, on: date | None = None, package: str | None = None) -> Price:
    """The price of `code` in force on `on` (None: the first one): the package's own price if
    one is in force, else the fallback (no package)."""
    for candidates in (
        [p for p in PRICES if p.package_code == package and package],
        [p for p in PRICES if p.package_code is None],
    ):
        in_force = [
            p for p in candidates
            if p.item_code == code and p.price_type == kind and (on is None or (p.valid_from or on) <= on)
        ]  # fmt: skip
        if in_force:
            return max(in_force, key=lambda p: p.valid_from or date.min) if on else in_force[0]
    raise KeyError(f"no {kind} price for {code} ({package}) on {on}")


def price(kind: str, code: str, currency: str, on: date | None = None) -> Decimal:
    """A fallback price's amount in a currency: kind is annual_fee, unit or premium_surcharge."""
    return _in(currency, price_in_force(kind, code, on).unit_amount)


def charge(
    kind: str, code: str, currency: str, quantity: int | Decimal, on: date, package: str | None = None
) -> Decimal:
    """What `quantity` of `code` costs at the price in force on `on`, to the cent: the charge
    models of docs/pricing.md, written here independently of the dbt macro."""
    p = price_in_force(kind, code, on, package)
    q = Decimal(quantity)
    billable = max(q - p.free_units, Decimal(0))
    unit = _in(currency, p.unit_amount)
    if q == 0:
        amount = Decimal(0)
    elif p.charge_model == "per_unit":
        amount = billable * unit
    elif p.charge_model == "package":
        rounding = ROUND_FLOOR if p.rounding == "down" else ROUND_CEILING
        packages = (billable / p.package_size).to_integral_value(rounding=rounding)
        amount = packages * unit
    elif p.charge_model == "flat":
        amount = unit
    else:
        amount, lower = Decimal(0), 0
        for up_to, tier_unit, flat in p.tiers:
            top = billable if up_to is None else min(billable, Decimal(up_to))
            in_tier = billable > lower and (up_to is None or billable <= up_to)
            if p.charge_model == "graduated" and billable > lower:
                amount += (top - lower) * _in(currency, tier_unit) + _in(currency, flat)
            elif p.charge_model == "volume" and in_tier:
                amount = billable * _in(currency, tier_unit) + _in(currency, flat)
            lower = up_to or lower
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


PRICE_BOOK_COLUMNS = (
    "item_code", "currency", "price_type", "unit_amount", "package_code", "charge_model", "valid_from",
    "tier_up_to", "flat_amount", "package_size", "rounding", "free_units",
)  # fmt: skip


def price_book_rows() -> list[dict]:
    """billing/price_book.csv: every price in every currency, one row per tier of a tiered price."""
    rows = []
    for currency in CURRENCY_FACTORS:
        for p in PRICES:
            common = {
                "item_code": p.item_code,
                "currency": currency,
                "price_type": p.price_type,
                "package_code": p.package_code,
                "charge_model": p.charge_model,
                "valid_from": p.valid_from,
                "package_size": p.package_size,
                "rounding": p.rounding,
                "free_units": p.free_units or None,
            }
            for up_to, unit, flat in p.tiers or ((None, p.unit_amount, "0"),):
                rows.append(
                    common
                    | {
                        "unit_amount": _in(currency, unit),
                        "tier_up_to": up_to if p.tiers else None,
                        "flat_amount": _in(currency, flat) if p.tiers else None,
                    }
                )
    return rows
