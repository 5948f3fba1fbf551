"""Simulate a small service business and write its exports, planting known leaks.

The simulation keeps its own model of coverage and allowances (a few lines of
Python, independent of the dbt models) so that every delivery it writes is
either correct or a leak it planted on purpose and records in the ground truth.

Business rules shared with the dbt models (documented in dbt_project/README.md):
- contracts, line versions and amendments start and end on the 1st of a month;
  validity is [valid_from, valid_to): the start day is covered, the end day not;
- allowance periods are anchored at the contract start (month, contract year or
  the whole term);
- a delivery is attributed to one covering entitlement, the winner: unlimited
  first, then the largest limit, the fastest SLA, asset-specific before general,
  and the lowest contract line id;
- billing is monthly in arrears: month M is invoiced on the 1st of M+1, so only
  months before the as-of month can leak through missing invoice lines.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from entitlements.demo import catalog
from entitlements.demo.catalog import Terms, charge, price, resolved_terms
from entitlements.demo.legacy import LEGACY_DIR, write_fault_truth, write_legacy
from entitlements.demo.records import (
    Contract,
    Customer,
    Decoy,
    Delivery,
    Leak,
    LineVersion,
    Override,
    serial_number,
)
from entitlements.demo.usage import UsagePeriod, write_usage
from entitlements.demo.vendor import write_vendor_shapes

HISTORY_START = date(2024, 1, 1)
DEFAULT_AS_OF = date(2026, 10, 31)
PLANTED_PER_CATEGORY = 6
CENT = Decimal("0.01")
COUNTRIES = {"USD": ("US", "CA"), "EUR": ("DE", "FR", "NL"), "GBP": ("GB",)}


SHAPES = ("canonical", "vendor")  # how the exports are written: our layouts, or as the vendors export


def add_months(day: date, months: int) -> date:
    """The 1st of the month `months` after the month of `day`."""
    year, month = divmod(day.month - 1 + months, 12)
    return date(day.year + year, month + 1, 1)


def months_between(start: date, day: date) -> int:
    return (day.year - start.year) * 12 + day.month - start.month


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def segment_of(customer_id: str) -> str:
    """The CRM segment of a demo customer (accounts.csv)."""
    return ("enterprise", "mid-market", "smb")[int(customer_id[1:]) % 3]


@dataclass(frozen=True)
class DemoSummary:
    out_dir: Path
    seed: int
    as_of: date
    customers: int
    usage_events: int
    leaks: int
    files: int
    migration_faults: int = 0


class _Business:
    def __init__(self, seed: int, n_customers: int, as_of: date, plant_leaks: bool) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.as_of = as_of
        self.as_of_month = as_of.replace(day=1)
        self.plant = plant_leaks
        self.terms = resolved_terms()
        self.customers: list[Customer] = []
        self.contracts: list[Contract] = []
        self.lines: list[LineVersion] = []
        self.lines_by_customer: dict[str, list[LineVersion]] = defaultdict(list)
        self.overrides: list[Override] = []
        self.deliveries: list[Delivery] = []
        self.leaks: list[Leak] = []
        self.decoys: list[Decoy] = []
        self.adjusted_lines: set[str] = set()  # invoice lines a plant changed: one plant per line
        self.credit_notes: list[dict] = []  # billing/credit_note_lines.csv
        self.consumed: dict[tuple[str, str, date], int] = defaultdict(int)
        self.reserved: set[tuple[str, str, date]] = set()
        self._ids: dict[str, int] = defaultdict(int)
        self.asset_installed: dict[str, date] = {}
        self._build_customers(n_customers)

    # ---- ids -------------------------------------------------------------
    def next_id(self, prefix: str, width: int) -> str:
        self._ids[prefix] += 1
        return f"{prefix}-{self._ids[prefix]:0{width}d}"

    # ---- master data -----------------------------------------------------
    def _build_customers(self, n: int) -> None:
        rng = self.rng
        for i in range(1, n + 1):
            currency = rng.choice(("USD", "USD", "EUR", "GBP"))
            customer = Customer(f"C{i:05d}", currency, rng.choice(COUNTRIES[currency]))
            for _ in range(rng.choice((1, 1, 2))):
                customer.locations.append(self.next_id("LOC", 5))
            # Every site has at least one asset.
            sites = customer.locations + [rng.choice(customer.locations) for _ in range(rng.randint(0, 2))]
            customer.assets.extend((self.next_id("AS", 6), site) for site in sites)
            self.customers.append(customer)

    def _add_line(
        self,
        contract: Contract,
        versions: list[tuple[str, date, date]],
        asset_id: str | None = None,
        location_id: str | None = None,
        price_factor: Decimal = Decimal(1),
        reason: str = "granted",
    ) -> None:
        line_id = self.next_id("SCL", 6)
        for number, (pkg, start, end) in enumerate(versions, start=1):
            version = LineVersion(
                line_id,
                number,
                contract,
                pkg,
                asset_id,
                location_id,
                money(price("annual_fee", pkg, contract.currency) * price_factor),
                start,
                end,
                reason if number == 1 else "amended",
            )
            self.lines.append(version)
            self.lines_by_customer[contract.customer_id].append(version)

    def build_contracts(self) -> None:
        rng = self.rng
        latest_start = add_months(self.as_of_month, -10)
        span = months_between(HISTORY_START, latest_start)
        for customer in self.customers:
            products = rng.choice((("support",), ("api",), ("support", "api"), ("support", "api")))
            for product in products:
                self._build_chain(customer, product, add_months(HISTORY_START, rng.randint(0, span)))
            for asset_id, _location in customer.assets:
                installed = add_months(
                    HISTORY_START, rng.randint(-6, months_between(HISTORY_START, self.as_of_month))
                )
                warranty = Contract(
                    self.next_id("SC", 6),
                    customer.customer_id,
                    "warranty",
                    installed,
                    add_months(installed, 12),
                    customer.currency,
                    False,
                )
                self.contracts.append(warranty)
                self._add_line(
                    warranty, [(catalog.WARRANTY_PACKAGE, warranty.start, warranty.end)], asset_id=asset_id
                )
                self.asset_installed[asset_id] = installed

    def _build_chain(self, customer: Customer, product: str, start: date) -> None:
        """A contract and its renewals, each a 12-month term, until one expires or runs past as-of."""
        rng = self.rng
        previous: Contract | None = None
        packages = catalog.SUPPORT_PACKAGES if product == "support" else catalog.API_PACKAGES
        package = rng.choice(packages)
        factor = Decimal(1)
        while True:
            end = add_months(start, 12)
            contract_type = "service_contract" if product == "support" else "subscription"
            contract = Contract(
                self.next_id("SC", 6),
                customer.customer_id,
                contract_type,
                start,
                end,
                customer.currency,
                rng.random() < 0.5,
                previous.contract_id if previous else None,
            )
            self.contracts.append(contract)
            versions = [(package, start, end)]
            if rng.random() < 0.25:  # a mid-term amendment: upgrade or downgrade from a month start
                at = add_months(start, rng.randint(2, 10))
                other = next(p for p in packages if p != package)
                versions = [(package, start, at), (other, at, end)]
                package = other
            location = None
            if product == "support" and len(customer.locations) > 1 and rng.random() < 0.5:
                location = customer.locations[0]  # a contract for one site only
            self._add_line(
                contract,
                versions,
                location_id=location,
                price_factor=factor,
                reason="renewed" if previous else "granted",
            )
            if previous:
                previous.renewed = True
            days_left = (end - self.as_of).days
            if end <= self.as_of:
                if rng.random() < 0.2:
                    return  # expired, not renewed
            elif days_left > 60 or rng.random() < 0.6:
                return  # renewal not signed yet
            previous, start, factor = contract, end, (factor * Decimal("1.05"))

    def build_overrides(self) -> None:
        rng = self.rng
        support = [
            lv
            for lv in self.lines
            if lv.package_code in catalog.SUPPORT_PACKAGES and lv.valid_from < self.as_of_month
        ]
        for approved in [True] * 8 + [False] * (PLANTED_PER_CATEGORY if self.plant else 0):
            lv = rng.choice(support)
            code = rng.choice(("INCIDENT", "ONSITE_VISIT"))
            override = Override(
                self.next_id("OV", 5),
                lv.contract.customer_id,
                lv.contract.contract_id,
                code,
                rng.randint(1, 3),
                lv.valid_from,
                lv.valid_to,
                rng.choice(("a.khan", "m.rossi", "j.smith")) if approved else None,
                rng.choice(("goodwill after outage", "renewal negotiation", "key account exception")),
            )
            self.overrides.append(override)
            if not approved:
                currency = lv.contract.currency
                amount = charge("unit", code, currency, override.extra_quantity, override.valid_from)
                self.leaks.append(
                    Leak(
                        "unapproved_override",
                        override.override_id,
                        override.customer_id,
                        amount,
                        lv.contract.currency,
                        override.valid_from,
                        f"{override.extra_quantity} x {code} granted without approval",
                    )
                )

    # ---- coverage model ----------------------------------------------------
    def covering(
        self, customer_id: str, code: str, day: date, asset_id: str, location_id: str
    ) -> list[tuple[LineVersion, Terms]]:
        out = []
        for lv in self.lines_by_customer[customer_id]:
            terms = self.terms[lv.package_code].get(code)
            if (
                terms
                and lv.valid_from <= day < lv.valid_to
                and lv.asset_id in (None, asset_id)
                and lv.location_id in (None, location_id)
            ):
                out.append((lv, terms))
        return out

    @staticmethod
    def winner(options: list[tuple[LineVersion, Terms]]) -> tuple[LineVersion, Terms]:
        def rank(option: tuple[LineVersion, Terms]) -> tuple:
            lv, terms = option
            return (
                terms.limit is not None,
                -(terms.limit or 0),
                terms.sla_hours or 1e9,
                lv.asset_id is None,
                lv.contract_line_id,
            )

        return min(options, key=rank)

    def period_start(self, lv: LineVersion, terms: Terms, day: date) -> date:
        if terms.period == "month":
            return day.replace(day=1)
        if terms.period == "year":
            return add_months(lv.contract.start, 12 * (months_between(lv.contract.start, day) // 12))
        return lv.contract.start

    def effective_limit(self, lv: LineVersion, terms: Terms, day: date) -> int | None:
        if terms.limit is None:
            return None
        extra = sum(
            o.extra_quantity
            for o in self.overrides
            if o.approved_by
            and o.contract_id == lv.contract.contract_id
            and o.entitlement_code == terms.entitlement_code
            and o.valid_from <= day < o.valid_to
        )
        return terms.limit + extra

    # ---- service deliveries ----------------------------------------------
    def _new_delivery(
        self,
        customer: Customer,
        code: str,
        when: datetime,
        asset: tuple[str, str],
        billing_type: str,
        response: float,
    ) -> Delivery:
        prefix = "WO" if code == "ONSITE_VISIT" else "CS"
        delivery = Delivery(
            self.next_id(prefix, 7),
            customer.customer_id,
            asset[0],
            asset[1],
            code,
            when,
            billing_type,
            response,
        )
        self.deliveries.append(delivery)
        return delivery

    def _random_time(self, day: date) -> datetime:
        return datetime(
            day.year,
            day.month,
            day.day,
            self.rng.randint(8, 16),
            self.rng.randint(0, 59),
            self.rng.randint(0, 59),
        )

    def _response(self, terms: Terms | None) -> float:
        sla = terms.sla_hours if terms else 48
        low = (
            1.0
            if sla <= catalog.PREMIUM_RESPONSE_HOURS
            else max(catalog.PREMIUM_RESPONSE_HOURS + 0.5, sla / 2)
        )
        return round(self.rng.uniform(low, sla) * 2) / 2

    def deliver(
        self, customer: Customer, code: str, when: datetime, asset: tuple[str, str]
    ) -> Delivery | None:
        """Deliver a service the normal way: covered within allowance, otherwise customer-pay."""
        day = when.date()
        options = self.covering(customer.customer_id, code, day, *asset)
        if options:
            lv, terms = self.winner(options)
            key = (lv.contract_line_id, code, self.period_start(lv, terms, day))
            if key in self.reserved:
                return None
            limit = self.effective_limit(lv, terms, day)
            if limit is None or self.consumed[key] < limit:
                self.consumed[key] += 1
                delivery = self._new_delivery(customer, code, when, asset, "covered", self._response(terms))
                delivery.after_hours = terms.coverage_hours == "24x7" and self.rng.random() < 0.2
                delivery.winner = (lv, terms)
                return delivery
        return self._new_delivery(customer, code, when, asset, "customer_pay", self._response(None))

    def build_deliveries(self) -> None:
        rng = self.rng
        self._plant_over_allowance()
        # Start days are covered: a few deliveries on the first day of a contract. Delivered
        # first, as allowances are decided in delivery order (the first day of a period comes first).
        for lv in rng.sample(
            [
                lv
                for lv in self.lines
                if lv.version_no == 1
                and lv.valid_from <= self.as_of
                and lv.package_code in catalog.SUPPORT_PACKAGES
            ],
            3,
        ):
            customer = self.customer(lv.contract.customer_id)
            asset = next((a for a in customer.assets if lv.location_id in (None, a[1])), None)
            if asset:
                delivery = self.deliver(
                    customer,
                    "INCIDENT",
                    datetime.combine(lv.valid_from, datetime.min.time()).replace(hour=9),
                    asset,
                )
                if delivery and delivery.billing_type == "covered":
                    self.decoys.append(
                        Decoy("contract_start_day", delivery.delivery_id, "free incident on the first day")
                    )
        month = HISTORY_START
        while month <= self.as_of_month:
            last_day = min(add_months(month, 1) - timedelta(days=1), self.as_of)
            for customer in self.customers:
                planned = []
                for _ in range(rng.choice((0, 0, 1, 1, 1, 2, 3))):
                    day = month + timedelta(days=rng.randint(0, (last_day - month).days))
                    code = rng.choices(catalog.SERVICE_CODES, weights=(5, 2, 3))[0]
                    planned.append((self._random_time(day), code, rng.choice(customer.assets)))
                for when, code, asset in sorted(planned):
                    self.deliver(customer, code, when, asset)
            month = add_months(month, 1)
        self.deliveries.sort(key=lambda d: (d.created_at, d.delivery_id))
        if self.plant:
            self._plant_uncovered()
            self._plant_premium_and_unbilled()
        else:
            self._charge_some_premiums(0)

    def customer(self, customer_id: str) -> Customer:
        return self.customers[int(customer_id[1:]) - 1]

    def _plant_over_allowance(self) -> None:
        """Reserve allowance periods and fill each until the first delivery over its limit."""
        rng = self.rng
        candidates = []
        for lv in self.lines:
            terms = self.terms[lv.package_code].get("INCIDENT")
            if not terms or lv.version_no != 1:
                continue
            start = lv.contract.start
            if add_months(start, 12) <= self.as_of_month and start >= HISTORY_START:
                versions = [v for v in self.lines if v.contract_line_id == lv.contract_line_id]
                candidates.append((len(versions) > 1, lv, start))
        amended = [c for c in candidates if c[0]]
        plain = [c for c in candidates if not c[0]]
        wanted = PLANTED_PER_CATEGORY if self.plant else 0
        chosen = rng.sample(amended, min(2, len(amended), wanted))
        chosen += rng.sample(plain, min(wanted - len(chosen), len(plain)))
        for amended_line, lv, start in chosen:
            key = (lv.contract_line_id, "INCIDENT", start)
            self.reserved.add(key)
            customer = self.customer(lv.contract.customer_id)
            asset = next(a for a in customer.assets if lv.location_id in (None, a[1]))
            days = sorted(rng.sample(range(0, 360), 20))
            for offset in days:
                when = self._random_time(start + timedelta(days=offset))
                versions = [
                    v
                    for v in self.lines
                    if v.contract_line_id == lv.contract_line_id and v.valid_from <= when.date() < v.valid_to
                ]
                if not versions:
                    continue
                version = versions[0]
                terms = self.terms[version.package_code]["INCIDENT"]
                if (
                    self.covering(customer.customer_id, "INCIDENT", when.date(), *asset)
                    and self.winner(self.covering(customer.customer_id, "INCIDENT", when.date(), *asset))[0]
                    is not version
                ):
                    continue
                delivery = self._new_delivery(
                    customer, "INCIDENT", when, asset, "covered", self._response(terms)
                )
                delivery.winner = (version, terms)
                self.consumed[key] += 1
                if self.consumed[key] > self.effective_limit(version, terms, when.date()):
                    self.leaks.append(
                        Leak(
                            "over_allowance_service",
                            delivery.delivery_id,
                            customer.customer_id,
                            charge("unit", "INCIDENT", lv.contract.currency, 1, when.date()),
                            lv.contract.currency,
                            when.date(),
                            f"incident {self.consumed[key]} on a {terms.limit}-per-year plan",
                            # amendments fall 2-10 months into the 12-month term: inside this period
                            "amendment_changes_limit_mid_period" if amended_line else "",
                        )
                    )
                    break

    def _plant_uncovered(self) -> None:
        """Free deliveries with no covering entitlement: boundary days, wrong assets, lapsed contracts."""
        rng = self.rng
        planted: list[Delivery] = []

        def plant(
            customer: Customer,
            code: str,
            when: datetime,
            asset: tuple[str, str],
            note: str,
            scenario: str = "",
        ) -> None:
            if self.covering(customer.customer_id, code, when.date(), *asset):
                return
            delivery = self._new_delivery(customer, code, when, asset, "covered", self._response(None))
            planted.append(delivery)
            self.leaks.append(
                Leak(
                    "uncovered_service",
                    delivery.delivery_id,
                    customer.customer_id,
                    charge("unit", code, customer.currency, 1, when.date()),
                    customer.currency,
                    when.date(),
                    note,
                    scenario,
                )
            )

        # The day a lapsed support contract ends is no longer covered.
        lapsed = [
            c
            for c in self.contracts
            if c.contract_type == "service_contract" and not c.renewed and c.end <= self.as_of
        ]
        for contract in rng.sample(lapsed, min(2, len(lapsed))):
            customer = self.customer(contract.customer_id)
            plant(
                customer,
                "INCIDENT",
                datetime.combine(contract.end, datetime.min.time()).replace(hour=10),
                customer.assets[0],
                "incident on the day the contract ended",
                "contract_end_day",
            )
        # A warranty on one asset seems to cover a visit to another.
        for customer in rng.sample(self.customers, len(self.customers)):
            if len(planted) >= 4 or len(customer.assets) < 2:
                continue
            warranty = next(
                (
                    lv
                    for lv in self.lines_by_customer[customer.customer_id]
                    if lv.asset_id and lv.valid_from <= self.as_of
                ),
                None,
            )
            if warranty is None:
                continue
            other = next(a for a in customer.assets if a[0] != warranty.asset_id)
            when = self._random_time(warranty.valid_from + timedelta(days=rng.randint(0, 27)))
            if when.date() <= self.as_of:
                plant(
                    customer,
                    "ONSITE_VISIT",
                    when,
                    other,
                    "visit to an asset the warranty does not cover",
                    "overlapping_entitlement_for_another_asset",
                )
        while len(planted) < PLANTED_PER_CATEGORY:
            customer = rng.choice(self.customers)
            day = HISTORY_START + timedelta(days=rng.randint(0, (self.as_of - HISTORY_START).days))
            plant(
                customer,
                rng.choice(catalog.SERVICE_CODES),
                self._random_time(day),
                rng.choice(customer.assets),
                "free service with no active entitlement",
            )

    def _charge_some_premiums(self, leaks_wanted: int) -> None:
        """Premium responses on standard entitlements: most charged, `leaks_wanted` not."""
        eligible = [
            d
            for d in self.deliveries
            if d.winner
            and d.created_at.date() < self.as_of_month
            and (d.winner[1].sla_hours or 0) > catalog.PREMIUM_RESPONSE_HOURS
            and self._is_within_allowance(d)
        ]
        chosen = self.rng.sample(eligible, min(len(eligible), leaks_wanted + 6))
        for i, delivery in enumerate(chosen):
            if delivery.winner[1].coverage_hours == "business_hours" and i % 2:
                delivery.after_hours = True
                note = "after-hours dispatch on a business-hours entitlement"
            else:
                delivery.response_hours = 2.0
                note = f"2-hour response on a {delivery.winner[1].sla_hours:g}-hour SLA"
            if i < leaks_wanted:
                customer = self.customer(delivery.customer_id)
                self.leaks.append(
                    Leak(
                        "premium_service_on_standard",
                        delivery.delivery_id,
                        delivery.customer_id,
                        money(price("premium_surcharge", delivery.service_code, customer.currency)),
                        customer.currency,
                        delivery.created_at.date(),
                        note + ", no premium charged",
                    )
                )
            else:
                delivery.premium_charged = True

    def _is_within_allowance(self, delivery: Delivery) -> bool:
        return not any(leak.evidence_id == delivery.delivery_id for leak in self.leaks)

    def _plant_premium_and_unbilled(self) -> None:
        self._charge_some_premiums(PLANTED_PER_CATEGORY)
        billable = [
            d
            for d in self.deliveries
            if d.billing_type == "customer_pay" and d.created_at.date() < self.as_of_month
        ]
        for delivery in self.rng.sample(billable, min(PLANTED_PER_CATEGORY, len(billable))):
            delivery.invoiced = False
            customer = self.customer(delivery.customer_id)
            self.leaks.append(
                Leak(
                    "unbilled_service",
                    delivery.delivery_id,
                    delivery.customer_id,
                    charge("unit", delivery.service_code, customer.currency, 1, delivery.created_at.date()),
                    customer.currency,
                    delivery.created_at.date(),
                    "customer-pay service never invoiced",
                )
            )

    # ---- usage -------------------------------------------------------------
    def usage_periods(self) -> list[UsagePeriod]:
        """Metered usage per subscription month, with overage and post-expiry scenarios."""
        rng = self.rng
        periods: list[UsagePeriod] = []
        for lv in self.lines:
            if lv.package_code not in catalog.API_PACKAGES:
                continue
            month = lv.valid_from
            # about one subscription in eight barely uses its quota (fct_underused_entitlements)
            low, high = (0.01, 0.08) if rng.random() < 0.125 else (0.3, 0.97)
            while month < lv.valid_to and month <= self.as_of:
                for code in catalog.METER_CODES:
                    limit = self.terms[lv.package_code][code].limit
                    share = 1.0
                    if month == self.as_of_month:
                        share = self.as_of.day / (add_months(month, 1) - month).days
                    total = int(limit * rng.uniform(low, high) * share)
                    periods.append(
                        UsagePeriod(
                            lv.contract.customer_id,
                            code,
                            month,
                            limit,
                            total,
                            lv.contract.currency,
                            line_version=f"{lv.contract_line_id}/v{lv.version_no}",
                            package_code=lv.package_code,
                        )
                    )
                month = add_months(month, 1)
        assessable = [p for p in periods if p.month < self.as_of_month]
        picks = rng.sample(assessable, min(len(assessable), 2 * PLANTED_PER_CATEGORY + 9))
        _cover_every_package_and_meter(picks, assessable, first=9)
        for i, period in enumerate(picks):
            over = max(1, int(period.limit * rng.uniform(0.05, 0.3)))
            if i < 6:  # billed correctly: not a leak
                period.total, period.billed = period.limit + over, over
                self.decoys.append(
                    Decoy("overage_invoiced", period.evidence_id, f"{over} over, all invoiced")
                )
            elif i < 9:  # exactly at the limit, with duplicate deliveries of some events: not a leak
                period.total, period.duplicates = period.limit, 5
                self.decoys.append(
                    Decoy(
                        "duplicate_events_at_limit",
                        period.evidence_id,
                        "at the limit counting each event once",
                    )
                )
            elif self.plant:
                period.total = period.limit + over
                period.billed = over // 2 if i % 3 == 0 else 0
                period.late_quantity = over + 1 if i % 3 == 1 else 0
                # The overage is priced as billed (its package's charge model on the period's whole
                # overage) less what was invoiced; half the overage invoiced can cost as much as all
                # of it (a flat fee, a started package): then nothing is invoiced instead.
                if self.overage_charge(period, over) <= self.overage_charge(period, period.billed):
                    period.billed = 0
                amount = self.overage_charge(period, over) - self.overage_charge(period, period.billed)
                self.leaks.append(
                    Leak(
                        "unbilled_overage",
                        period.evidence_id,
                        period.customer_id,
                        amount,
                        period.currency,
                        period.month,
                        f"{over} {period.meter_code} over the limit, {period.billed} invoiced",
                        "late_events_create_overage" if period.late_quantity else "",
                    )
                )
        if self.plant:
            periods += self._post_expiry_periods()
        return periods

    @staticmethod
    def overage_charge(period: UsagePeriod, quantity: int) -> Decimal:
        """What `quantity` over the allowance costs in the period's package (docs/pricing.md)."""
        return charge("unit", period.meter_code, period.currency, quantity, period.month, period.package_code)

    def _post_expiry_periods(self) -> list[UsagePeriod]:
        ended = [
            c
            for c in self.contracts
            if c.contract_type == "subscription" and not c.renewed and c.end < self.as_of_month
        ]
        out = []
        for contract in self.rng.sample(ended, len(ended)):
            if len(out) >= PLANTED_PER_CATEGORY:
                break
            month = add_months(
                contract.end, self.rng.randint(0, months_between(contract.end, self.as_of_month) - 1)
            )
            if any(p.customer_id == contract.customer_id and p.month == month for p in out):
                continue
            if any(
                lv.valid_from <= month < lv.valid_to and lv.package_code in catalog.API_PACKAGES
                for lv in self.lines_by_customer[contract.customer_id]
            ):
                continue  # another subscription covers that month
            total = self.rng.randint(500, 5000)
            period = UsagePeriod(contract.customer_id, "API_CALLS", month, 0, total, contract.currency)
            out.append(period)
            self.leaks.append(
                Leak(
                    "post_expiry_usage",
                    period.evidence_id,
                    contract.customer_id,
                    charge("unit", "API_CALLS", contract.currency, total, month),
                    contract.currency,
                    month,
                    f"{total} API calls after subscription {contract.contract_id} ended",
                )
            )
        return out

    # ---- billing ---------------------------------------------------------
    def invoice_lines(self, periods: Iterable[UsagePeriod]) -> tuple[list[dict], list[dict]]:
        rng = self.rng
        lines_by_key: dict[tuple[str, date], list[dict]] = defaultdict(list)

        def add(customer_id: str, month: date, **values) -> None:
            lines_by_key[(customer_id, month)].append(
                values | {"period_start": month, "period_end": add_months(month, 1)}
            )

        for lv in self.lines:
            if lv.annual_price == 0:
                continue
            month = lv.valid_from
            while month < lv.valid_to and month < self.as_of_month:
                add(
                    lv.contract.customer_id,
                    month,
                    line_type="subscription",
                    contract_id=lv.contract.contract_id,
                    contract_line_id=lv.contract_line_id,
                    item_code=lv.package_code,
                    reference_id=None,
                    quantity=1,
                    amount=money(lv.annual_price / 12),
                    currency=lv.contract.currency,
                )
                month = add_months(month, 1)
        for d in self.deliveries:
            month = d.created_at.date().replace(day=1)
            if month >= self.as_of_month:
                continue
            currency = self.customer(d.customer_id).currency
            if d.billing_type == "customer_pay" and d.invoiced:
                add(
                    d.customer_id,
                    month,
                    line_type="service",
                    contract_id=None,
                    contract_line_id=None,
                    item_code=d.service_code,
                    reference_id=d.delivery_id,
                    quantity=1,
                    amount=charge("unit", d.service_code, currency, 1, d.created_at.date()),
                    currency=currency,
                )
            if d.premium_charged:
                add(
                    d.customer_id,
                    month,
                    line_type="premium",
                    contract_id=d.winner[0].contract.contract_id,
                    contract_line_id=d.winner[0].contract_line_id,
                    item_code=d.service_code,
                    reference_id=d.delivery_id,
                    quantity=1,
                    amount=money(price("premium_surcharge", d.service_code, currency)),
                    currency=currency,
                )
        for p in periods:
            if p.billed:
                add(
                    p.customer_id,
                    p.month,
                    line_type="overage",
                    contract_id=None,
                    contract_line_id=None,
                    item_code=p.meter_code,
                    reference_id=p.evidence_id,
                    quantity=p.billed,
                    amount=self.overage_charge(p, p.billed),
                    currency=p.currency,
                )

        invoices, lines = [], []
        for (customer_id, month), items in sorted(lines_by_key.items()):
            invoice_id = self.next_id("INV", 7)
            currency = self.customer(customer_id).currency
            invoices.append(
                {
                    "invoice_id": invoice_id,
                    "customer_id": customer_id,
                    "invoice_date": add_months(month, 1),
                    "currency": currency,
                    "status": rng.choice(("paid", "paid", "open")),
                }
            )
            for item in items:
                lines.append({"invoice_line_id": self.next_id("IL", 8), "invoice_id": invoice_id} | item)
        self._plant_under_billing(lines)
        self._plant_credits_and_discounts(invoices, lines)
        return invoices, lines

    def _plant_under_billing(self, lines: list[dict]) -> None:
        subscription = [line for line in lines if line["line_type"] == "subscription"]
        picks = self.rng.sample(subscription, min(len(subscription), PLANTED_PER_CATEGORY + 3))
        self.adjusted_lines.update(line["invoice_line_id"] for line in picks)
        for i, line in enumerate(picks):
            if i < 3:  # a rounding difference within tolerance: not a leak
                line["amount"] = line["amount"] - Decimal("0.50")
            elif self.plant:
                shortfall = money(line["amount"] * Decimal(self.rng.choice(("0.1", "0.15", "0.25"))))
                line["amount"] -= shortfall
                self.leaks.append(
                    Leak(
                        "under_billed",
                        line["invoice_line_id"],
                        self._customer_of_invoice_line(line),
                        shortfall,
                        line["currency"],
                        line["period_start"],
                        f"invoiced {shortfall} below the contract price",
                    )
                )

    def _plant_credits_and_discounts(self, invoices: list[dict], lines: list[dict]) -> None:
        """Net billing (docs/pricing.md): one invoice carries a discount and a proration credit with
        its matching charge (net: the contract price, not a leak); a credit note takes 20 % of one
        month back (under-billed by that much); a void credit note takes nothing."""
        subscription = [
            line
            for line in lines
            if line["line_type"] == "subscription" and line["invoice_line_id"] not in self.adjusted_lines
        ]
        if len(subscription) < 3:
            return
        discounted, credited, voided = self.rng.sample(subscription, 3)
        self.adjusted_lines.update(line["invoice_line_id"] for line in (discounted, credited, voided))
        discount = money(discounted["amount"] * Decimal("0.1"))
        discounted["amount"] += discount
        discounted["discount_amount"] = discount
        self.decoys.append(
            Decoy("discount_nets_to_contract_price", discounted["invoice_line_id"], f"{discount} discount")
        )
        # A mid-month change: unused time credited, the rest of the month charged again.
        change_day = discounted["period_start"] + timedelta(days=14)
        half = money(discounted["amount"] / 2)
        position = lines.index(discounted) + 1
        for sign in (-1, 1):
            line_id = self.next_id("IL", 8)
            lines.insert(
                position,
                discounted
                | {
                    "invoice_line_id": line_id,
                    "period_start": change_day,
                    "amount": sign * half,
                    "discount_amount": None,
                    "is_proration": True,
                },
            )
            position += 1
            if sign < 0:
                self.decoys.append(Decoy("proration_credit_and_charge", line_id, f"{-half} unused time"))
        for line, status in ((credited, "issued"), (voided, "void")):
            if status == "issued" and not self.plant:
                continue  # an issued credit note under-bills its month: a leak, so only when planting
            amount = money(line["amount"] * Decimal("0.2"))
            invoice = next(i for i in invoices if i["invoice_id"] == line["invoice_id"])
            self.credit_notes.append(
                {
                    "credit_note_line_id": self.next_id("CNL", 6),
                    "credit_note_id": self.next_id("CN", 6),
                    "invoice_id": line["invoice_id"],
                    "invoice_line_id": line["invoice_line_id"],
                    "credited_on": min(invoice["invoice_date"] + timedelta(days=10), self.as_of),
                    "status": status,
                    "reason": "order_change",
                    "amount": amount,
                    "currency": line["currency"],
                }
            )
            if status == "void":
                self.decoys.append(Decoy("void_credit_note", line["invoice_line_id"], f"{amount} voided"))
            else:
                self.leaks.append(
                    Leak(
                        "under_billed",
                        line["invoice_line_id"],
                        self._customer_of_invoice_line(line),
                        amount,
                        line["currency"],
                        line["period_start"],
                        f"credit note took {amount} back",
                        "credit_note_reduces_billing",
                    )
                )

    def _customer_of_invoice_line(self, line: dict) -> str:
        return next(
            lv.contract.customer_id for lv in self.lines if lv.contract_line_id == line["contract_line_id"]
        )


