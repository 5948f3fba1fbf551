"""Property: for random contracts, amendments and overrides, the as-of answer for any
date equals a full rebuild at that date, and both equal what the generated data says.

The oracle is computed here from the generated rows alone (catalog terms, line
versions in force, approved overrides in force), independent of the dbt models.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from entitlements.demo import catalog
from entitlements.ingest.land import ingest_exports
from entitlements.serve.asof import active_entitlements
from entitlements.serve.queries import store_compiled_queries
from entitlements.transform.dbt_runner import run_dbt, run_dbt_commands, target_dir

pytestmark = pytest.mark.e2e

PACKAGES = {
    "support": catalog.SUPPORT_PACKAGES,
    "api": catalog.API_PACKAGES,
    "warranty": ("STANDARD_WARRANTY",),
}
TERMS = catalog.resolved_terms()
FIRST_DAY = date(2024, 1, 1)


@dataclass(frozen=True)
class Version:
    line_id: str
    version_no: int
    contract_id: str
    customer_id: str
    package: str
    quantity: int
    valid_from: date
    valid_to: date


@dataclass(frozen=True)
class Override:
    override_id: str
    customer_id: str
    contract_id: str
    code: str
    extra: int
    valid_from: date
    valid_to: date
    approved: bool


@st.composite
def portfolios(draw: st.DrawFn) -> tuple[list[Version], list[Override], list[date]]:
    versions: list[Version] = []
    overrides: list[Override] = []
    for c in range(draw(st.integers(1, 3))):
        customer = f"C{c + 1}"
        for k in range(draw(st.integers(1, 3))):
            contract = f"{customer}-K{k + 1}"
            family = draw(st.sampled_from(sorted(PACKAGES)))
            start = FIRST_DAY + timedelta(days=draw(st.integers(0, 700)))
            cuts = sorted(set(draw(st.lists(st.integers(1, 500), max_size=2))))
            end = start + timedelta(days=draw(st.integers(30, 730)))
            bounds = [
                start,
                *(start + timedelta(days=d) for d in cuts if start + timedelta(days=d) < end),
                end,
            ]
            for n, (lo, hi) in enumerate(pairwise(bounds), start=1):
                versions.append(
                    Version(
                        f"{contract}-L1",
                        n,
                        contract,
                        customer,
                        draw(st.sampled_from(PACKAGES[family])),
                        draw(st.integers(1, 3)),
                        lo,
                        hi,
                    )
                )
            codes = sorted({code for v in versions if v.contract_id == contract for code in TERMS[v.package]})
            for o in range(draw(st.integers(0, 2))):
                lo = start + timedelta(days=draw(st.integers(0, 400)))
                overrides.append(
                    Override(
                        f"{contract}-O{o + 1}",
                        customer,
                        contract,
                        draw(st.sampled_from(codes)),
                        draw(st.integers(1, 3)),
                        lo,
                        lo + timedelta(days=draw(st.integers(1, 120))),
                        draw(st.booleans()),
                    )
                )
    edges = (
        [v.valid_from for v in versions] + [v.valid_to for v in versions] + [o.valid_to for o in overrides]
    )
    days = draw(
        st.lists(
            st.one_of(st.sampled_from(edges), st.dates(date(2023, 12, 1), date(2027, 1, 31))),
            min_size=2,
            max_size=2,
            unique=True,
        )
    )
    return versions, overrides, days


def expected_on(versions: list[Version], overrides: list[Override], day: date) -> dict[str, Decimal | None]:
    """entitlement_id -> limit in force on `day`, from the generated rows alone."""
    out: dict[str, Decimal | None] = {}
    for v in versions:
        if not v.valid_from <= day < v.valid_to:
            continue
        for code, terms in TERMS[v.package].items():
            extra = sum(
                o.extra
                for o in overrides
                if o.approved
                and o.contract_id == v.contract_id
                and o.code == code
                and o.valid_from <= day < o.valid_to
            )
            limit = None if terms.limit is None else Decimal(terms.limit * v.quantity + extra)
            out[f"{v.line_id}/v{v.version_no}/{code}"] = limit
    return out


def write_exports(root: Path, versions: list[Version], overrides: list[Override]) -> None:
    def write(name: str, rows: list[dict]) -> None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows([{k: "" if v is None else v for k, v in r.items()} for r in rows])

    customers = sorted({v.customer_id for v in versions})
    write("crm/catalog.csv", [dict(zip(catalog.CATALOG_COLUMNS, r, strict=True)) for r in catalog.CATALOG])
    write(
        "crm/accounts.csv",
        [
            {
                "customer_id": c,
                "customer_name": c,
                "country": "US",
                "currency": "USD",
                "created_date": "2023-01-01",
            }
            for c in customers
        ],
    )
    contracts: dict[str, tuple[date, date, str, str]] = {}
    for v in versions:
        lo, hi, _, _ = contracts.get(v.contract_id, (v.valid_from, v.valid_to, v.customer_id, v.package))
        contracts[v.contract_id] = (min(lo, v.valid_from), max(hi, v.valid_to), v.customer_id, v.package)
    write(
        "crm/service_contracts.csv",
        [
            {
                "contract_id": k,
                "customer_id": cust,
                "contract_type": "warranty" if pkg == "STANDARD_WARRANTY" else "subscription",
                "status": "active",
                "start_date": lo,
                "end_date": hi,
                "currency": "USD",
            }
            for k, (lo, hi, cust, pkg) in sorted(contracts.items())
        ],
    )
    write(
        "crm/contract_lines.csv",
        [
            {
                "contract_line_id": v.line_id,
                "version_no": v.version_no,
                "contract_id": v.contract_id,
                "package_code": v.package,
                "quantity": v.quantity,
                "annual_price": 1200,
                "valid_from": v.valid_from,
                "valid_to": v.valid_to,
                "change_reason": "granted" if v.version_no == 1 else "amended",
            }
            for v in versions
        ],
    )
    if overrides:
        write(
            "crm/overrides.csv",
            [
                {
                    "override_id": o.override_id,
                    "customer_id": o.customer_id,
                    "contract_id": o.contract_id,
                    "entitlement_code": o.code,
                    "extra_quantity": o.extra,
                    "valid_from": o.valid_from,
                    "valid_to": o.valid_to,
                    "approved_by": "a.khan" if o.approved else None,
                }
                for o in overrides
            ],
        )
    write("billing/price_book.csv", catalog.price_book_rows())


def mart(warehouse: Path) -> pd.DataFrame:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute("select * from marts.fct_active_entitlements order by entitlement_id").df()
    finally:
        con.close()


@settings(
    max_examples=2,
    deadline=None,
    derandomize=True,
    # Each example is a real ingest and dbt build: no shrinking, which would take minutes.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(portfolio=portfolios())
def test_as_of_answer_equals_a_rebuild_and_the_generated_data(portfolio, tmp_path_factory) -> None:
    versions, overrides, days = portfolio
    root = tmp_path_factory.mktemp("asof")
    write_exports(root / "exports", versions, overrides)
    warehouse = root / "warehouse.duckdb"
    ingest_exports(warehouse, root / "exports", progress=False)
    # One dbt process builds the mart for the first day and compiles the as-of query; each later
    # day rebuilds the mart for that day.
    first = run_dbt_commands(
        [["run", "--select", "+fct_active_entitlements"], ["compile", "--select", "path:analyses"]],
        warehouse,
        days[0],
    )
    assert first.ok, first.output[-3000:]
    store_compiled_queries(warehouse, target_dir(warehouse) / "compiled" / "entitlements" / "analyses")

    for day in days:
        answer = active_entitlements(warehouse, day)
        if day != days[0]:
            rebuilt = run_dbt("run", warehouse, day, "--select", "fct_active_entitlements")
            assert rebuilt.ok, rebuilt.output[-3000:]
        pd.testing.assert_frame_equal(answer.reset_index(drop=True), mart(warehouse), check_dtype=False)
        expected = expected_on(versions, overrides, day)
        got = {
            r.entitlement_id: (None if pd.isna(r.limit_quantity) else Decimal(str(r.limit_quantity)))
            for r in answer.itertuples()
        }
        assert set(got) == set(expected), f"entitlements in force on {day}"
        assert got == expected, f"limits in force on {day}"
