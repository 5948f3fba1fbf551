"""Limits on the demo warehouse: breaches checked against staging and the generator's ground truth.

Use is recounted here from staging (cases, work orders, raw usage events de-duplicated by id)
with SQL written for the test, not the marts' logic. Only periods whose customer has no other
contract line granting the same entitlement in that period are recounted, so the count needs
no precedence rule.
"""

from __future__ import annotations

import csv
import shutil
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from entitlements.transform.dbt_runner import target_dir
from tests.conftest import Built

pytestmark = pytest.mark.integration

# Every contract line version of a signed contract with each entitlement its package grants
# (catalog: package -> group -> entitlement), and the deliveries / de-duplicated events
# that could consume them.
STAGED = """
with

line_grants as (
    select
        lines.contract_line_id,
        lines.contract_id,
        lines.version_no,
        lines.asset_id,
        lines.location_id,
        lines.valid_from,
        lines.valid_to,
        contracts.customer_id,
        entitlements.entitlement_code
    from staging.stg_crm__contract_lines as lines
    inner join staging.stg_crm__service_contracts as contracts on lines.contract_id = contracts.contract_id
    inner join staging.stg_crm__catalog_nodes as entitlement_groups
        on entitlement_groups.parent_code = lines.package_code and entitlement_groups.node_level = 'group'
    inner join staging.stg_crm__catalog_nodes as entitlements
        on entitlements.parent_code = entitlement_groups.node_code and entitlements.node_level = 'entitlement'
    where contracts.contract_status not in ('draft', 'cancelled')
),

uses as (
    select customer_id, service_code as code, asset_id, location_id, cast(created_at as date) as day,
           1 as quantity
    from staging.stg_crm__cases where billing_type = 'covered'
    union all
    select customer_id, service_code, asset_id, location_id, cast(created_at as date), 1
    from staging.stg_crm__work_orders where billing_type = 'covered' and work_order_status <> 'cancelled'
    union all
    select customer_id, meter_code, null, null, cast(min(occurred_at) as date), min(quantity)
    from staging.stg_usage__events group by event_id, customer_id, meter_code
),

sole as (
    -- breaches whose customer has no other line granting the code during the period
    select breaches.*
    from marts.fct_limit_breaches as breaches
    where not exists (
        select 1 from line_grants as other
        where
            other.customer_id = breaches.customer_id
            and other.entitlement_code = breaches.entitlement_code
            and other.contract_line_id <> breaches.contract_line_id
            and other.valid_from < breaches.period_end
            and other.valid_to > breaches.period_start
    )
)
"""