def _cover_every_package_and_meter(picks: list[UsagePeriod], periods: list[UsagePeriod], first: int) -> None:
    """Make picks[first:] (the planted overage leaks) hold a period of every package and meter there
    is, so a leak is priced by each package's charge model: a missing one replaces a pick whose
    package and meter another pick also has."""

    def kind(p: UsagePeriod) -> tuple[str, str]:
        return (p.package_code or "", p.meter_code)

    for wanted in sorted({kind(p) for p in periods} - {kind(p) for p in picks[first:]}):
        spare = next((p for p in periods if kind(p) == wanted and p not in picks), None)
        counts = defaultdict(int)
        for p in picks[first:]:
            counts[kind(p)] += 1
        slot = next((i for i in range(first, len(picks)) if counts[kind(picks[i])] > 1), None)
        if spare is not None and slot is not None:
            picks[slot] = spare


def _write_csv(path: Path, columns: Iterable[str], rows: Iterable[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})


def _contract_status(contract: Contract, as_of: date) -> str:
    return "expired" if contract.end <= as_of else "active"


def _prepare_out_dir(out_dir: Path) -> None:
    """Start from an empty directory, or replace an earlier demo export (never other files)."""
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return
    if not (out_dir / "export.json").exists():
        raise FileExistsError(f"{out_dir} is not empty and holds no demo export: choose another --out")
    for part in ("crm", "billing", "usage", "ground_truth", LEGACY_DIR):
        shutil.rmtree(out_dir / part, ignore_errors=True)


