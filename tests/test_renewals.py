"""Renewal marts on the demo warehouse, checked against the exported CRM files read here with csv.

The rules restated from the docs (dbt_project/models/marts/renewals/_renewals__models.yml):
end_date exclusive, 0 days left is expired, windows 1-30 / 31-60 / 61-90 / later, a signed successor
renews, terms ended over 365 days before the as-of date drop out; alerts 90, 60, 30 days before the end.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from entitlements.runs.summary import summary_tables
from tests.conftest import Built, query_rows

pytestmark = pytest.mark.integration

RENEWABLE = {"service_contract", "subscription"}
SIGNED = {"active", "expired"}
LOOKBACK_DAYS = 365  # the default of var renewal_lookback_days
CENT = Decimal("0.01")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def exported(demo_build: Built, as_of: date) -> tuple[date, dict[str, dict], dict[str, Decimal]]:
    """The as-of date, the signed renewable contracts and each one's value at the end of its term."""
    contracts = {
        c["contract_id"]: c
        for c in read_csv(demo_build.exports / "crm" / "service_contracts.csv")
        if c["contract_type"] in RENEWABLE and c["status"] in SIGNED
    }
    closing: dict[str, Decimal] = defaultdict(Decimal)
    for line in read_csv(demo_build.exports / "crm" / "contract_lines.csv"):
        contract = contracts.get(line["contract_id"])
        if contract and line["valid_to"] == contract["end_date"]:
            closing[line["contract_id"]] += Decimal(line["annual_price"]) * Decimal(line["quantity"])
    return as_of, contracts, closing


def expected_window(days: int, renewed: bool) -> str:
    if renewed:
        return "renewed"
    if days <= 0:
        return "expired_not_renewed"
    return next(
        (name for bound, name in ((30, "0-30"), (60, "31-60"), (90, "61-90")) if days <= bound), "later"
    )


def test_pipeline_windows_values_and_risk_follow_the_documented_rules(demo_warehouse: Path, exported) -> None:
    as_of, contracts, closing = exported
    successors = {c["renewal_of_contract_id"] for c in contracts.values() if c["renewal_of_contract_id"]}
    expected = {}
    for cid, c in contracts.items():
        days = (date.fromisoformat(c["end_date"]) - as_of).days
        if days < -LOOKBACK_DAYS:
            continue
        window = expected_window(days, cid in successors)
        at_risk = window in {"0-30", "31-60", "61-90", "expired_not_renewed"} and c["auto_renew"] != "true"
        expected[cid] = (days, window, closing[cid], closing[cid] if at_risk else Decimal(0), c["currency"])

    mart = query_rows(demo_warehouse, "select * from marts.fct_renewal_pipeline")
    found = {
        r["contract_id"]: (
            r["days_to_expiry"],
            r["renewal_window"],
            r["annual_value"],
            r["value_at_risk"],
            r["currency"],
        )
        for r in mart
    }
    assert found == expected
    windows = {w for _, w, *_ in expected.values()}
    assert windows == {"0-30", "31-60", "61-90", "later", "renewed", "expired_not_renewed"}, "demo covers all"
    assert any(v[3] > 0 for v in expected.values()) and any(
        v[3] == 0 and v[1] == "0-30" for v in expected.values()
    ), "the demo should have risky and auto-renew contracts due soon"


def test_uplift_is_the_demo_renewal_price_rise(demo_build: Built, exported) -> None:
    """The demo renews at 105 % of the previous term's closing price; a term without an amendment
    therefore shows 5 % uplift (within a cent of rounding), in the previous term's currency."""
    _, contracts, _ = exported
    versions: dict[str, int] = defaultdict(int)
    for line in read_csv(demo_build.exports / "crm" / "contract_lines.csv"):
        versions[line["contract_id"]] += 1
    mart = {
        r["contract_id"]: r
        for r in query_rows(demo_build.warehouse, "select * from marts.fct_renewal_pipeline")
    }
    plain = [r for r in mart.values() if r["previous_contract_id"] and versions[r["contract_id"]] == 1]
    assert plain, "the demo should renew contracts"
    for r in plain:
        assert r["previous_contract_id"] == contracts[r["contract_id"]]["renewal_of_contract_id"]
        assert r["uplift_null_reason"] is None, r
        assert abs(r["uplift_pct"] - Decimal("5.00")) <= CENT, r
        assert r["uplift_amount"] == r["annual_value"] - r["previous_annual_value"]
    first_terms = [r for r in mart.values() if not contracts[r["contract_id"]]["renewal_of_contract_id"]]
    assert {r["uplift_null_reason"] for r in first_terms} == {"no_previous_term"}
    assert all(r["uplift_amount"] is None for r in first_terms)


def test_alerts_fall_90_60_30_days_before_the_end(demo_warehouse: Path, exported) -> None:
    as_of, _, _ = exported
    pipeline = query_rows(demo_warehouse, "select * from marts.fct_renewal_pipeline")
    expected = {}
    for p in pipeline:
        for lead in (90, 60, 30):
            alert_date = p["end_date"] - timedelta(days=lead)
            if alert_date < p["start_date"]:
                continue
            if p["renewal_window"] == "renewed":
                status = "renewed"
            elif p["renewal_window"] == "expired_not_renewed":
                status = "missed"
            else:
                status = "due" if alert_date <= as_of else "upcoming"
            expected[f"{p['contract_id']}:{lead}d"] = (alert_date, status, status in {"due", "missed"})
    alerts = query_rows(
        demo_warehouse, "select alert_id, alert_date, alert_status, is_due from marts.fct_renewal_alerts"
    )
    assert {a["alert_id"]: (a["alert_date"], a["alert_status"], a["is_due"]) for a in alerts} == expected
    assert {s for _, s, _ in expected.values()} == {"due", "upcoming", "renewed", "missed"}


def test_summary_never_totals_renewals_across_currencies(demo_warehouse: Path) -> None:
    header, *body = summary_tables(demo_warehouse)["Renewal pipeline by window"]
    assert header[:2] == ("renewal_window", "currency")
    keys = [(r[0], r[1]) for r in body]
    assert len(keys) == len(set(keys)) and all(currency for _, currency in keys)
    risk = dict(
        ((r["renewal_window"], r["currency"]), r["value_at_risk"])
        for r in query_rows(
            demo_warehouse,
            "select renewal_window, currency, sum(value_at_risk) as value_at_risk"
            " from marts.fct_renewal_pipeline group by all",
        )
    )
    assert {k: r[header.index("value_at_risk")] for k, r in zip(keys, body, strict=True)} == risk
