"""`entitlements check` and `as-of` against a warehouse built by the real pipeline.

The answers are held to the marts of the same build: every active entitlement is
found entitled with the mart's remaining allowance, the winner is the covering grant
with the lowest precedence_rank, validity is half-open and asset scope is enforced.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from entitlements.serve.asof import active_entitlements
from entitlements.serve.check import CheckInputError, EntitlementChecker, WarehouseBusyError
from tests.conftest import entitlements

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def con(demo_warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(demo_warehouse), read_only=True)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def checker(demo_warehouse: Path, con: duckdb.DuckDBPyConnection) -> Iterator[EntitlementChecker]:
    with EntitlementChecker(demo_warehouse) as warm:
        yield warm


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def covers(grant: dict, asset_id: str | None, location_id: str | None) -> bool:
    return grant["asset_id"] in (None, asset_id) and grant["location_id"] in (None, location_id)


def cli_check(warehouse: Path, *args: str) -> tuple[int, dict | None, str]:
    result = entitlements("check", *args, "--json", "--warehouse", warehouse)
    answer = json.loads(result.stdout) if result.stdout.strip() else None
    return result.returncode, answer, result.stderr


def test_every_active_entitlement_is_entitled_with_the_marts_allowance(
    checker: EntitlementChecker, con: duckdb.DuckDBPyConnection
) -> None:
    active = rows(
        con,
        "select a.*, g.precedence_rank from marts.fct_active_entitlements as a"
        " inner join intermediate.int_entitlement_grants as g using (entitlement_id)",
    )
    by_pair: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in active:
        by_pair[row["customer_id"], row["entitlement_code"]].append(row)
    assert len(by_pair) > 100
    as_of = active[0]["as_of_date"]
    assert checker.as_of == as_of
    contested = 0
    for (customer_id, code), grants in sorted(by_pair.items()):
        # ask once for each scope the pair's grants have (no asset and site for a general grant)
        for asset_id, location_id in sorted({(g["asset_id"], g["location_id"]) for g in grants}, key=str):
            answer = checker.check(customer_id, code, asset_id=asset_id, location_id=location_id)
            assert answer.entitled, (customer_id, code, asset_id, location_id, answer.reason)
            assert answer.on == as_of
            covering = [g for g in grants if covers(g, asset_id, location_id)]
            winner = min(covering, key=lambda g: g["precedence_rank"])
            assert answer.entitlement_id == winner["entitlement_id"], (customer_id, code, asset_id)
            assert answer.contract_id == winner["contract_id"]
            assert answer.package_code == winner["package_code"]
            assert answer.limit_quantity == winner["limit_quantity"]
            assert answer.used_quantity == winner["used_quantity"]
            assert answer.remaining_quantity == winner["remaining_quantity"]
            assert (answer.period_start, answer.period_end) == (winner["period_start"], winner["period_end"])
            assert answer.expires_on == winner["valid_to"]
            assert answer.covering_packages == ()
            losers = [c for c in answer.candidates if c["covers"] and not c["wins"]]
            assert len(losers) == len(covering) - 1
            if losers:
                contested += 1
                assert answer.reason.startswith("wins over "), answer.reason
                for loser in losers:
                    assert loser["beaten_by"] == winner["entitlement_id"]
                    assert loser["beaten_because"], loser  # the reason from fct_entitlement_precedence
                    assert loser["beaten_because"] in answer.reason
    assert contested > 0  # the demo has overlapping grants: precedence was exercised


def test_a_pair_not_in_the_mart_is_not_entitled(demo_warehouse: Path, con: duckdb.DuckDBPyConnection) -> None:
    never, expired = rows(
        con,
        """
        with pairs as (
            select a.customer_id, c.entitlement_code
            from staging.stg_crm__accounts as a
            cross join (select distinct entitlement_code from intermediate.int_catalog_entitlements) as c
        ),
        missing as (
            select * from pairs
            anti join marts.fct_active_entitlements as m using (customer_id, entitlement_code)
        )
        (select 'never' as kind, * from missing
         anti join intermediate.int_entitlement_grants as g using (customer_id, entitlement_code)
         order by all limit 1)
        union all
        (select 'expired' as kind, * from missing
         semi join (
             select * from intermediate.int_entitlement_grants
             where valid_to <= (select max(as_of_date) from marts.fct_active_entitlements)
         ) as g using (customer_id, entitlement_code)
         order by all limit 1)
        order by kind desc
        """,
    )
    packages = {
        code: sorted(
            p
            for (p,) in con.execute(
                "select package_code from intermediate.int_catalog_entitlements where entitlement_code = ?",
                [code],
            ).fetchall()
        )
        for code in (never["entitlement_code"], expired["entitlement_code"])
    }
    code, answer, _ = cli_check(
        demo_warehouse, "--customer", never["customer_id"], "--entitlement", never["entitlement_code"]
    )
    assert code == 1
    assert answer["entitled"] is False
    assert answer["reason"] == f"no contract includes {never['entitlement_code']}"
    assert answer["covering_packages"] == packages[never["entitlement_code"]] != []
    assert answer["candidates"] == [] and answer["remaining_quantity"] is None

    code, answer, _ = cli_check(
        demo_warehouse, "--customer", expired["customer_id"], "--entitlement", expired["entitlement_code"]
    )
    assert code == 1
    assert answer["entitled"] is False
    assert answer["candidates"] and not any(c["covers"] for c in answer["candidates"])
    assert answer["covering_packages"] == packages[expired["entitlement_code"]]
    last_end = max(c["valid_to"] for c in answer["candidates"] if c["valid_to"] <= answer["on"])
    assert answer["reason"].startswith(f"expired on {last_end}"), answer["reason"]


def test_unknown_customer_and_code_exit_2_naming_them(demo_warehouse: Path) -> None:
    code, answer, err = cli_check(demo_warehouse, "--customer", "NOPE-1", "--entitlement", "INCIDENT")
    assert code == 2 and answer is None
    assert "unknown customer 'NOPE-1'" in err
    code, answer, err = cli_check(demo_warehouse, "--customer", "C00001", "--entitlement", "INCIDNT")
    assert code == 2 and answer is None
    assert "unknown entitlement code 'INCIDNT'" in err and "did you mean INCIDENT" in err


def test_unknown_input_raises_check_input_error(checker: EntitlementChecker) -> None:
    with pytest.raises(CheckInputError, match="unknown customer 'c00001': did you mean C00001"):
        checker.check("c00001", "INCIDENT")


def test_validity_is_half_open(checker: EntitlementChecker, con: duckdb.DuckDBPyConnection) -> None:
    # a grant with no other grant of its customer and code around its start or its end
    grant = rows(
        con,
        """
        select * from intermediate.int_entitlement_grants as g
        where not exists (
            select 1 from intermediate.int_entitlement_grants as o
            where
                o.customer_id = g.customer_id and o.entitlement_code = g.entitlement_code
                and o.entitlement_id <> g.entitlement_id
                and o.valid_from <= g.valid_to and g.valid_from - 1 < o.valid_to
        )
        order by g.entitlement_id
        limit 1
        """,
    )[0]
    scope = {"asset_id": grant["asset_id"], "location_id": grant["location_id"]}
    ask = (grant["customer_id"], grant["entitlement_code"])
    first = checker.check(*ask, grant["valid_from"], **scope)
    assert first.entitled and first.entitlement_id == grant["entitlement_id"]
    last = checker.check(*ask, grant["valid_to"] - timedelta(days=1), **scope)
    assert last.entitled and last.entitlement_id == grant["entitlement_id"]
    assert last.expires_on == grant["valid_to"]
    end = checker.check(*ask, grant["valid_to"], **scope)
    assert not end.entitled
    assert end.reason.startswith(f"expired on {grant['valid_to']}"), end.reason
    before = checker.check(*ask, grant["valid_from"] - timedelta(days=1), **scope)
    assert not before.entitled
    assert before.reason.startswith(f"not yet in force: starts on {grant['valid_from']}"), before.reason


def test_a_warranty_covers_its_asset_only(
    checker: EntitlementChecker, con: duckdb.DuckDBPyConnection
) -> None:
    # a warranty grant and another asset of the same customer that nothing else covers at its start
    case = rows(
        con,
        """
        select g.*, a.asset_id as other_asset_id, a.location_id as other_location_id
        from intermediate.int_entitlement_grants as g
        inner join staging.stg_crm__assets as a
            on a.customer_id = g.customer_id and a.asset_id <> g.asset_id
        where
            g.asset_id is not null and g.location_id is null
            and not exists (
                select 1 from intermediate.int_entitlement_grants as o
                where
                    o.customer_id = g.customer_id and o.entitlement_code = g.entitlement_code
                    and o.entitlement_id <> g.entitlement_id
                    and o.valid_from <= g.valid_from and g.valid_from < o.valid_to
            )
        order by g.entitlement_id, a.asset_id
        limit 1
        """,
    )[0]
    ask = (case["customer_id"], case["entitlement_code"], case["valid_from"])
    own = checker.check(*ask, asset_id=case["asset_id"])
    assert own.entitled and own.entitlement_id == case["entitlement_id"]
    other = checker.check(*ask, asset_id=case["other_asset_id"], location_id=case["other_location_id"])
    assert not other.entitled
    assert f"covers asset {case['asset_id']} only" in other.reason
    assert other.covering_packages and case["package_code"] in other.covering_packages
    unscoped = checker.check(*ask)
    assert not unscoped.entitled


def test_as_of_equals_the_mart(demo_warehouse: Path, con: duckdb.DuckDBPyConnection) -> None:
    mart = con.execute("select * from marts.fct_active_entitlements order by entitlement_id").df()
    answer = active_entitlements(demo_warehouse, mart["as_of_date"].iloc[0].date())
    assert len(answer) == len(mart) > 0
    pd.testing.assert_frame_equal(answer, mart)


def test_a_writer_holding_the_warehouse_gives_a_clear_message(warehouse_copy: Path) -> None:
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('locked', flush=True);"
            " time.sleep(60)",
            str(warehouse_copy),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "locked"
        with pytest.raises(WarehouseBusyError, match=r"cannot read it\. A build or run is writing it"):
            EntitlementChecker(warehouse_copy)
        result = entitlements(
            "check", "--customer", "C00001", "--entitlement", "INCIDENT", "--warehouse", warehouse_copy
        )
        assert result.returncode == 2
        assert "cannot read it. A build or run is writing it" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        writer.kill()
        writer.wait()


def test_a_batch_answers_every_row_as_single_checks_do(
    demo_warehouse: Path, con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    active = rows(
        con,
        "select customer_id, entitlement_code, remaining_quantity from marts.fct_active_entitlements"
        " where asset_id is null and location_id is null order by entitlement_id limit 5",
    )
    requests = tmp_path / "requests.csv"
    lines = ["customer_id,entitlement_code,on,asset_id"]
    lines += [f"{r['customer_id']},{r['entitlement_code']},," for r in active]
    lines += ["NOPE-1,INCIDENT,,", f"{active[0]['customer_id']},INCIDENT,2026-02-30,"]
    requests.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = entitlements("check-batch", requests, "--warehouse", demo_warehouse)
    assert result.returncode == 1, result.stdout + result.stderr  # two rows have errors
    assert "7 requests: 5 entitled, 0 not entitled, 2 with errors" in result.stdout
    answers = pd.read_csv(tmp_path / "requests.answers.csv", dtype=str, keep_default_na=False)
    assert answers["line"].tolist() == [str(n) for n in range(2, 9)]
    for row, mart in zip(answers.head(5).to_dict("records"), active, strict=True):
        assert (row["customer_id"], row["entitled"], row["error"]) == (mart["customer_id"], "True", "")
        assert row["remaining_quantity"] == (
            "" if mart["remaining_quantity"] is None else str(mart["remaining_quantity"])
        )
    assert answers["error"].tolist()[5:] == [
        f"{requests}, line 7: unknown customer 'NOPE-1'",
        f"{requests}, line 8: on '2026-02-30' is not a date (YYYY-MM-DD)",
    ]


def test_a_batch_without_a_required_column_is_refused(demo_warehouse: Path, tmp_path: Path) -> None:
    requests = tmp_path / "requests.csv"
    requests.write_text("customer,entitlement_code\nC00001,INCIDENT\n", encoding="utf-8")
    result = entitlements("check-batch", requests, "--warehouse", demo_warehouse)
    assert result.returncode == 2
    assert f"{requests}, line 1: missing column customer_id" in result.stderr
    assert not (tmp_path / "requests.answers.csv").exists()
