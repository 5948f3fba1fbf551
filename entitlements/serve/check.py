"""Is this customer entitled to this service, on this asset and site, on this date, and why?

`check_entitlement(warehouse, customer_id, entitlement_code, on)` answers from the
warehouse file alone, read-only, with exactly the logic of a rebuild: it runs the dbt
analysis `entitlement_check` (dbt_project/analyses/entitlement_check.sql), compiled at
build time with the same macros as the marts and stored in audit.compiled_queries
(entitlements.serve.queries). The analysis lists every grant of the customer and code
(int_entitlement_grants) with whether it covers the request that day (validity
[valid_from, valid_to), asset and site null on the grant or equal), its precedence_rank
(among covering grants the lowest wins, as for deliveries and usage), and its allowance
period, use and remaining allowance from the `active_entitlements` macro, so
`remaining_quantity` is the one fct_active_entitlements shows for that grant and date.
Where several grants cover, the reason the winner wins is fct_entitlement_precedence's.

Entitled means a grant covers the request; a covering grant whose allowance is used up
still answers entitled (the service is covered, more is over allowance) and the reason
says so.

Speed (python -m entitlements.bench: 10,000 random checks through one warm checker, on a
2-vCPU VM; see the bench output for current numbers): at 1M usage events p50 15 ms /
p95 19.9 ms on a quiet machine (2,000 checks under load: p50 12-13 / p95 16-17 ms), just
inside the 20 ms target. Where the time goes:

- Planning, 9-12 ms of every check: DuckDB binds and optimizes the query (the
  active_entitlements macro is most of it) on every execution, and re-plans a PREPAREd
  statement on each EXECUTE too (measured: saves about 1 ms, so not used). The analysis
  is kept narrow for that reason (no window, no mart join; the precedence reason is a
  second, keyed query only when several grants cover).
- Execution, a few ms: the macro groups use by customer as well as contract line, so the
  customer filter reaches the use scans, and it reads use per day (int_usage_daily, a few
  rows per line and day) rather than per event; both tables are stored in customer order,
  so a check reads few row groups. (Before these two changes: p95 39 ms at 1M.)

So a service reaches its best latency as one warm process holding an EntitlementChecker
(opening the file and loading the catalog costs hundreds of ms; starting Python for
`entitlements check` costs about a second) and calling `.check()` per request, one
checker per worker thread (a DuckDB connection is not shared across threads; `threads`
is set to 1 because a check reads a few rows). A batch (a day's cases, a CSV) runs
through one checker in one process (`check_batch`, `entitlements check-batch FILE`), never
one CLI call per row. Answering a batch in one query (one plan for many requests on one
date) would need an analysis that takes the requests as a relation; not built yet.

Locks. The checker opens the warehouse read-only: any number of readers (checks, the
report, `as-of`) run together. DuckDB's file lock keeps readers and a writer apart: while
`entitlements build`/`run` writes the file, opening it raises WarehouseBusyError (a clear
message, exit 2 from the CLI; `wait_seconds` retries first), and while a checker is open
a build cannot take the lock. A long-running service should therefore serve a copy of the
warehouse, replaced after each build (copy, rename over the served file, reopen).
"""

from __future__ import annotations

import csv
import difflib
import json
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from entitlements.serve.queries import MissingQueryError, compiled_query
from entitlements.serve.spreadsheet import safe_row
from entitlements.warehouse import WarehouseLockedError, built_as_of, connect_marts

QUERY = "entitlement_check"


CANDIDATE_COLUMNS = (
    "entitlement_id",
    "contract_id",
    "contract_line_id",
    "version_no",
    "package_code",
    "entitlement_type",
    "asset_id",
    "location_id",
    "valid_from",
    "valid_to",
    "covers",
    "wins",
    "precedence_rank",
    "precedence_rule",
    "period_start",
    "period_end",
    "limit_quantity",
    "used_quantity",
    "remaining_quantity",
    "beaten_by",
    "beaten_because",
)


class CheckInputError(ValueError):
    """Unknown customer or entitlement code (the message names it and suggests close ones)."""


class WarehouseBusyError(CheckInputError):
    """The warehouse cannot be read now: another process is writing it, or it is not built yet."""


