"""The demo business's records, shared by the generator and the legacy export it derives."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from entitlements.demo.catalog import Terms


def serial_number(asset_id: str) -> str:
    """The serial number of a demo asset (assets.csv), which the legacy system keys equipment by."""
    return f"SN{int(asset_id[3:]) * 7919:09d}"


@dataclass
class Customer:
    customer_id: str
    currency: str
    country: str
    locations: list[str] = field(default_factory=list)
    assets: list[tuple[str, str]] = field(default_factory=list)  # (asset_id, location_id)


@dataclass
class Contract:
    contract_id: str
    customer_id: str
    contract_type: str
    start: date
    end: date
    currency: str
    auto_renew: bool
    renewal_of: str | None = None
    renewed: bool = False


@dataclass
class LineVersion:
    contract_line_id: str
    version_no: int
    contract: Contract
    package_code: str
    asset_id: str | None
    location_id: str | None
    annual_price: Decimal
    valid_from: date
    valid_to: date
    change_reason: str


@dataclass
class Delivery:
    delivery_id: str
    customer_id: str
    asset_id: str
    location_id: str
    service_code: str
    created_at: datetime
    billing_type: str
    response_hours: float
    after_hours: bool = False
    winner: tuple[LineVersion, Terms] | None = None
    invoiced: bool = True  # customer-pay service line written
    premium_charged: bool = False


@dataclass
class Override:
    override_id: str
    customer_id: str
    contract_id: str
    entitlement_code: str
    extra_quantity: int
    valid_from: date
    valid_to: date
    approved_by: str | None
    reason: str


@dataclass(frozen=True)
class Leak:
    category: str
    evidence_id: str
    customer_id: str
    amount: Decimal
    currency: str
    occurred_on: date
    note: str
    scenario: str = ""  # a hard case the pipeline must get right (ground truth column)


@dataclass(frozen=True)
class Decoy:
    """A planted record that looks like a leak and is not one (ground_truth/decoys.csv)."""

    scenario: str
    evidence_id: str
    note: str


class Business(Protocol):
    """What the legacy export reads of the generated business (generator._Business)."""

    customers: list[Customer]
    contracts: list[Contract]
    lines: list[LineVersion]
