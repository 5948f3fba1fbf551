"""Is this customer entitled to this service, on this asset and site, on this date, and why?

`check_entitlement(warehouse, customer_id, entitlement_code, on)` answers from the
warehouse file alone, read-only, with exactly the logic of a rebuild: every answer comes
from dbt analyses (dbt_project/analyses/), compiled at build time with the same macros as
the marts and stored in audit.compiled_queries (entitlements.serve.queries). A check
weighs every grant of the customer and code (int_entitlement_grants): whether it covers
the request that day (in force that day, asset and site null on the grant or equal), its
precedence_rank (among covering grants the lowest wins, as for deliveries and usage), and
its allowance period, use and remaining allowance from the `active_entitlements` macro,
so `remaining_quantity` is the one fct_active_entitlements shows for that grant and date.
Where several grants cover, the reason the winner wins is fct_entitlement_precedence's.

Entitled means a grant covers the request; a covering grant whose allowance is used up
still answers entitled (the service is covered, more is over allowance) and the reason
says so.

Three ways to the same answer, by how many checks are asked (the grants, flags and
allowances they produce go through one Python assembly, `_answer`):

- One check (`entitlements check`, `check_entitlement`, `EntitlementChecker(warm=False)`):
  the analysis entitlement_check, its parameters bound, one query per check. Planning it
  is most of its ~10 ms (DuckDB binds and optimizes the macro on every execution, and
  re-plans a PREPAREd statement on each EXECUTE too: measured, no gain); the macro groups
  use by customer, so the customer filter reaches the use scans and a check reads few row
  groups. Nothing is loaded up front, which keeps the CLI's start short.
- Many checks through one process (a service, `EntitlementChecker(warehouse)`, warm): no
  query per check. The checker keeps an index, from the analysis entitlement_check_days:
  every grant, and the allowance of each grant in force on each day of a month, filled the
  first time a check asks about a day of that month (about 0.1 s per month at 1M usage
  events, one lateral query over its days). A check is then a dictionary lookup and the
  same assembly: tens of microseconds. Memory: one small tuple per grant and day in force
  (identical allowances of consecutive days share one tuple).
- A file of checks (`check_batch`, `entitlements check-batch FILE`, `check_many`): the
  requests become one relation (a temporary table) and the analysis entitlement_checks
  answers all of them in one query: the macro evaluated once per distinct date asked, then
  joined to the requests' grants. Its time grows with the distinct dates, not the requests.

Speed (1M usage events, on a 2-vCPU VM shared with other work, load average 4-7; the bench,
python -m entitlements.bench, has current numbers): a warm check p50 0.02 ms / p95 0.04 ms
over 10,000 random checks after 200 warm-up ones (one query a check was p50 36 / p95 63 ms
under the same load, 17-26 ms quiet); check-batch of 10,000 random requests over two years
of dates 1.5-2.5 s, 4,000-6,500 checks/s (about 1 s of it the macro over 730 dates; on
one date, as a day's dispatches are, about 10,000 checks/s). `entitlements check` (the demo
warehouse, 2026-12-06, quiet) 125-160 ms wall from run to run: the interpreter ~20 ms, imports
~45 ms (click, DuckDB's engine module without the duckdb package around it: entitlements.warehouse),
opening the file ~13 ms, the build checks ~8 ms, the query ~17 ms (mostly planning).

Locks. The checker opens the warehouse read-only: any number of readers (checks, the
report, `as-of`) run together. DuckDB's file lock keeps readers and a writer apart: while
`entitlements build`/`run` writes the file, opening it raises WarehouseBusyError (a clear
message, exit 2 from the CLI; `wait_seconds` retries first), and while a checker is open
a build cannot take the lock. A long-running service should therefore serve a copy of the
warehouse, replaced after each build (copy, rename over the served file, reopen: a warm
checker's index belongs to the file it opened, so it is rebuilt by reopening). The
temporary tables a checker creates (check_days, check_requests) live in its own
connection, never in the file. Not thread-safe: one checker per thread.
"""

from __future__ import annotations

import calendar
import csv
import io
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from entitlements.serve.queries import MissingQueryError, compiled_query
from entitlements.serve.spreadsheet import safe_row
from entitlements.warehouse import WarehouseLockedError, built_as_of, connect_marts

if TYPE_CHECKING:  # annotations only: a check connects through entitlements.warehouse
    import duckdb

