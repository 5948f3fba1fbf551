"""`entitlements check-batch` (one set-based query for a file of checks) against single checks.

A few hundred requests drawn from the demo warehouse cover every branch: entitled (alone, over
other grants, with its allowance used up), expired, not yet in force, outside a grant's asset,
never granted, unknown customer or code, a bad date. The batch's answer for each must be the
answer of a single check, through a warm checker (its per-day index) and a cold one (one query a
check), reasons and remaining allowance included; and those answers are held to the warehouse
itself: the covering grant with the lowest precedence_rank wins, with the allowance `entitlements
as-of` shows for it that day.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from entitlements.serve.check import CheckAnswer, CheckInputError, EntitlementChecker, WarehouseBusyError
from entitlements.serve.queries import compiled_query
from tests.conftest import entitlements

pytestmark = pytest.mark.integration

HEADER = ("customer_id", "entitlement_code", "asset_id", "location_id", "on")


@pytest.fixture(scope="module")
def con(demo_warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(demo_warehouse), read_only=True)
    yield connection
    connection.close()


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | dict | None = None) -> list[dict]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def request(customer_id: str, code: str, on: date | str, asset_id: str | None = None, location=None) -> dict:
    return dict(zip(HEADER, (customer_id, code, asset_id or "", location or "", str(on)), strict=True))


@pytest.fixture(scope="module")
def requests(con: duckdb.DuckDBPyConnection, as_of: date) -> list[dict[str, str]]:
    """Requests for every branch, then random ones as the bench draws them."""
    rng = random.Random(17)
    grants = rows(con, "select * from intermediate.int_entitlement_grants order by entitlement_id")
    asked: list[dict[str, str]] = []
    for g in rng.sample(grants, 40):
        scope = (g["asset_id"], g["location_id"])
        inside = g["valid_from"] + timedelta(days=rng.randrange((g["valid_to"] - g["valid_from"]).days))
        for day in (inside, g["valid_to"], g["valid_from"] - timedelta(days=1)):  # in force, ended, before
            asked.append(request(g["customer_id"], g["entitlement_code"], day, *scope))
    other_asset = rows(
        con,
        "select g.customer_id, g.entitlement_code, g.valid_from, a.asset_id"
        " from intermediate.int_entitlement_grants as g"
        " inner join staging.stg_crm__assets as a"
        " on a.customer_id = g.customer_id and a.asset_id <> g.asset_id"
        " order by all",
    )
    asked += [
        request(r["customer_id"], r["entitlement_code"], r["valid_from"], r["asset_id"])
        for r in other_asset[:15]
    ]
    used_up = rows(
        con,
        "select g.customer_id, g.entitlement_code, p.crossed_100_on, g.asset_id, g.location_id"
        " from marts.fct_allowance_periods as p"
        " inner join intermediate.int_entitlement_grants as g using (entitlement_id)"
        " where p.crossed_100_on is not null order by all",
    )
    asked += [request(*r.values()) for r in rng.sample(used_up, min(15, len(used_up)))]
    contested = rows(
        con,
        "select p.customer_id, p.entitlement_code, p.overlap_from, g.asset_id, g.location_id"
        " from marts.fct_entitlement_precedence as p"
        " inner join intermediate.int_entitlement_grants as g on g.entitlement_id = p.winner_entitlement_id"
        " order by all",
    )
    asked += [request(*r.values()) for r in rng.sample(contested, min(15, len(contested)))]
    customers = [
        r[0] for r in con.execute("select customer_id from marts.dim_customers order by 1").fetchall()
    ]
    codes = [
        r[0]
        for r in con.execute(
            "select distinct entitlement_code from marts.dim_entitlement_catalog order by 1"
        ).fetchall()
    ]
    granted = {(g["customer_id"], g["entitlement_code"]) for g in grants}
    never = [(c, e) for c in customers for e in codes if (c, e) not in granted]
    asked += [request(c, e, as_of - timedelta(days=rng.randrange(730))) for c, e in rng.sample(never, 15)]
    asked += [
        request("NOPE-1", "INCIDENT", as_of),
        request(customers[0].lower(), codes[0], as_of),
        request(customers[0], "INCIDNT", as_of),
        request("NOPE-2", "NOPE", as_of),
        request(customers[1], codes[1], "2026-02-30"),
        request(customers[2], codes[2], "31/12/2026"),
        *(request(rng.choice(customers), rng.choice(codes), "") for _ in range(5)),  # the as-of date
    ]
    asked += [
        request(rng.choice(customers), rng.choice(codes), as_of - timedelta(days=rng.randrange(-90, 730)))
        for _ in range(200)
    ]
    return asked


@pytest.fixture(scope="module")
def batch(demo_warehouse: Path, requests: list[dict[str, str]], tmp_path_factory) -> tuple[Path, list[dict]]:
    """The requests as a CSV, answered by the command; (the requests file, its answer rows)."""
    path = tmp_path_factory.mktemp("batch") / "requests.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER)
        writer.writeheader()
        writer.writerows(requests)
    result = entitlements("check-batch", path, "--warehouse", demo_warehouse)
    assert result.returncode == 1, result.stdout + result.stderr  # some rows are errors, on purpose
    with path.with_suffix(".answers.csv").open(newline="", encoding="utf-8") as handle:
        answers = list(csv.DictReader(handle))
    assert f"{len(requests)} requests:" in result.stdout
    return path, answers


def as_answer_row(answer: CheckAnswer) -> dict[str, str]:
    """A single check's answer as check-batch writes it."""

    def text(value: object) -> str:
        return "" if value is None else str(value)

    return {
        "entitled": str(answer.entitled),
        "entitlement_id": text(answer.entitlement_id),
        "contract_id": text(answer.contract_id),
        "package_code": text(answer.package_code),
        "limit_quantity": text(answer.limit_quantity),
        "used_quantity": text(answer.used_quantity),
        "remaining_quantity": text(answer.remaining_quantity),
        "expires_on": text(answer.expires_on),
        "covering_packages": " ".join(answer.covering_packages),
        "reason": answer.reason,
        "error": "",
    }


