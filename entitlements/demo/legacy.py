"""The demo's legacy contract system: the CRM's contracts as the system they are migrated from exports them.

`write_legacy` writes `<out>/legacy/` from the simulated business, the very contracts the CRM
export holds, in the legacy system's own shape (docs/migration.md describes each file):

- ``CUSTMAST.csv``  customers under legacy numbers (CUST_NO);
- ``CONTRACTS.csv`` one row per contract *segment* (a line version) with the contract header
  flattened into it: dates as DD.MM.YYYY with inclusive ends, fees in minor units, old product
  codes, equipment by serial number, and the allowances the legacy system stored on each
  segment (``ALW_<entitlement code>``: a number, ``UNL`` for unlimited, blank for not included);
- ``XREF.csv``      the migration's crosswalk: legacy customer, contract and site keys -> new ids;
- ``PRODMAP.csv``   old product codes -> catalog package codes;
- ``CONTROL.csv``   the extract's control totals: records per file and the sum of FEE_MINOR;
- ``phases.yml``    the migration plan: a pilot list, a segment rule, the remainder.

Files are pipe-delimited, as the legacy system exports them. Faults are planted on the legacy
side only, so the CRM export (and with it the leakage ground truth) is the same with or without
them. Each planted fault is written to ``ground_truth/migration_faults.csv`` with the status and
field the reconciliation must report, known from the planting itself.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from entitlements.demo.catalog import resolved_terms
from entitlements.demo.records import Business, Contract, LineVersion, serial_number

LEGACY_DIR = "legacy"
DELIMITER = "|"
DATE_FORMAT = "%d.%m.%Y"
PRODUCT_CODES = {
    "GOLD_SUPPORT": "GS-01",
    "SILVER_SUPPORT": "SS-01",
    "STANDARD_WARRANTY": "WTY-STD",
    "API_PRO": "API-P",
    "API_STARTER": "API-S",
}
# Codes the product map holds: the live ones, and a retired one nothing uses any more.
PRODUCT_MAP = {**{code: package for package, code in PRODUCT_CODES.items()}, "GS-00": "GOLD_SUPPORT"}
UNMAPPED_PRODUCT = "GS-01Q"  # a gold variant the product map forgot (fault: mapping_gap)
CONTRACT_TYPES = {"service_contract": "SVC", "subscription": "SUB", "warranty": "WTY"}
ALLOWANCE_CODES = ("INCIDENT", "PHONE_SUPPORT", "ONSITE_VISIT", "API_CALLS", "DATA_GB")
UNLIMITED = "UNL"
CONTRACT_COLUMNS = (
    "CONTR_NO",
    "SEG_NO",
    "CUST_NO",
    "CONTR_TYPE",
    "STATUS",
    "START_DT",
    "END_DT",
    "SEG_FROM",
    "SEG_TO",
    "PROD_CD",
    "EQUIP_SERIAL",
    "SITE_NO",
    "QTY",
    "FEE_MINOR",
    "CURR_CD",
    "AUTO_RNW",
    "PREV_CONTR_NO",
    *(f"ALW_{code}" for code in ALLOWANCE_CODES),
)
FAULT_COLUMNS = ("legacy_contract_id", "new_contract_id", "status", "field", "fault", "note")
FAULTS_PER_KIND = 2
EXTRACT_TIME = "23:59"
PILOT_ACCOUNTS = 4


@dataclass(frozen=True)
class MigrationFault:
    """A planted difference between the legacy export and the new model (one ground-truth row)."""

    legacy_contract_id: str
    new_contract_id: str
    status: str  # what fct_migration_reconciliation must say: changed, duplicate, missing_in_new, ...
    field: str  # the differing field, for changed; empty otherwise
    fault: str  # the kind planted: duplicate_rows, orphan, value_drift, ...
    note: str


def legacy_date(day: date) -> str:
    return day.strftime(DATE_FORMAT)


def _months(day: date, months: int) -> date:
    year, month = divmod(day.month - 1 + months, 12)
    return day.replace(year=day.year + year, month=month + 1)


class _LegacyExport:
    def __init__(self, biz: Business, as_of: date, seed: int) -> None:
        # Its own random stream: the legacy export never changes what the CRM export holds.
        self.rng = random.Random(f"legacy-{seed}")
        self.biz = biz
        self.as_of = as_of
        self.terms = resolved_terms()
        self.faults: list[MigrationFault] = []
        # Legacy keys follow an order of their own, so no new id can be derived from one.
        self.customer_no = self._numbered(sorted(c.customer_id for c in biz.customers), 300001, "{}")
        self.site_no = self._numbered(sorted(loc for c in biz.customers for loc in c.locations), 1001, "ST{}")
        contracts = sorted(biz.contracts, key=lambda c: c.contract_id)
        self.contracts = contracts
        self.number = self._numbered([c.contract_id for c in contracts], 1000001, "V{}")
        self._next_number = 1000001 + len(contracts)
        self.versions: dict[str, list[LineVersion]] = {}
        for lv in biz.lines:
            self.versions.setdefault(lv.contract.contract_id, []).append(lv)
        for versions in self.versions.values():
            versions.sort(key=lambda lv: (lv.valid_from, lv.contract_line_id, lv.version_no))
        self.rows: dict[str, list[dict[str, str]]] = {
            c.contract_id: self._rows(c, self.number[c.contract_id], self.customer_no[c.customer_id])
            for c in contracts
        }
        self.extra_rows: list[dict[str, str]] = []  # legacy-only contracts and duplicates, in order
        self.contract_xref = {self.number[c.contract_id]: c.contract_id for c in contracts}
        self.removed: set[str] = set()

    def _numbered(self, keys: list[str], first: int, template: str) -> dict[str, str]:
        shuffled = self.rng.sample(keys, len(keys))
        return {key: template.format(first + i) for i, key in enumerate(shuffled)}

    # ---- rows ----------------------------------------------------------------
    def new_number(self) -> str:
        number = f"V{self._next_number}"
        self._next_number += 1
        return number

    def _rows(
        self, contract: Contract, number: str, customer_no: str, shift_months: int = 0
    ) -> list[dict[str, str]]:
        """The contract's segments as legacy rows; shift_months moves every date (a copy of older times)."""

        def day(value: date) -> date:
            return _months(value, shift_months) if shift_months else value

        end = day(contract.end)
        rows = []
        for seg_no, lv in enumerate(self.versions[contract.contract_id], start=1):
            terms = self.terms[lv.package_code]
            row = {
                "CONTR_NO": number,
                "SEG_NO": str(seg_no),
                "CUST_NO": customer_no,
                "CONTR_TYPE": CONTRACT_TYPES[contract.contract_type],
                "STATUS": "E" if end <= self.as_of else "A",
                "START_DT": legacy_date(day(contract.start)),
                "END_DT": legacy_date(end - timedelta(days=1)),  # the legacy system keeps the last day
                "SEG_FROM": legacy_date(day(lv.valid_from)),
                "SEG_TO": legacy_date(day(lv.valid_to) - timedelta(days=1)),
                "PROD_CD": PRODUCT_CODES[lv.package_code],
                "EQUIP_SERIAL": _serial(lv.asset_id),
                "SITE_NO": self.site_no[lv.location_id] if lv.location_id else "",
                "QTY": "1",
                "FEE_MINOR": str(int(lv.annual_price * 100)),
                "CURR_CD": contract.currency,
                "AUTO_RNW": "Y" if contract.auto_renew else "N",
                "PREV_CONTR_NO": self.number.get(contract.renewal_of, "") if contract.renewal_of else "",
            }
            for code in ALLOWANCE_CODES:
                term = terms.get(code)
                row[f"ALW_{code}"] = (
                    "" if term is None else (UNLIMITED if term.limit is None else str(term.limit))
                )
            rows.append(row)
        return rows

    # ---- faults --------------------------------------------------------------
    def plant(self) -> None:
        """Plant FAULTS_PER_KIND of each kind of fault, each on a contract of its own."""
        rng = self.rng
        used: set[str] = set()
        predecessors = {c.renewal_of for c in self.contracts if c.renewal_of}

        def pick(eligible: Callable[[Contract], bool] = lambda c: True) -> Contract:
            candidates = [c for c in self.contracts if c.contract_id not in used and eligible(c)]
            chosen = rng.choice(candidates)
            used.add(chosen.contract_id)
            return chosen

        def changed(contract: Contract, field: str, kind: str, note: str) -> None:
            number = self.number[contract.contract_id]
            self.faults.append(MigrationFault(number, contract.contract_id, "changed", field, kind, note))

        def legacy_only(template: Contract, customer_no: str) -> str:
            """A copy of an older contract that only the legacy system holds (it ended two years ago)."""
            number = self.new_number()
            self.extra_rows += self._rows(template, number, customer_no, shift_months=-24)
            return number

        for i in range(FAULTS_PER_KIND):
            c = pick()
            self.extra_rows += [dict(row) for row in self.rows[c.contract_id]]
            number = self.number[c.contract_id]
            note = "the legacy export holds its rows twice"
            self.faults.append(MigrationFault(number, c.contract_id, "duplicate", "", "duplicate_rows", note))

            c = pick()
            copy = self.new_number()
            self.extra_rows += [row | {"CONTR_NO": copy} for row in self.rows[c.contract_id]]
            self.contract_xref[copy] = c.contract_id
            note = f"entered twice in the legacy system, as {self.number[c.contract_id]} and {copy}"
            self.faults.append(
                MigrationFault(copy, c.contract_id, "duplicate", "", "duplicate_contract", note)
            )

            number = legacy_only(rng.choice(self.contracts), str(399001 + i))
            note = "its customer is in neither CUSTMAST nor XREF"
            self.faults.append(MigrationFault(number, "", "missing_in_new", "", "orphan", note))

            template = rng.choice(self.contracts)
            number = legacy_only(template, self.customer_no[template.customer_id])
            if i % 2:
                self.contract_xref[number] = f"SC-9{i:05d}"
                note = f"the crosswalk names {self.contract_xref[number]}, which the new model lacks"
            else:
                note = "dropped by the migration: no crosswalk entry"
            self.faults.append(MigrationFault(number, "", "missing_in_new", "", "dropped", note))

            c = pick(lambda c: c.contract_id not in predecessors)  # no renewal names it
            self.removed.add(c.contract_id)
            del self.contract_xref[self.number[c.contract_id]]
            note = "in the new model only"
            self.faults.append(MigrationFault("", c.contract_id, "unexpected_in_new", "", "unexpected", note))

            c = pick(lambda c: len(self.versions[c.contract_id]) > 1)
            first = self.rows[c.contract_id][0]
            first["SEG_TO"] = first["END_DT"]
            changed(
                c, "valid_to", "overlapping_terms", "segment 1 runs on to the contract end, over segment 2"
            )

            c = pick(lambda c: any(lv.package_code == "GOLD_SUPPORT" for lv in self.versions[c.contract_id]))
            for row in self.rows[c.contract_id]:
                if row["PROD_CD"] == PRODUCT_CODES["GOLD_SUPPORT"]:
                    row["PROD_CD"] = UNMAPPED_PRODUCT
            changed(c, "package_code", "mapping_gap", f"{UNMAPPED_PRODUCT} is not in PRODMAP")

            c = pick(lambda c: all(lv.annual_price > 0 for lv in self.versions[c.contract_id]))
            row = rng.choice(self.rows[c.contract_id])
            factor = Decimal(rng.choice(("1.03", "0.95", "1.10")))
            row["FEE_MINOR"] = str(int((Decimal(row["FEE_MINOR"]) * factor).to_integral_value()))
            changed(c, "annual_price", "value_drift", f"segment {row['SEG_NO']} fee x {factor}")

        for field, column, note, value in (
            ("currency", "CURR_CD", "CURR_CD blank", lambda c: ""),
            ("end_date", "END_DT", "END_DT blank", lambda c: ""),
            ("start_date", "START_DT", "START_DT a month early", lambda c: legacy_date(_months(c.start, -1))),
            ("end_date", "END_DT", "END_DT a day early", lambda c: legacy_date(c.end - timedelta(days=2))),
        ):
            c = pick()
            for row in self.rows[c.contract_id]:
                row[column] = value(c)
            changed(c, field, "missing_field" if "blank" in note else "date_shift", note)

    # ---- files ----------------------------------------------------------------
    def contract_rows(self) -> list[dict[str, str]]:
        rows = [
            row
            for c in self.contracts
            if c.contract_id not in self.removed
            for row in self.rows[c.contract_id]
        ]
        return rows + self.extra_rows

    def write(self, out_dir: Path) -> None:
        biz = self.biz
        out_dir.mkdir(parents=True, exist_ok=True)
        customers = [
            {
                "CUST_NO": self.customer_no[c.customer_id],
                "CUST_NAME": f"CUSTOMER {c.customer_id[1:]} LTD",
                "CNTRY": c.country,
                "CURR_CD": c.currency,
            }
            for c in sorted(biz.customers, key=lambda c: self.customer_no[c.customer_id])
        ]
        contracts = self.contract_rows()
        xref = (
            [
                {"OBJ_TYPE": "CUST", "LEGACY_KEY": no, "NEW_KEY": cid}
                for cid, no in sorted(self.customer_no.items())
            ]
            + [
                {"OBJ_TYPE": "CONTR", "LEGACY_KEY": no, "NEW_KEY": cid}
                for no, cid in sorted(self.contract_xref.items())
            ]
            + [
                {"OBJ_TYPE": "SITE", "LEGACY_KEY": no, "NEW_KEY": loc}
                for loc, no in sorted(self.site_no.items())
            ]
        )
        product_map = [
            {"OLD_PROD_CD": code, "NEW_PACKAGE_CD": package, "DESCR": package.replace("_", " ").title()}
            for code, package in sorted(PRODUCT_MAP.items())
        ]
        files = {
            "CUSTMAST.csv": (("CUST_NO", "CUST_NAME", "CNTRY", "CURR_CD"), customers),
            "CONTRACTS.csv": (CONTRACT_COLUMNS, contracts),
            "XREF.csv": (("OBJ_TYPE", "LEGACY_KEY", "NEW_KEY"), xref),
            "PRODMAP.csv": (("OLD_PROD_CD", "NEW_PACKAGE_CD", "DESCR"), product_map),
        }
        for name, (columns, rows) in files.items():
            _write(out_dir / name, columns, rows)
        fee_total = sum(int(row["FEE_MINOR"]) for row in contracts)
        control = [
            {
                "FILE_NAME": name,
                "RECORD_COUNT": str(len(rows)),
                "HASH_TOTAL": str(fee_total) if name == "CONTRACTS.csv" else "",
                "EXTRACT_TS": f"{legacy_date(self.as_of)} {EXTRACT_TIME}",
            }
            for name, (_columns, rows) in files.items()
        ]
        _write(out_dir / "CONTROL.csv", ("FILE_NAME", "RECORD_COUNT", "HASH_TOTAL", "EXTRACT_TS"), control)
        (out_dir / "phases.yml").write_text(self._phases())

    def _phases(self) -> str:
        customers = sorted(c.customer_id for c in self.biz.customers)
        pilot = sorted(self.rng.sample(customers, min(PILOT_ACCOUNTS, len(customers))))
        return (
            "# The migration plan: each phase a subset of accounts (new-model customer ids), by a list\n"
            "# or a rule; an account belongs to the first phase that takes it (docs/migration.md).\n"
            "phases:\n"
            "  - name: pilot\n"
            "    description: Pilot accounts, migrated first\n"
            f"    accounts: [{', '.join(pilot)}]\n"
            "  - name: smb\n"
            "    description: Small-business accounts\n"
            "    where: {segment: [smb]}\n"
            "  - name: rest\n"
            "    description: Every other account, and legacy contracts of no known account\n"
            "    remainder: true\n"
        )


def _serial(asset_id: str | None) -> str:
    return serial_number(asset_id) if asset_id else ""


def _write(path: Path, columns: Iterable[str], rows: Iterable[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), delimiter=DELIMITER, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)


def write_legacy(
    out_dir: Path, biz: Business, as_of: date, seed: int, *, plant_faults: bool
) -> list[MigrationFault]:
    """Write the legacy export under out_dir (faults planted unless clean); return the faults planted."""
    export = _LegacyExport(biz, as_of, seed)
    if plant_faults:
        export.plant()
    export.write(out_dir)
    return sorted(export.faults, key=lambda f: (f.fault, f.legacy_contract_id, f.new_contract_id))


def write_fault_truth(path: Path, faults: Iterable[MigrationFault]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(FAULT_COLUMNS))
        writer.writeheader()
        writer.writerows(f.__dict__ for f in faults)