QUERY = "entitlement_check"  # one request, its parameters bound: a cold checker
BATCH_QUERY = "entitlement_checks"  # every request of the temporary table check_requests
INDEX_QUERY = "entitlement_check_days"  # a warm checker's index: grants, allowance per day in force

GRANT_COLUMNS = (
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
    "precedence_rank",
    "precedence_rule",
)
ALLOWANCE_COLUMNS = ("period_start", "period_end", "limit_quantity", "used_quantity", "remaining_quantity")
NO_ALLOWANCE: dict[str, Any] = dict.fromkeys(ALLOWANCE_COLUMNS)  # a grant not in force that day

CANDIDATE_COLUMNS = (  # an answer's candidates: each grant of the customer and code, as weighed
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
_candidate_values = itemgetter(*CANDIDATE_COLUMNS)


class CheckInputError(ValueError):
    """Unknown customer or entitlement code (the message names it and suggests close ones)."""


class WarehouseBusyError(CheckInputError):
    """The warehouse cannot be read now: another process is writing it, or it is not built yet."""


@dataclass(frozen=True)
class CheckRequest:
    """One check: `on` None is the warehouse's as-of date; an empty asset or site is none."""

    customer_id: str
    entitlement_code: str
    on: date | None = None
    asset_id: str | None = None
    location_id: str | None = None


# What a check weighs: every grant of the customer and code (dicts with GRANT_COLUMNS,
# covers_date/asset/location and ALLOWANCE_COLUMNS), the catalog packages including the
# code (empty: an unknown code), and whether the customer has an account.
_Found = tuple[list[dict[str, Any]], tuple[str, ...], bool]


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
    expires_on: date | None  # the winning grant's valid_to: the first day it no longer covers (None: no end)
    covering_packages: tuple[str, ...] = ()  # when not entitled: catalog packages including the code
    candidates: tuple[dict[str, Any], ...] = field(default=())  # every grant of the customer and code

    def to_json(self) -> str:
        import json  # only for --json: the plain answer starts faster without it

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
            + (f" valid until {self.expires_on} (exclusive)" if self.expires_on else " with no end date"),
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
        if self.period_end is None:  # a whole-term allowance of an open-ended contract
            return f"the period from {self.period_start} (no end date)"
        return f"the period {self.period_start} to {self.period_end} (exclusive)"


class EntitlementChecker:
    """One read-only warehouse connection, reused for every check.

    `with EntitlementChecker(path) as checker: checker.check("C00019", "INCIDENT")`.
    warm (the default) answers from an index filled a month of days at a time (see the
    module's docstring); warm=False runs one query per check and loads nothing up front,
    for a process that asks once. Both give the same answers. Not thread-safe: use one
    checker per thread.
    """

    def __init__(self, warehouse: Path | str, *, wait_seconds: float = 0.0, warm: bool = True) -> None:
        self.warehouse = Path(warehouse)
        self.warm = warm
        self._con = _open_read_only(self.warehouse, wait_seconds)
        self._sql: dict[str, str] = {}
        try:
            # A check reads a few rows after filter pushdown: one thread beats the cost of
            # scheduling several (measured with python -m entitlements.bench).
            self._con.execute("set threads = 1")
            self._query(INDEX_QUERY if warm else QUERY)  # a warehouse built before it fails here
            self.as_of = self._warehouse_as_of()
        except BaseException:
            self._con.close()
            raise
        self._reasons: dict[str, dict[str, str]] = {}  # winner -> loser -> why (fct_entitlement_precedence)
        self._catalog: tuple[frozenset[str], dict[str, tuple[str, ...]]] | None = None
        self._alias_map: dict[str, str] | None = None
        # The warm index: grants by customer and code; by day, the allowance of each grant in force.
        self._grants: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._days: dict[date, dict[str, tuple[Any, ...]]] = {}

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
        request = self._resolve(CheckRequest(customer_id, entitlement_code, on, asset_id, location_id))
        grants, packages, known_customer = self._indexed(request) if self.warm else self._queried(request)
        if not (known_customer or grants) and (account := self._aliases().get(request.customer_id)):
            # Another system's id of the account (Stripe cus_..., a 15-character Salesforce id)
            request = replace(request, customer_id=account)
            grants, packages, known_customer = self._indexed(request) if self.warm else self._queried(request)
        self._validate(request, known_customer=known_customer or bool(grants), known_code=bool(packages))
        winner = _rank(grants)
        self._load_reasons(_contested([(grants, winner)]))
        return self._answer(request, grants, winner, packages)

    def check_many(self, requests: Sequence[CheckRequest]) -> list[CheckAnswer | CheckInputError]:
        """Answer every request in one query (the analysis entitlement_checks), in order; a request
        that cannot be answered (unknown customer or code) has its CheckInputError in its place."""
        accounts = self._customers_and_packages()[0]
        resolved = [
            r
            if r.customer_id in accounts
            else replace(r, customer_id=self._aliases().get(r.customer_id, r.customer_id))
            for r in map(self._resolve, requests)
        ]
        results: list[CheckAnswer | CheckInputError | None] = [None] * len(resolved)
        ranked: list[tuple[int, list[dict[str, Any]], dict[str, Any] | None, tuple[str, ...]]] = []
        for n, (request, (grants, packages, known)) in enumerate(
            zip(resolved, self._queried_many(resolved), strict=True)
        ):
            try:
                self._validate(request, known_customer=known or bool(grants), known_code=bool(packages))
            except CheckInputError as exc:
                results[n] = exc
            else:
                ranked.append((n, grants, _rank(grants), packages))
        self._load_reasons(_contested([(grants, winner) for _, grants, winner, _ in ranked]))
        for n, grants, winner, packages in ranked:
            results[n] = self._answer(resolved[n], grants, winner, packages)
        return [r for r in results if r is not None]

    # --- where the grants come from: one query, the batch query, or the warm index

    def _queried(self, request: CheckRequest) -> _Found:
        cursor = self._con.execute(
            self._query(QUERY),
            {
                "customer_id": request.customer_id,
                "entitlement_code": request.entitlement_code,
                "asset_id": request.asset_id,
                "location_id": request.location_id,
                "on": request.on,
            },
        )
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        grants = [r for r in rows if r["entitlement_id"] is not None]
        return grants, tuple(rows[0]["catalog_packages"] or ()), bool(rows[0]["customer_known"])

    def _queried_many(self, requests: Sequence[CheckRequest]) -> list[_Found]:
        self._con.execute(
            "create or replace temp table check_requests (request_no integer, customer_id varchar,"
            " entitlement_code varchar, asset_id varchar, location_id varchar, checked_on date)"
        )
        # Columns as lists, unnested in one statement: one round trip for any number of requests.
        self._con.execute(
            "insert into check_requests"
            " (request_no, customer_id, entitlement_code, checked_on, asset_id, location_id)"
            " select unnest($1), unnest($2), unnest($3), unnest($4), unnest($5), unnest($6)",
            [
                list(range(len(requests))),
                [r.customer_id for r in requests],
                [r.entitlement_code for r in requests],
                [r.on for r in requests],
                [r.asset_id for r in requests],
                [r.location_id for r in requests],
            ],
        )
        # One big query: every core helps here (a check's one thread would halve its speed).
        self._con.execute("reset threads")
        try:
            cursor = self._con.execute(self._query(BATCH_QUERY))
            names = [d[0] for d in cursor.description][1:]
            rows = cursor.fetchall()
        finally:
            self._con.execute("set threads = 1")
        found: list[_Found] = [([], (), False) for _ in requests]
        for request_no, *values in rows:  # every request has at least one row
            row = dict(zip(names, values, strict=True))
            grants = found[request_no][0]
            if row["entitlement_id"] is not None:
                grants.append(row)
            found[request_no] = (grants, tuple(row["catalog_packages"] or ()), bool(row["customer_known"]))
        self._con.execute("drop table check_requests")
        return found

    def _indexed(self, request: CheckRequest) -> _Found:
        assert request.on is not None
        in_force = self._days.get(request.on)
        if in_force is None:
            self._fill_month(request.on)
            in_force = self._days[request.on]
        grants = []
        for grant in self._grants.get((request.customer_id, request.entitlement_code), ()):
            allowance = in_force.get(grant["entitlement_id"])
            grants.append(
                grant
                | {
                    # In force that day is having an allowance row for it: the macro's own rule.
                    "covers_date": allowance is not None,
                    # The analyses' scope rule: asset and site null on the grant, or equal.
                    "covers_asset": grant["asset_id"] is None or grant["asset_id"] == request.asset_id,
                    "covers_location": grant["location_id"] is None
                    or grant["location_id"] == request.location_id,
                }
                | (
                    NO_ALLOWANCE
                    if allowance is None
                    else dict(zip(ALLOWANCE_COLUMNS, allowance, strict=True))
                )
            )
        customers, packages = self._customers_and_packages()
        return grants, packages.get(request.entitlement_code, ()), request.customer_id in customers

    def _fill_month(self, day: date) -> None:
        """Index every grant, and the allowance of each grant in force on each day of day's month."""
        first = day.replace(day=1)
        days = [first + timedelta(days=n) for n in range(calendar.monthrange(day.year, day.month)[1])]
        self._con.execute("create temp table if not exists check_days (checked_on date)")
        self._con.execute("delete from check_days")
        self._con.execute("insert into check_days select unnest($1)", [days])
        cursor = self._con.execute(self._query(INDEX_QUERY))
        names = [d[0] for d in cursor.description]
        at = {name: n for n, name in enumerate(names)}
        grant_at = [at[c] for c in GRANT_COLUMNS]
        allowance_at = [at[c] for c in ALLOWANCE_COLUMNS]
        first_fill = not self._days
        filled: dict[date, dict[str, tuple[Any, ...]]] = {d: {} for d in days}
        shared: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # one tuple for equal allowances
        seen: set[str] = set()
        for row in cursor.fetchall():
            entitlement_id = row[at["entitlement_id"]]
            if first_fill and entitlement_id not in seen:  # every grant has at least one row
                seen.add(entitlement_id)
                key = (row[at["customer_id"]], row[at["entitlement_code"]])
                self._grants.setdefault(key, []).append(
                    dict(zip(GRANT_COLUMNS, [row[i] for i in grant_at], strict=True))
                )
            if row[at["checked_on"]] is not None:
                allowance = tuple(row[i] for i in allowance_at)
                filled[row[at["checked_on"]]][entitlement_id] = shared.setdefault(allowance, allowance)
        self._days |= filled

    def _aliases(self) -> dict[str, str]:
        """Other ids of an account (entitlements.serve.accounts), read once when a request names one
        that is not an account id."""
        if self._alias_map is None:
            from entitlements.serve.accounts import account_aliases

            self._alias_map = account_aliases(self._con)
        return self._alias_map

    def _customers_and_packages(self) -> tuple[frozenset[str], dict[str, tuple[str, ...]]]:
        """Account ids (marts.dim_customers) and, by code, the packages including it, ordered by code:
        the relations the batch analysis reads for customer_known and catalog_packages."""
        if self._catalog is None:
            customers = frozenset(
                r[0] for r in self._con.execute("select customer_id from marts.dim_customers").fetchall()
            )
            packages = {
                code: tuple(listed)
                for code, listed in self._con.execute(
                    "select entitlement_code, list(distinct package_code order by package_code)"
                    " from marts.dim_entitlement_catalog group by entitlement_code order by entitlement_code"
                ).fetchall()
            }
            self._catalog = (customers, packages)
        return self._catalog

    # --- the one assembly of an answer

    def _answer(
        self,
        request: CheckRequest,
        grants: list[dict[str, Any]],
        winner: dict[str, Any] | None,
        packages: tuple[str, ...],
    ) -> CheckAnswer:
        on = request.on
        assert on is not None
        reasons = self._reasons.get(winner["entitlement_id"], {}) if winner is not None else {}
        for g in grants:
            g["wins"] = g is winner
            beaten = winner is not None and g["covers"] and g is not winner
            g["beaten_by"] = winner["entitlement_id"] if beaten and winner is not None else None
            g["beaten_because"] = reasons.get(g["entitlement_id"]) if beaten else None
        base = {
            "customer_id": request.customer_id,
            "entitlement_code": request.entitlement_code,
            "on": on,
            "asset_id": request.asset_id,
            "location_id": request.location_id,
            "candidates": tuple(_candidate(g, on) for g in grants),
        }
        if winner is None:
            return CheckAnswer(
                **base,
                entitled=False,
                entitlement_id=None,
                contract_id=None,
                package_code=None,
                reason=_why_not(request.entitlement_code, grants, on, request.asset_id, request.location_id),
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

    def _load_reasons(self, winners: set[str]) -> None:
        """Why each winner beats the grants it beats, from fct_entitlement_precedence, kept per winner.

        Only for winners over several covering grants (rare), one query for all of them.
        """
        missing = sorted(w for w in winners if w not in self._reasons)
        if not missing:
            return
        for winner in missing:
            self._reasons[winner] = {}
        for winner, loser, reason in self._con.execute(
            "select winner_entitlement_id, loser_entitlement_id, reason from marts.fct_entitlement_precedence"
            " where list_contains($1, winner_entitlement_id)",
            [missing],
        ).fetchall():
            self._reasons[winner][loser] = reason

    def _resolve(self, request: CheckRequest) -> CheckRequest:
        asset_id, location_id = request.asset_id or None, request.location_id or None
        if (asset_id and len(asset_id) == 15) or (location_id and len(location_id) == 15):
            from entitlements.serve.accounts import full_record_id  # a 15-character Salesforce id

            asset_id = full_record_id(self._con, "dim_assets", "asset_id", asset_id)
            location_id = full_record_id(self._con, "dim_locations", "location_id", location_id)
        return CheckRequest(
            request.customer_id, request.entitlement_code, request.on or self.as_of, asset_id, location_id
        )

    def _query(self, name: str) -> str:
        if name not in self._sql:
            try:
                self._sql[name] = compiled_query(self._con, name)
            except MissingQueryError as exc:
                raise WarehouseBusyError(f"warehouse {self.warehouse}: {exc}") from exc
        return self._sql[name]

    def _warehouse_as_of(self) -> date:
        as_of = built_as_of(self._con)
        if as_of is None:
            raise WarehouseBusyError(
                f"warehouse {self.warehouse} has no as-of date (not built yet): run `entitlements build`"
                " or pass --on DATE"
            )
        return as_of

    def _validate(self, request: CheckRequest, *, known_customer: bool, known_code: bool) -> None:
        problems = []
        if not known_customer:
            ids = sorted(self._customers_and_packages()[0])
            problems.append(f"unknown customer {request.customer_id!r}{_suggest(request.customer_id, ids)}")
        if not known_code:
            codes = list(self._customers_and_packages()[1])
            problems.append(
                f"unknown entitlement code {request.entitlement_code!r}"
                f"{_suggest(request.entitlement_code, codes)} (codes: {', '.join(codes)})"
            )
        if problems:
            raise CheckInputError("; ".join(problems))


def _rank(grants: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Mark the covering grants and order them first; the winner, if any covers."""
    for g in grants:
        g["covers"] = bool(g["covers_date"] and g["covers_asset"] and g["covers_location"])
    # precedence_rank is unique per customer and code: the lowest covering rank wins
    grants.sort(key=lambda g: (not g["covers"], g["precedence_rank"], -g["valid_from"].toordinal()))
    return grants[0] if grants and grants[0]["covers"] else None


def _contested(ranked: Sequence[tuple[list[dict[str, Any]], dict[str, Any] | None]]) -> set[str]:
    """The winners that beat another covering grant (their reasons are needed)."""
    return {
        winner["entitlement_id"]
        for grants, winner in ranked
        if winner is not None and sum(g["covers"] for g in grants) > 1
    }


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
    with EntitlementChecker(warehouse, warm=False) as checker:
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
    """Answer every row of a requests CSV in one query; write one answer row per request, in order.

    `requests` has a header with customer_id and entitlement_code, and optionally asset_id,
    location_id and on (YYYY-MM-DD; empty: the warehouse's as-of date). A row that cannot be
    answered (unknown customer or code, bad date) gets an answer row with `error` naming the
    line and the problem, so every request is accounted for. A file that cannot be read as
    requests (a required column missing, a row with more or fewer fields than the header, text
    that is not UTF-8) raises CheckInputError naming the file, the line and the column, before
    anything is written.
    """
    requests, out = Path(requests), Path(out)
    rows = read_requests(requests)
    asked: list[CheckRequest] = []
    results: list[CheckAnswer | CheckInputError | None] = []
    for row in rows.values():
        try:
            asked.append(
                CheckRequest(
                    row["customer_id"],
                    row["entitlement_code"],
                    _batch_date(row.get("on")),
                    row.get("asset_id"),
                    row.get("location_id"),
                )
            )
            results.append(None)  # answered below, with the others
        except CheckInputError as exc:
            results.append(exc)
    with EntitlementChecker(warehouse, warm=False) as checker:
        answered = iter(checker.check_many(asked))
    counts = {"entitled": 0, "not_entitled": 0, "errors": 0}
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=BATCH_ANSWER_COLUMNS)
        writer.writeheader()
        for (line, row), result in zip(rows.items(), results, strict=True):
            answer = result or next(answered)
            answer_row: dict[str, Any] = {"line": line} | {
                c: row.get(c) or None for c in (*BATCH_REQUIRED, *BATCH_OPTIONAL)
            }
            if isinstance(answer, CheckInputError):
                counts["errors"] += 1
                answer_row["error"] = f"{requests}, line {line}: {answer}"
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


def read_requests(path: Path) -> dict[int, dict[str, str]]:
    """The rows of a requests CSV by line number: each value stripped, keyed by its header name.

    Raises CheckInputError naming the file, the line and the column when the file cannot be
    read as requests: not UTF-8, a required column missing or named twice, a row with more or
    fewer fields than the header (a value holding a comma without quotes, a quote left open).
    Blank lines are skipped.
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CheckInputError(_not_utf8(path, data, exc.start)) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip() for name in next(reader, [])]
    missing = [c for c in BATCH_REQUIRED if c not in header]
    if missing:
        raise CheckInputError(
            f"{path}, line 1: missing column {', '.join(missing)} (the header needs "
            f"{', '.join(BATCH_REQUIRED)}; optional: {', '.join(BATCH_OPTIONAL)})"
        )
    for n, name in enumerate(header):
        if name in (*BATCH_REQUIRED, *BATCH_OPTIONAL) and name in header[:n]:
            raise CheckInputError(f"{path}, line 1, column {n + 1}: column {name} named twice")
    rows: dict[int, dict[str, str]] = {}
    try:
        while True:
            start = reader.line_num + 1
            fields = next(reader, None)
            if fields is None:
                break
            if not "".join(fields).strip():
                continue
            if len(fields) != len(header):
                raise CheckInputError(_field_count(path, header, fields, start, reader.line_num))
            rows[reader.line_num] = {
                name: value.strip() for name, value in zip(header, fields, strict=True) if name
            }
    except csv.Error as exc:
        raise CheckInputError(f"{path}, line {reader.line_num}: {exc}") from None
    return rows


def _field_count(path: Path, header: list[str], fields: list[str], start: int, end: int) -> str:
    """A row with more or fewer fields than the header: where, and the likely cause."""
    if len(fields) > len(header):
        where = f"column {len(header) + 1}"
        problem = (
            f"{len(fields)} fields where the header has {len(header)} (a value holding a comma needs quotes)"
        )
    else:
        where = f"column {header[len(fields)] or len(fields) + 1}"
        problem = f"missing ({len(fields)} of the header's {len(header)} fields)"
    if start != end:  # one record over several lines: a quoted value ran on
        return f"{path}, line {start}, {where}: {problem}; the row runs on to line {end}: a quote left open?"
    return f"{path}, line {start}, {where}: {problem}"


def _not_utf8(path: Path, data: bytes, at: int) -> str:
    line_start = data.rfind(b"\n", 0, at) + 1
    line = data.count(b"\n", 0, at) + 1
    before = data[line_start:at].decode("utf-8", errors="replace")
    header = next(csv.reader([data.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace")]), [])
    index = len(next(csv.reader([before]), [""])) - 1  # the field the byte is in
    column = header[index].strip() if line > 1 and index < len(header) else str(index + 1)
    return (
        f"{path}, line {line}, column {column}: byte 0x{data[at]:02x} is not UTF-8 (save the file as UTF-8)"
    )


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
    candidate = dict(zip(CANDIDATE_COLUMNS, _candidate_values(grant), strict=True))
    candidate["why_not"] = None if grant["covers"] else _not_covering(grant, on)
    return candidate


def _not_covering(grant: dict[str, Any], on: date) -> str:
    """Why a grant does not cover the request: its dates first, then its scope."""
    if not grant["covers_date"]:
        if grant["valid_to"] is not None and grant["valid_to"] <= on:
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
    ended = [g for g in grants if g["valid_to"] is not None and g["valid_to"] <= on]
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
    import difflib  # only for a mistyped id or code

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