def rows(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_breach_use_equals_an_independent_recount_from_staging(demo_warehouse: Path, as_of: date) -> None:
    checked = rows(
        demo_warehouse,
        STAGED
        + """
        select
            sole.breach_id,
            sole.used_quantity,
            coalesce(sum(uses.quantity), 0) as recounted
        from sole
        left join uses
            on
                uses.customer_id = sole.customer_id
                and uses.code = sole.entitlement_code
                and uses.day >= sole.period_start
                and uses.day < sole.period_end
                and uses.day <= ?
                -- a version of this line in force that day, with the delivery in its scope
                and exists (
                    select 1 from line_grants as version
                    where
                        version.contract_line_id = sole.contract_line_id
                        and version.entitlement_code = sole.entitlement_code
                        and uses.day >= version.valid_from
                        and uses.day < version.valid_to
                        and (version.asset_id is null or version.asset_id = uses.asset_id)
                        and (version.location_id is null or version.location_id = uses.location_id)
                )
        group by sole.breach_id, sole.used_quantity
        """,
        [as_of],
    )
    total = rows(demo_warehouse, "select count(*) from marts.fct_limit_breaches")[0][0]
    assert len(checked) >= 0.8 * total > 0, "too few breaches recounted to mean anything"
    wrong = {b: (used, recounted) for b, used, recounted in checked if Decimal(used) != Decimal(recounted)}
    assert wrong == {}


def test_crossing_days_recomputed_from_daily_use(demo_warehouse: Path, as_of: date) -> None:
    """Where the limit never changed in the period (one version, no approved override), the
    day threshold T is crossed is the first day the running use reaches T % of the limit."""
    daily = rows(
        demo_warehouse,
        STAGED
        + """
        , constant_limit as (
            select sole.* from sole
            where
                (
                    select count(*) from line_grants as version
                    where
                        version.contract_line_id = sole.contract_line_id
                        and version.entitlement_code = sole.entitlement_code
                        and version.valid_from < sole.period_end
                        and version.valid_to > sole.period_start
                ) = 1
                and not exists (
                    select 1 from staging.stg_crm__overrides as overrides
                    where
                        overrides.contract_id = sole.contract_id
                        and overrides.entitlement_code = sole.entitlement_code
                        and overrides.approved_by is not null
                )
        )
        select
            constant_limit.breach_id, constant_limit.limit_quantity, constant_limit.crossed_80_on,
            constant_limit.crossed_90_on, constant_limit.crossed_100_on, uses.day, sum(uses.quantity)
        from constant_limit
        inner join line_grants as version
            on
                version.contract_line_id = constant_limit.contract_line_id
                and version.entitlement_code = constant_limit.entitlement_code
        inner join uses
            on
                uses.customer_id = constant_limit.customer_id
                and uses.code = constant_limit.entitlement_code
                and uses.day >= constant_limit.period_start
                and uses.day < constant_limit.period_end
                and uses.day <= ?
                and uses.day >= version.valid_from
                and uses.day < version.valid_to
                and (version.asset_id is null or version.asset_id = uses.asset_id)
                and (version.location_id is null or version.location_id = uses.location_id)
        group by all
        order by constant_limit.breach_id, uses.day
        """,
        [as_of],
    )
    periods: dict[str, dict] = {}
    for breach_id, limit, c80, c90, c100, day, quantity in daily:
        period = periods.setdefault(
            breach_id, {"limit": limit, "reported": (c80, c90, c100), "days": defaultdict(Decimal)}
        )
        period["days"][day] += Decimal(quantity)
    assert len(periods) > 20
    for breach_id, period in periods.items():
        expected, running = [None, None, None], Decimal(0)
        for day in sorted(period["days"]):
            running += period["days"][day]
            for i, threshold in enumerate((80, 90, 100)):
                if expected[i] is None and running * 100 >= threshold * period["limit"]:
                    expected[i] = day
        assert tuple(expected) == period["reported"], breach_id


def test_crossing_days_are_ordered_within_the_period(demo_warehouse: Path, as_of: date) -> None:
    breaches = rows(
        demo_warehouse,
        """select breach_id, period_start, period_end, threshold_crossed, crossed_80_on, crossed_90_on,
                  crossed_100_on, overage_quantity, overage_value
           from marts.fct_limit_breaches""",
    )
    assert breaches
    for breach_id, start, end, threshold, c80, c90, c100, overage, value in breaches:
        crossed = [d for d in (c80, c90, c100) if d is not None]
        assert c80 is not None and crossed == sorted(crossed), breach_id
        assert (c90 is None) <= (c100 is None), breach_id  # 100 % crossed implies 90 % crossed
        assert threshold == {1: 80, 2: 90, 3: 100}[len(crossed)], breach_id
        assert all(start <= d < end and d <= as_of for d in crossed), breach_id
        assert (overage > 0) <= (threshold == 100) and (value > 0) == (overage > 0), breach_id


def ground_truth(built: Built, name: str) -> list[dict]:
    with (built.exports / "ground_truth" / name).open() as handle:
        return list(csv.DictReader(handle))


def test_planted_over_allowance_incidents_are_breaches_at_100_pct(demo_build: Built) -> None:
    """The generator fills a period until the first incident over the limit: that period is at
    100 % by the day of the planted incident, 1 over, worth the incident's unit price."""
    leaks = ground_truth(demo_build, "leakage.csv")
    planted = [r for r in leaks if r["category"] == "over_allowance_service"]
    assert planted
    for leak in planted:
        found = rows(
            demo_build.warehouse,
            """select threshold_crossed, crossed_100_on, overage_quantity, overage_value, currency
               from marts.fct_limit_breaches
               where customer_id = ? and entitlement_code = 'INCIDENT'
                 and period_start <= cast(? as date) and cast(? as date) < period_end""",
            [leak["customer_id"], leak["occurred_on"], leak["occurred_on"]],
        )
        day = date.fromisoformat(leak["occurred_on"])
        assert (100, 1, Decimal(leak["amount"]), leak["currency"]) in {
            (t, q, v, c) for t, on, q, v, c in found if on <= day
        }, leak["evidence_id"]


def test_planted_overage_months_and_their_decoys(demo_build: Built) -> None:
    """Unbilled overage and invoiced overage: at 100 % with an overage worth at least what
    leaked; exactly at the limit once duplicate events count once: 100 %, no overage."""
    cases = [
        (r["evidence_id"], "unbilled_overage", Decimal(r["amount"]))
        for r in ground_truth(demo_build, "leakage.csv")
        if r["category"] == "unbilled_overage"
    ] + [
        (r["evidence_id"], r["scenario"], Decimal(0))
        for r in ground_truth(demo_build, "decoys.csv")
        if r["scenario"] in ("overage_invoiced", "duplicate_events_at_limit")
    ]
    assert {scenario for _, scenario, _ in cases} == {
        "unbilled_overage",
        "overage_invoiced",
        "duplicate_events_at_limit",
    }
    for evidence_id, scenario, leaked in cases:
        customer_id, meter_code, month, _line_version = evidence_id.split(":")
        [(threshold, used, limit, overage, value)] = rows(
            demo_build.warehouse,
            """select threshold_crossed, used_quantity, limit_quantity, overage_quantity, overage_value
               from marts.fct_limit_breaches
               where customer_id = ? and entitlement_code = ? and strftime(period_start, '%Y-%m') = ?""",
            [customer_id, meter_code, month],
        )
        assert threshold == 100, evidence_id
        if scenario == "duplicate_events_at_limit":
            assert (used, overage, value) == (limit, 0, 0), evidence_id
        else:
            assert overage == used - limit > 0 and value >= leaked, evidence_id


def test_upsell_candidates_were_over_90_pct_in_two_recent_breaches(demo_warehouse: Path) -> None:
    candidates = rows(
        demo_warehouse,
        """select upsell.upsell_id, count(breaches.breach_id)
           from marts.fct_upsell_candidates as upsell
           left join marts.fct_limit_breaches as breaches
             on breaches.customer_id = upsell.customer_id
            and breaches.entitlement_code = upsell.entitlement_code
            and breaches.threshold_crossed >= 90
            and breaches.period_start <= upsell.last_period_start
           group by upsell.upsell_id""",
    )
    assert candidates
    assert [c for c, over_90 in candidates if over_90 < 2] == []


def test_the_daily_usage_reconciliation_names_the_groups_a_lost_or_changed_day_breaks(
    demo_warehouse: Path, tmp_path: Path
) -> None:
    """int_usage_daily is what every usage model after the events reads, so the dbt test
    assert_int_usage_daily_keeps_every_event reconciles it with the events: run on a copy with one
    day's row dropped and another's quantity changed, it returns exactly those two groups."""
    compiled = target_dir(demo_warehouse) / "compiled" / "entitlements" / "tests" / "intermediate"
    sql = (compiled / "assert_int_usage_daily_keeps_every_event.sql").read_text()
    assert rows(demo_warehouse, sql) == []  # the build's own days reconcile
    copy = tmp_path / demo_warehouse.name
    shutil.copy(demo_warehouse, copy)
    con = duckdb.connect(str(copy))
    try:
        days = con.execute(
            "select meter_code, period_start, entitlement_id is null, occurred_on, customer_id"
            " from intermediate.int_usage_daily where entitlement_id is not null"
            " order by meter_code, period_start, customer_id, occurred_on"
        ).fetchall()
        lost, changed = days[0], next(d for d in days if d[:2] != days[0][:2])
        con.execute(
            "delete from intermediate.int_usage_daily where meter_code = ? and period_start = ?"
            " and occurred_on = ? and customer_id = ? and entitlement_id is not null",
            [lost[0], lost[1], lost[3], lost[4]],
        )
        con.execute(
            "update intermediate.int_usage_daily set quantity = quantity + 1 where meter_code = ?"
            " and period_start = ? and occurred_on = ? and customer_id = ? and entitlement_id is not null",
            [changed[0], changed[1], changed[3], changed[4]],
        )
    finally:
        con.close()
    broken = rows(copy, sql)
    assert sorted((r[0], r[1], r[2]) for r in broken) == sorted([lost[:3], changed[:3]])
    by_group = {(r[0], r[1]): r for r in broken}
    assert by_group[changed[:2]][3] == by_group[changed[:2]][4]  # same events, one more unit
    assert by_group[changed[:2]][6] == by_group[changed[:2]][5] + 1
    assert by_group[lost[:2]][4] < by_group[lost[:2]][3]  # fewer events in its days