def test_the_batch_answers_every_request_as_single_checks_do(
    demo_warehouse: Path, requests: list[dict[str, str]], batch: tuple[Path, list[dict]]
) -> None:
    path, answers = batch
    assert [a["line"] for a in answers] == [str(n) for n in range(2, len(requests) + 2)]
    with EntitlementChecker(demo_warehouse) as warm, EntitlementChecker(demo_warehouse, warm=False) as cold:
        for asked, answer in zip(requests, answers, strict=True):
            assert {k: answer[k] for k in HEADER if asked[k]} == {k: v for k, v in asked.items() if v}
            got = {k: v for k, v in answer.items() if k not in ("line", *HEADER)}
            try:
                on = date.fromisoformat(asked["on"]) if asked["on"] else None
            except ValueError:
                assert (
                    got["error"]
                    == f"{path}, line {answer['line']}: on {asked['on']!r} is not a date (YYYY-MM-DD)"
                )
                continue
            for checker in (warm, cold):
                try:
                    single = checker.check(
                        asked["customer_id"],
                        asked["entitlement_code"],
                        on,
                        asked["asset_id"],
                        asked["location_id"],
                    )
                except CheckInputError as exc:
                    assert got["error"] == f"{path}, line {answer['line']}: {exc}", asked
                    assert got["entitled"] == "", asked
                else:
                    assert got == as_answer_row(single), (asked, checker.warm)
                    assert answer["on"] == str(single.on)