@dataclass(frozen=True)
class CheckAnswer:
    customer_id: str
    entitlement_code: str
    on: date
    asset_id: str | None
    location_id: str | None
    entitled: bool
    entitlement_id: str | None
    contract_id: str | None
    package_code: str | None
    reason: str
    limit_quantity: Decimal | None  # None: unlimited (when entitled)
    used_quantity: Decimal | None
    remaining_quantity: Decimal | None
    period_start: date | None
    period_end: date | None
    expires_on: date | None  # the winning grant's valid_to: the first day it no longer covers
    covering_packages: tuple[str, ...] = ()  # when not entitled: catalog packages including the code
    candidates: tuple[dict[str, Any], ...] = field(default=())  # every grant of the customer and code

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=_json_value, indent=2)

    def describe(self) -> str:
        scope = "".join(
            [
                f" on asset {self.asset_id}" if self.asset_id else "",
                f" at site {self.location_id}" if self.location_id else "",
            ]
        )
        head = f"{self.customer_id} / {self.entitlement_code}{scope} on {self.on}: "
        if not self.entitled:
            lines = [head + f"NOT ENTITLED: {self.reason}"]
            if self.covering_packages:
                lines.append(
                    f"  packages that include {self.entitlement_code}: {', '.join(self.covering_packages)}"
                )
            return "\n".join(lines)
        lines = [
            head + "ENTITLED",
            f"  by {self.entitlement_id} (contract {self.contract_id}, package {self.package_code}),"
            f" valid until {self.expires_on} (exclusive)",
            f"  why: {self.reason}",
        ]
        if self.limit_quantity is None:
            lines.append(f"  allowance: unlimited; used {_num(self.used_quantity)} in {self._period()}")
        else:
            lines.append(
                f"  allowance: {_num(self.remaining_quantity)} of {_num(self.limit_quantity)} remaining"
                f" ({_num(self.used_quantity)} used) in {self._period()}"
            )
        return "\n".join(lines)

    def _period(self) -> str:
        return f"the period {self.period_start} to {self.period_end} (exclusive)"


class EntitlementChecker:
    """One read-only warehouse connection and the compiled check query, reused for every check.

    `with EntitlementChecker(path) as checker: checker.check("C00019", "INCIDENT")`.
    Not thread-safe: use one checker per thread.
    """

    def __init__(self, warehouse: Path | str, *, wait_seconds: float = 0.0) -> None:
        self.warehouse = Path(warehouse)
        self._con = _open_read_only(self.warehouse, wait_seconds)
        try:
            # A check reads a few rows after filter pushdown: one thread beats the cost of
            # scheduling several (measured with python -m entitlements.bench).
            self._con.execute("set threads = 1")
            self._sql = compiled_query(self._con, QUERY)
            self.as_of = self._warehouse_as_of()
        except MissingQueryError as exc:
            self._con.close()
            raise WarehouseBusyError(f"warehouse {self.warehouse}: {exc}") from exc
        except BaseException:
            self._con.close()
            raise

    def __enter__(self) -> EntitlementChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._con.close()

    def check(
        self,
        customer_id: str,
        entitlement_code: str,
        on: date | None = None,
        asset_id: str | None = None,
        location_id: str | None = None,
    ) -> CheckAnswer:
        on = on or self.as_of
        params = {
            "customer_id": customer_id,
            "entitlement_code": entitlement_code,
            "asset_id": asset_id or None,
            "location_id": location_id or None,
            "on": on,
        }
        cursor = self._con.execute(self._sql, params)
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        grants = [r for r in rows if r["entitlement_id"] is not None]
        packages = tuple(rows[0]["catalog_packages"] or ())
        self._validate(
            customer_id,
            entitlement_code,
            known_customer=rows[0]["customer_known"] or bool(grants),
            known_code=bool(packages),
        )
        for g in grants:
            g["covers"] = bool(g["covers_date"] and g["covers_asset"] and g["covers_location"])
        # precedence_rank is unique per customer and code: the lowest covering rank wins
        grants.sort(key=lambda g: (not g["covers"], g["precedence_rank"], -g["valid_from"].toordinal()))
        winner = grants[0] if grants and grants[0]["covers"] else None
        for g in grants:
            g["wins"] = g is winner
            g["beaten_by"] = g["beaten_because"] = None
        if winner is not None:
            self._explain_precedence(winner, [g for g in grants[1:] if g["covers"]])
        candidates = tuple(_candidate(g, on) for g in grants)
        base = {
            "customer_id": customer_id,
            "entitlement_code": entitlement_code,
            "on": on,
            "asset_id": params["asset_id"],
            "location_id": params["location_id"],
            "candidates": candidates,
        }
        if winner is None:
            return CheckAnswer(
                **base,
                entitled=False,
                entitlement_id=None,
                contract_id=None,
                package_code=None,
                reason=_why_not(entitlement_code, grants, on, params["asset_id"], params["location_id"]),
                limit_quantity=None,
                used_quantity=None,
                remaining_quantity=None,
                period_start=None,
                period_end=None,
                expires_on=None,
                covering_packages=packages,
            )
        return CheckAnswer(
            **base,
            entitled=True,
            entitlement_id=winner["entitlement_id"],
            contract_id=winner["contract_id"],
            package_code=winner["package_code"],
            reason=_why_wins(winner, grants),
            limit_quantity=winner["limit_quantity"],
            used_quantity=winner["used_quantity"],
            remaining_quantity=winner["remaining_quantity"],
            period_start=winner["period_start"],
            period_end=winner["period_end"],
            expires_on=winner["valid_to"],
        )

    def _explain_precedence(self, winner: dict[str, Any], losers: list[dict[str, Any]]) -> None:
        """Why the winner beats each other covering grant, from fct_entitlement_precedence.

        Only when several grants cover the request (rare), so the hot path stays one query.
        """
        if not losers:
            return
        reasons = dict(
            self._con.execute(
                "select loser_entitlement_id, reason from marts.fct_entitlement_precedence"
                " where winner_entitlement_id = ? and list_contains(?, loser_entitlement_id)",
                [winner["entitlement_id"], [g["entitlement_id"] for g in losers]],
            ).fetchall()
        )
        for g in losers:
            g["beaten_by"] = winner["entitlement_id"]
            g["beaten_because"] = reasons.get(g["entitlement_id"])

    def _warehouse_as_of(self) -> date:
        as_of = built_as_of(self._con)
        if as_of is None:
            raise WarehouseBusyError(
                f"warehouse {self.warehouse} has no as-of date (not built yet): run `entitlements build`"
                " or pass --on DATE"
            )
        return as_of

    def _validate(
        self, customer_id: str, entitlement_code: str, *, known_customer: bool, known_code: bool
    ) -> None:
        problems = []
        if not known_customer:
            ids = [r[0] for r in self._con.execute("select customer_id from marts.dim_customers").fetchall()]
            problems.append(f"unknown customer {customer_id!r}{_suggest(customer_id, ids)}")
        if not known_code:
            codes = [
                r[0]
                for r in self._con.execute(
                    "select distinct entitlement_code from marts.dim_entitlement_catalog order by 1"
                ).fetchall()
            ]
            problems.append(
                f"unknown entitlement code {entitlement_code!r}{_suggest(entitlement_code, codes)}"
                f" (codes: {', '.join(codes)})"
            )
        if problems:
            raise CheckInputError("; ".join(problems))