def generate_demo(
    out_dir: Path,
    *,
    seed: int = 42,
    customers: int = 60,
    usage_events: int = 100_000,
    as_of: date = DEFAULT_AS_OF,
    plant_leaks: bool = True,
    shape: str = "canonical",
) -> DemoSummary:
    """Write a demo export directory: crm/, billing/, usage/, legacy/, ground_truth/ and export.json.

    plant_leaks=False is the clean mode: no leaks and no migration faults. shape "vendor" writes the
    CRM, billing and usage files as Salesforce, Stripe and CloudEvents exports, with the mapping.csv
    and entitlements.yml that read them (entitlements/demo/vendor.py); the ground truth is the same.
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown demo shape {shape!r} (known: {', '.join(SHAPES)})")
    out_dir = Path(out_dir)
    _prepare_out_dir(out_dir)
    if as_of < add_months(HISTORY_START, 18):
        raise ValueError(
            f"as_of {as_of} is too early: the demo history starts {HISTORY_START}; "
            f"use a date from {add_months(HISTORY_START, 18)} on"
        )
    biz = _Business(seed, customers, as_of, plant_leaks)
    biz.build_contracts()
    biz.build_overrides()
    biz.build_deliveries()
    periods = biz.usage_periods()
    invoices, invoice_lines = biz.invoice_lines(periods)

    crm, billing = out_dir / "crm", out_dir / "billing"
    _write_csv(
        crm / "accounts.csv",
        ("customer_id", "customer_name", "country", "currency", "segment", "created_date"),
        (
            {
                "customer_id": c.customer_id,
                "customer_name": f"Customer {c.customer_id[1:]} Ltd",
                "country": c.country,
                "currency": c.currency,
                "segment": segment_of(c.customer_id),
                "created_date": HISTORY_START - timedelta(days=30),
            }
            for c in biz.customers
        ),
    )
    _write_csv(
        crm / "locations.csv",
        ("location_id", "customer_id", "location_name", "country"),
        (
            {
                "location_id": loc,
                "customer_id": c.customer_id,
                "location_name": f"Site {loc[4:]}",
                "country": c.country,
            }
            for c in biz.customers
            for loc in c.locations
        ),
    )
    _write_csv(
        crm / "assets.csv",
        ("asset_id", "customer_id", "location_id", "product_code", "serial_number", "installed_date"),
        (
            {
                "asset_id": a,
                "customer_id": c.customer_id,
                "location_id": loc,
                "product_code": ("PRESS-200", "LATHE-X", "ROBOT-7")[int(a[3:]) % 3],
                "serial_number": serial_number(a),
                "installed_date": biz.asset_installed[a],
            }
            for c in biz.customers
            for a, loc in c.assets
        ),
    )
    _write_csv(
        crm / "catalog.csv",
        catalog.CATALOG_COLUMNS,
        (dict(zip(catalog.CATALOG_COLUMNS, row, strict=True)) for row in catalog.CATALOG),
    )
    _write_csv(
        crm / "service_contracts.csv",
        (
            "contract_id",
            "customer_id",
            "contract_type",
            "status",
            "start_date",
            "end_date",
            "currency",
            "auto_renew",
            "renewal_of_contract_id",
        ),
        (
            {
                "contract_id": c.contract_id,
                "customer_id": c.customer_id,
                "contract_type": c.contract_type,
                "status": _contract_status(c, as_of),
                "start_date": c.start,
                "end_date": c.end,
                "currency": c.currency,
                "auto_renew": str(c.auto_renew).lower(),
                "renewal_of_contract_id": c.renewal_of,
            }
            for c in biz.contracts
        ),
    )
    _write_csv(
        crm / "contract_lines.csv",
        (
            "contract_line_id",
            "version_no",
            "contract_id",
            "package_code",
            "asset_id",
            "location_id",
            "quantity",
            "annual_price",
            "valid_from",
            "valid_to",
            "change_reason",
        ),
        (
            {
                "contract_line_id": lv.contract_line_id,
                "version_no": lv.version_no,
                "contract_id": lv.contract.contract_id,
                "package_code": lv.package_code,
                "asset_id": lv.asset_id,
                "location_id": lv.location_id,
                "quantity": 1,
                "annual_price": lv.annual_price,
                "valid_from": lv.valid_from,
                "valid_to": lv.valid_to,
                "change_reason": lv.change_reason,
            }
            for lv in biz.lines
        ),
    )
    cases = [d for d in biz.deliveries if d.service_code != "ONSITE_VISIT"]
    visits = [d for d in biz.deliveries if d.service_code == "ONSITE_VISIT"]

    def delivery_row(d: Delivery, end_key: str, done: str, open_: str) -> dict:
        ended = d.created_at + timedelta(hours=d.response_hours + 2)
        finished = ended <= datetime.combine(as_of, datetime.max.time())
        return {
            "case_id": d.delivery_id,
            "work_order_id": d.delivery_id,
            "customer_id": d.customer_id,
            "asset_id": d.asset_id,
            "location_id": d.location_id,
            "service_code": d.service_code,
            "created_at": d.created_at,
            end_key: ended if finished else None,
            "priority": "High" if d.response_hours <= 4 else "Medium",
            "status": done if finished else open_,
            "response_hours": d.response_hours,
            "after_hours": str(d.after_hours).lower(),
            "billing_type": d.billing_type,
        }

    _write_csv(
        crm / "cases.csv",
        (
            "case_id",
            "customer_id",
            "asset_id",
            "location_id",
            "service_code",
            "created_at",
            "closed_at",
            "priority",
            "status",
            "response_hours",
            "after_hours",
            "billing_type",
        ),
        (delivery_row(d, "closed_at", "closed", "working") for d in cases),
    )
    _write_csv(
        crm / "work_orders.csv",
        (
            "work_order_id",
            "customer_id",
            "asset_id",
            "location_id",
            "service_code",
            "created_at",
            "completed_at",
            "status",
            "response_hours",
            "after_hours",
            "billing_type",
        ),
        (delivery_row(d, "completed_at", "completed", "in_progress") for d in visits),
    )
    _write_csv(
        crm / "overrides.csv",
        (
            "override_id",
            "customer_id",
            "contract_id",
            "entitlement_code",
            "extra_quantity",
            "valid_from",
            "valid_to",
            "reason",
            "approved_by",
            "approved_at",
        ),
        (
            {
                "override_id": o.override_id,
                "customer_id": o.customer_id,
                "contract_id": o.contract_id,
                "entitlement_code": o.entitlement_code,
                "extra_quantity": o.extra_quantity,
                "valid_from": o.valid_from,
                "valid_to": o.valid_to,
                "reason": o.reason,
                "approved_by": o.approved_by,
                "approved_at": datetime.combine(o.valid_from, datetime.min.time()) if o.approved_by else None,
            }
            for o in biz.overrides
        ),
    )
    _write_csv(billing / "price_book.csv", catalog.PRICE_BOOK_COLUMNS, catalog.price_book_rows())
    _write_csv(
        billing / "invoices.csv",
        ("invoice_id", "customer_id", "invoice_date", "currency", "status"),
        invoices,
    )
    _write_csv(
        billing / "invoice_lines.csv",
        (
            "invoice_line_id",
            "invoice_id",
            "line_type",
            "contract_id",
            "contract_line_id",
            "item_code",
            "reference_id",
            "period_start",
            "period_end",
            "quantity",
            "amount",
            "currency",
            "discount_amount",
            "is_proration",
        ),
        invoice_lines,
    )
    _write_csv(
        billing / "credit_note_lines.csv",
        (
            "credit_note_line_id",
            "credit_note_id",
            "invoice_id",
            "invoice_line_id",
            "credited_on",
            "status",
            "reason",
            "amount",
            "currency",
        ),
        biz.credit_notes,
    )
    events = write_usage(out_dir / "usage", periods, usage_events, as_of, seed)

    leaks = sorted(biz.leaks, key=lambda leak: (leak.category, leak.evidence_id))
    _write_csv(
        out_dir / "ground_truth" / "leakage.csv",
        ("category", "evidence_id", "customer_id", "amount", "currency", "occurred_on", "note", "scenario"),
        (leak.__dict__ for leak in leaks),
    )
    # A decoy that a later plant turned into a leak (a start-day incident given a premium) is not one.
    leak_ids = {leak.evidence_id for leak in leaks}
    _write_csv(
        out_dir / "ground_truth" / "decoys.csv",
        ("scenario", "evidence_id", "note"),
        (
            d.__dict__
            for d in sorted(biz.decoys, key=lambda d: (d.scenario, d.evidence_id))
            if d.evidence_id not in leak_ids
        ),
    )
    # The same contracts as the legacy system they are migrated from exports them (issue: migration).
    faults = write_legacy(out_dir / LEGACY_DIR, biz, as_of, seed, plant_faults=plant_leaks)
    write_fault_truth(out_dir / "ground_truth" / "migration_faults.csv", faults)
    if shape == "vendor":
        write_vendor_shapes(out_dir)
    (out_dir / "export.json").write_text(
        json.dumps(
            {
                "generator": "entitlements.demo",
                "seed": seed,
                "as_of": as_of.isoformat(),
                "customers": customers,
                "usage_events": events,
                "leaks_planted": plant_leaks,
                "shape": shape,
            },
            indent=2,
        )
        + "\n"
    )
    files = sum(1 for p in out_dir.rglob("*") if p.is_file())
    return DemoSummary(out_dir, seed, as_of, customers, events, len(leaks), files, len(faults))
