"""The demo generator is deterministic and plants what it says it plants."""

from __future__ import annotations

import csv
import hashlib
from datetime import date
from pathlib import Path

import pytest

from entitlements.demo import generate_demo
from entitlements.reports.leakage import LEAKAGE_CATEGORIES as CATEGORIES

pytestmark = pytest.mark.unit


def digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    a = generate_demo(tmp_path / "a", seed=3, customers=20, usage_events=5000)
    b = generate_demo(tmp_path / "b", seed=3, customers=20, usage_events=5000)
    c = generate_demo(tmp_path / "c", seed=4, customers=20, usage_events=5000)
    assert digest(a.out_dir) == digest(b.out_dir)
    assert digest(a.out_dir) != digest(c.out_dir)


def test_exports_are_written_as_source_systems_write_them(tmp_path: Path) -> None:
    summary = generate_demo(tmp_path, seed=1, customers=20, usage_events=5000)
    assert (tmp_path / "crm" / "service_contracts.csv").exists()
    assert (tmp_path / "billing" / "invoice_lines.csv").exists()
    usage = sorted((tmp_path / "usage").glob("usage_*.jsonl"))
    assert usage, "usage is written as JSON lines per month sent"
    lines = sum(sum(1 for _ in p.open()) for p in usage)
    assert lines == summary.usage_events
    assert 4000 <= lines <= 6500  # the requested scale, give or take duplicates and rounding


def test_every_category_is_planted_at_least_five_times(tmp_path: Path) -> None:
    generate_demo(tmp_path, seed=42)
    with (tmp_path / "ground_truth" / "leakage.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    counts = {c: sum(r["category"] == c for r in rows) for c in CATEGORIES}
    assert all(n >= 5 for n in counts.values()), counts
    assert set(rows[0]) >= {"category", "evidence_id", "customer_id", "amount", "currency"}


def test_clean_mode_plants_nothing(tmp_path: Path) -> None:
    summary = generate_demo(tmp_path, seed=42, customers=20, usage_events=5000, plant_leaks=False)
    assert summary.leaks == 0
    assert len((tmp_path / "ground_truth" / "leakage.csv").read_text().splitlines()) == 1


def test_regenerating_replaces_an_earlier_export_whole(tmp_path: Path) -> None:
    generate_demo(tmp_path, seed=1, customers=20, usage_events=5000, as_of=date(2026, 10, 31))
    generate_demo(tmp_path, seed=1, customers=20, usage_events=5000, as_of=date(2025, 12, 31))
    fresh = generate_demo(
        tmp_path / "fresh", seed=1, customers=20, usage_events=5000, as_of=date(2025, 12, 31)
    )
    assert digest(tmp_path / "crm") == digest(fresh.out_dir / "crm")
    assert digest(tmp_path / "usage") == digest(fresh.out_dir / "usage")  # no stale 2026 usage files


def test_refuses_to_write_into_a_directory_that_is_not_a_demo_export(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        generate_demo(tmp_path, seed=1, customers=20, usage_events=5000)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("seed", [42, 7])
def test_a_leak_is_priced_by_every_charge_model_and_billing_is_net(tmp_path: Path, seed: int) -> None:
    """Read from the files the generator wrote (not from its model): an unbilled overage in every
    package whose price has its own charge model, a per-unit leak, a price that changes on a date;
    one invoice with a discount and a proration credit; an issued and a void credit note."""
    out = generate_demo(tmp_path, seed=seed, customers=60, usage_events=5000).out_dir

    def read(name: str) -> list[dict[str, str]]:
        with (out / name).open() as handle:
            return list(csv.DictReader(handle))

    prices = read("billing/price_book.csv")
    models = {(p["package_code"], p["item_code"]): p["charge_model"] for p in prices if p["package_code"]}
    assert set(models.values()) == {"package", "volume", "graduated", "flat"}
    assert any(p["valid_from"] for p in prices)  # a price change
    packages = {line["contract_line_id"]: line["package_code"] for line in read("crm/contract_lines.csv")}
    leaks = read("ground_truth/leakage.csv")
    overage_models = set()
    for leak in (r for r in leaks if r["category"] == "unbilled_overage"):
        _, meter, _, line_version = leak["evidence_id"].split(":")
        overage_models.add(models[(packages[line_version.split("/")[0]], meter)])
    assert overage_models == {"package", "volume", "graduated", "flat"}
    assert {"unbilled_service", "post_expiry_usage"} <= {r["category"] for r in leaks}  # per unit

    lines = read("billing/invoice_lines.csv")
    discounted = [r for r in lines if r["discount_amount"]]
    credits = [r for r in lines if r["is_proration"] == "True" and r["amount"].startswith("-")]
    assert len(discounted) == 1 and len(credits) == 1
    assert discounted[0]["invoice_id"] == credits[0]["invoice_id"]
    notes = read("billing/credit_note_lines.csv")
    assert sorted(n["status"] for n in notes) == ["issued", "void"]
    issued = next(n for n in notes if n["status"] == "issued")
    assert (issued["invoice_line_id"], issued["amount"]) in {
        (r["evidence_id"], r["amount"]) for r in leaks if r["scenario"] == "credit_note_reduces_billing"
    }