def check_entitlement(
    warehouse: Path | str,
    customer_id: str,
    entitlement_code: str,
    on: date | None = None,
    *,
    asset_id: str | None = None,
    location_id: str | None = None,
) -> CheckAnswer:
    """One check with its own short-lived checker (the CLI). Services keep an EntitlementChecker."""
    with EntitlementChecker(warehouse) as checker:
        return checker.check(customer_id, entitlement_code, on, asset_id=asset_id, location_id=location_id)


BATCH_REQUIRED = ("customer_id", "entitlement_code")
BATCH_OPTIONAL = ("asset_id", "location_id", "on")
BATCH_ANSWER_COLUMNS = (
    "line",
    *BATCH_REQUIRED,
    *BATCH_OPTIONAL,
    "entitled",
    "entitlement_id",
    "contract_id",
    "package_code",
    "limit_quantity",
    "used_quantity",
    "remaining_quantity",
    "expires_on",
    "covering_packages",
    "reason",
    "error",
)


@dataclass(frozen=True)
class BatchSummary:
    requests: int
    entitled: int
    not_entitled: int
    errors: int  # rows answered with an error (unknown customer or code, bad date): none dropped


def check_batch(warehouse: Path | str, requests: Path, out: Path) -> BatchSummary:
    """Answer every row of a requests CSV through one warm checker; write one answer row per request.

    `requests` has a header with customer_id and entitlement_code, and optionally asset_id,
    location_id and on (YYYY-MM-DD; empty: the warehouse's as-of date). A row that cannot be
    answered (unknown customer or code, bad date) gets an answer row with `error` naming the
    line and the problem, so every request is accounted for. A file without the required
    columns raises CheckInputError naming the file and the column, before anything is written.
    """
    requests, out = Path(requests), Path(out)
    with requests.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or ()]
        missing = [c for c in BATCH_REQUIRED if c not in header]
        if missing:
            raise CheckInputError(
                f"{requests}, line 1: missing column {', '.join(missing)} (the header needs "
                f"{', '.join(BATCH_REQUIRED)}; optional: {', '.join(BATCH_OPTIONAL)})"
            )
        rows = [
            ({k.strip(): (v or "").strip() for k, v in row.items() if k}, reader.line_num) for row in reader
        ]
    counts = {"entitled": 0, "not_entitled": 0, "errors": 0}
    out.parent.mkdir(parents=True, exist_ok=True)
    with EntitlementChecker(warehouse) as checker, out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=BATCH_ANSWER_COLUMNS)
        writer.writeheader()
        for row, line in rows:
            request = {c: row.get(c) or None for c in (*BATCH_REQUIRED, *BATCH_OPTIONAL)}
            answer_row: dict[str, Any] = {"line": line, **request}
            try:
                on = _batch_date(request["on"])
                answer = checker.check(
                    request["customer_id"] or "",
                    request["entitlement_code"] or "",
                    on,
                    asset_id=request["asset_id"],
                    location_id=request["location_id"],
                )
            except CheckInputError as exc:
                counts["errors"] += 1
                answer_row["error"] = f"{requests}, line {line}: {exc}"
            else:
                counts["entitled" if answer.entitled else "not_entitled"] += 1
                answer_row |= {c: getattr(answer, c) for c in BATCH_ANSWER_COLUMNS[6:-3]}
                answer_row |= {
                    "on": answer.on,
                    "covering_packages": " ".join(answer.covering_packages),
                    "reason": answer.reason,
                }
            writer.writerow(safe_row(answer_row))
    return BatchSummary(len(rows), counts["entitled"], counts["not_entitled"], counts["errors"])


