"""The same export in each source shape gives the same marts as the canonical one.

tests/fixtures/exports/README.md tells the fixture's story and the amounts computed by hand.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import CANONICAL_AS_OF, FIXTURES, entitlements, query_rows

# One worker for the whole module: its module fixtures are full runs, built once.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("canonical_run")]

VENDOR_FOLDERS = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir() and p.name != "canonical")
AS_OF = CANONICAL_AS_OF  # the canonical run's, which every vendor shape must equal
MARTS = (
    "fct_active_entitlements",
    "fct_revenue_leakage",
    "fct_limit_breaches",
    "fct_renewal_pipeline",
    "fct_leakage_kpis",
)
# Columns that say when or by which load, not what: they differ between two builds by design.
LINEAGE = ("load_id", "loaded_at", "built_at", "_load_id", "_loaded_at")


ACME_API = "001000000000001AAA:API_CALLS"  # usage periods: <customer>:<meter>:<month>:<line>/v<version>


def built(folder: str, root: Path) -> Path:
    warehouse = root / folder / "warehouse.duckdb"
    ingest = entitlements("ingest", FIXTURES / folder, "--warehouse", warehouse)
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    build = entitlements("build", "--warehouse", warehouse, "--as-of", AS_OF)
    assert build.returncode == 0, build.stdout + build.stderr
    return warehouse


@pytest.fixture(scope="session")
def canonical(canonical_run: tuple[Path, Path]) -> Path:
    """The canonical export's warehouse (tests/conftest.py), which every vendor shape must equal."""
    return canonical_run[1]


def mart(warehouse: Path, name: str) -> list[tuple]:
    rows = query_rows(warehouse, f"SELECT * FROM marts.{name}")
    return sorted((tuple((k, v) for k, v in row.items() if k not in LINEAGE) for row in rows), key=repr)


def test_canonical_fixture_gives_the_hand_computed_leaks(canonical: Path) -> None:
    leaks = query_rows(
        canonical, "SELECT category, evidence_id, amount, currency FROM marts.fct_revenue_leakage ORDER BY 2"
    )
    assert [tuple(r.values()) for r in leaks] == [
        ("unbilled_overage", f"{ACME_API}:2026-06:811000000000002AAA/v1", Decimal("6.00"), "USD"),
        ("unbilled_overage", f"{ACME_API}:2026-08:811000000000002AAA/v2", Decimal("80.00"), "USD"),
        ("uncovered_service", "500000000000005AAA", Decimal("315.00"), "EUR"),
        ("unbilled_service", "500000000000006AAA", Decimal("64.00"), "GBP"),
    ]
    august = query_rows(
        canonical,
        "SELECT used_quantity, overage_quantity FROM marts.fct_limit_breaches"
        " WHERE entitlement_code = 'API_CALLS' AND period_start = DATE '2026-08-01'",
    )
    # 60,000 + 50,000 (delivered twice) + 30,000 (late, in September's file)
    assert august == [{"used_quantity": Decimal("140000"), "overage_quantity": Decimal("40000")}]


@pytest.mark.parametrize("folder", VENDOR_FOLDERS)
def test_vendor_shapes_give_the_same_marts_as_the_canonical_export(
    folder: str, canonical: Path, tmp_path: Path
) -> None:
    vendor = built(folder, tmp_path)
    # `build` validates what `ingest` landed before dbt reads it: no load is left unvalidated.
    statuses = query_rows(vendor, "SELECT DISTINCT status FROM audit.ingest_manifest")
    assert statuses == [{"status": "validated"}]
    shapes = query_rows(vendor, "SELECT DISTINCT shape FROM audit.ingest_manifest WHERE status = 'validated'")
    families = {r["shape"].split(".")[0] for r in shapes}
    assert families - {"canonical"}, f"{folder}: no vendor shape was used ({families})"
    rejected = query_rows(vendor, "SELECT source_file, line, reason FROM audit.rejected_rows")
    assert rejected == []
    for name in MARTS:
        assert mart(vendor, name) == mart(canonical, name), f"{folder}: {name} differs"


def test_json_keys_a_shape_does_not_read_are_kept_as_json(tmp_path: Path) -> None:
    from entitlements.ingest.land import ingest_exports

    warehouse = tmp_path / "warehouse.duckdb"
    ingest_exports(warehouse, FIXTURES / "stripe", progress=False)
    extras = query_rows(
        warehouse,
        "SELECT customer_ref, _extra->>'object' AS object, json_type(_extra->'metadata') AS metadata"
        " FROM raw.billing_customers ORDER BY 1",
    )
    assert extras == [
        {"customer_ref": ref, "object": "customer", "metadata": "OBJECT"}
        for ref in ("cus_AcmeTools001", "cus_Bergwerk002", "cus_Carrow003")
    ]