def test_the_answers_are_the_warehouses(
    con: duckdb.DuckDBPyConnection,
    requests: list[dict[str, str]],
    batch: tuple[Path, list[dict]],
    as_of: date,
) -> None:
    """Each answer against the grants and the as-of analysis, and every branch is exercised."""
    grants = rows(con, "select * from intermediate.int_entitlement_grants")
    by_pair: dict[tuple[str, str], list[dict]] = {}
    for g in grants:
        by_pair.setdefault((g["customer_id"], g["entitlement_code"]), []).append(g)
    ranks = {g["entitlement_id"]: g["precedence_rank"] for g in grants}
    as_of_sql = compiled_query(con, "active_entitlements_on")
    in_force: dict[date, list[dict]] = {}
    branches: Counter[str] = Counter()
    for asked, answer in zip(requests, batch[1], strict=True):
        if answer["error"]:
            branches["unknown customer" if "unknown customer" in answer["error"] else "other error"] += 1
            branches["unknown code"] += "unknown entitlement code" in answer["error"]
            continue
        on = date.fromisoformat(asked["on"]) if asked["on"] else as_of
        if on not in in_force:
            in_force[on] = rows(con, f"select * from ({as_of_sql}) as active", {"as_of": on})
        covering = [
            r
            for r in in_force[on]
            if (r["customer_id"], r["entitlement_code"]) == (asked["customer_id"], asked["entitlement_code"])
            and r["asset_id"] in (None, asked["asset_id"] or None)
            and r["location_id"] in (None, asked["location_id"] or None)
        ]
        assert answer["entitled"] == str(bool(covering)), (asked, answer["reason"])
        if covering:
            winner = min(covering, key=lambda r: ranks[r["entitlement_id"]])
            assert answer["entitlement_id"] == winner["entitlement_id"]
            for column in ("limit_quantity", "used_quantity", "remaining_quantity"):
                expected = winner[column]
                assert answer[column] == ("" if expected is None else str(expected)), (asked, column)
            branches["entitled over others" if len(covering) > 1 else "entitled alone"] += 1
            assert answer["reason"].startswith(
                "wins over " if len(covering) > 1 else "the only grant covering"
            )
            if winner["remaining_quantity"] == Decimal(0):
                branches["allowance used up"] += 1
                assert "allowance for this period is used up" in answer["reason"]
            continue
        pair = by_pair.get((asked["customer_id"], asked["entitlement_code"]), [])
        dated = [g for g in pair if g["valid_from"] <= on < g["valid_to"]]
        ended = [g for g in pair if g["valid_to"] <= on]
        if not pair:
            branches["never granted"] += 1
            assert answer["reason"] == f"no contract includes {asked['entitlement_code']}"
        elif dated:
            branches["outside the grant's asset or site"] += 1
            assert " only" in answer["reason"] and "(asked for " in answer["reason"], answer["reason"]
        elif ended:
            branches["expired"] += 1
            assert answer["reason"].startswith(f"expired on {max(g['valid_to'] for g in ended)}")
        else:
            branches["not yet in force"] += 1
            assert answer["reason"].startswith(
                f"not yet in force: starts on {min(g['valid_from'] for g in pair)}"
            )
    assert all(branches[b] for b in BRANCHES), branches


BRANCHES = (
    "entitled alone",
    "entitled over others",
    "allowance used up",
    "expired",
    "not yet in force",
    "outside the grant's asset or site",
    "never granted",
    "unknown customer",
    "unknown code",
    "other error",  # the bad dates
)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            b"customer_id,entitlement_code,on\nC00001,INCIDENT,2026-01-01\nC00002,INCIDENT,2026-01-01,x\n",
            "line 3, column 4: 4 fields where the header has 3 (a value holding a comma needs quotes)",
        ),
        (
            b"customer_id,entitlement_code,on\nC00001\n",
            "line 2, column entitlement_code: missing (1 of the header's 3 fields)",
        ),
        (
            b'customer_id,entitlement_code,on\nC00001,"INCIDENT,2026-01-01\nC00002,INCIDENT,2026-01-02\n',
            "line 2, column on: missing (2 of the header's 3 fields);"
            " the row runs on to line 3: a quote left open?",
        ),
        (
            b"customer_id,entitlement_code\nC00001,INCIDENT\nC0000\xe9,INCIDENT\n",
            "line 3, column customer_id: byte 0xe9 is not UTF-8 (save the file as UTF-8)",
        ),
        (
            b"customer_id,entitlement_code,customer_id\nC00001,INCIDENT,C00002\n",
            "line 1, column 3: column customer_id named twice",
        ),
    ],
    ids=["a field too many", "fields missing", "a quote left open", "not UTF-8", "a column twice"],
)
def test_a_malformed_request_file_is_refused_naming_line_and_column(
    demo_warehouse: Path, tmp_path: Path, content: bytes, expected: str
) -> None:
    requests = tmp_path / "requests.csv"
    requests.write_bytes(content)
    result = entitlements("check-batch", requests, "--warehouse", demo_warehouse)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == f"{requests}, {expected}"
    assert not (tmp_path / "requests.answers.csv").exists()


def test_a_warehouse_without_the_batch_and_index_queries_says_to_build_again(warehouse_copy: Path) -> None:
    """A warehouse built before the analyses existed: a clear message, not a DuckDB error."""
    writer = duckdb.connect(str(warehouse_copy))
    writer.execute(
        "delete from audit.compiled_queries where name in ('entitlement_checks', 'entitlement_check_days')"
    )
    writer.close()
    with pytest.raises(
        WarehouseBusyError,
        match="'entitlement_check_days' is not in this warehouse: run `entitlements build`",
    ):
        EntitlementChecker(warehouse_copy)
    requests = warehouse_copy.parent / "requests.csv"
    requests.write_text("customer_id,entitlement_code\nC00001,INCIDENT\n", encoding="utf-8")
    result = entitlements("check-batch", requests, "--warehouse", warehouse_copy)
    assert result.returncode == 2
    assert "'entitlement_checks' is not in this warehouse: run `entitlements build` again" in result.stderr
    assert "Traceback" not in result.stderr