def _batch_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise CheckInputError(f"on {value!r} is not a date (YYYY-MM-DD)") from None


def _open_read_only(warehouse: Path, wait_seconds: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return connect_marts(warehouse)
        except WarehouseLockedError as exc:
            if time.monotonic() >= deadline:
                raise WarehouseBusyError(str(exc)) from exc
            time.sleep(0.25)


def _candidate(grant: dict[str, Any], on: date) -> dict[str, Any]:
    candidate = {k: grant[k] for k in CANDIDATE_COLUMNS}
    candidate["why_not"] = None if grant["covers"] else _not_covering(grant, on)
    return candidate


def _not_covering(grant: dict[str, Any], on: date) -> str:
    """Why a grant does not cover the request: its dates first, then its scope."""
    if not grant["covers_date"]:
        if grant["valid_to"] <= on:
            return f"expired on {grant['valid_to']}"
        return f"not yet in force: starts on {grant['valid_from']}"
    reasons = []
    if not grant["covers_asset"]:
        reasons.append(f"covers asset {grant['asset_id']} only")
    if not grant["covers_location"]:
        reasons.append(f"covers site {grant['location_id']} only")
    return ", ".join(reasons)


def _why_not(
    code: str, grants: list[dict[str, Any]], on: date, asset_id: str | None, location_id: str | None
) -> str:
    if not grants:
        return f"no contract includes {code}"
    in_force = [g for g in grants if g["covers_date"]]
    if in_force:
        scopes = sorted({_not_covering(g, on) for g in in_force})
        shown = "; ".join(scopes[:3]) + (f"; and {len(scopes) - 3} more" if len(scopes) > 3 else "")
        asked = [
            f"asset {asset_id}" if asset_id else "no asset",
            f"site {location_id}" if location_id else "no site",
        ]
        return f"{shown} (asked for {' and '.join(asked)})"
    ended = [g for g in grants if g["valid_to"] <= on]
    if ended:
        last = max(ended, key=lambda g: g["valid_to"])
        return f"{_not_covering(last, on)} ({last['contract_id']}, {last['package_code']})"
    first = min(grants, key=lambda g: g["valid_from"])
    return f"{_not_covering(first, on)} ({first['contract_id']}, {first['package_code']})"


def _why_wins(winner: dict[str, Any], grants: list[dict[str, Any]]) -> str:
    losers = [g for g in grants if g["covers"] and not g["wins"]]
    if not losers:
        reason = f"the only grant covering this request ({_scope(winner)})"
    else:
        beaten = [
            f"{g['entitlement_id']} ({g['beaten_because'] or winner['precedence_rule']})" for g in losers
        ]
        reason = f"wins over {'; '.join(beaten)}"
    if winner["limit_quantity"] is not None and winner["remaining_quantity"] == 0:
        reason += "; its allowance for this period is used up, so further use is over allowance"
    return reason


def _scope(grant: dict[str, Any]) -> str:
    if grant["asset_id"]:
        return f"asset {grant['asset_id']}"
    if grant["location_id"]:
        return f"site {grant['location_id']}"
    return "any asset and site"


def _suggest(value: str, known: list[str]) -> str:
    by_case = [k for k in known if k.lower() == value.lower()]
    close = by_case or difflib.get_close_matches(value, known, n=3, cutoff=0.6)
    return f": did you mean {', '.join(close)}?" if close else ""


def _num(value: Decimal | None) -> str:
    if value is None:
        return "-"
    return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")


def _json_value(value: object) -> object:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral() else float(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
