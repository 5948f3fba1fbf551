"""A customer's entitlement statement: one self-contained HTML page a company can send its customer.

    from entitlements.serve.statement import write_statement
    write_statement(Path("data/warehouse.duckdb"), "C00001", Path("data/reports/statement_C00001.html"))

The page shows the customer's name and currency, the statement date, the entitlements in force that
day grouped by contract and package (what each covers, until when, its service level), use against
the limit in the current allowance period (used, limit, remaining; "Unlimited" where there is no
limit) with a chart of the share used, and the renewal dates of contracts not yet ended.

Sources: marts.fct_active_entitlements (or entitlements.serve.asof.active_entitlements for another date),
marts.fct_renewal_pipeline, and the customer's own account, contract, asset, site and catalog names
(marts.dim_customers, dim_contracts, dim_assets, dim_locations, dim_entitlement_catalog).
The renewal mart keeps terms ending at most renewal_lookback_days (365) before the warehouse's as-of
date, so a statement dated earlier than that omits contracts that ended in between.
Nothing internal (leakage, overrides, approvers, billing findings) is read. The warehouse is opened
read-only; the page holds no script and loads nothing (its chart is HTML bars).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import jinja2

from entitlements.serve.accounts import resolve_account
from entitlements.warehouse import built_as_of, connect_marts, table_exists

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAME = "statement.html.j2"

CONTRACT_TYPES = {
    "service_contract": "Service contract",
    "subscription": "Subscription",
    "warranty": "Warranty",
    "entitlement": "Entitlement",
}
DASH = "\u2013"  # en dash, for ranges
COVERAGE_HOURS = {"24x7": "24/7", "business_hours": "business hours"}
# Share of the allowance used -> tone of its bar (the template's colours): below 80 %, from 80 %,
# from 100 %.
TONES = (("over", 100), ("high", 80), ("ok", 0))


# --------------------------------------------------------------------------- errors


def _input_error(message: str) -> Exception:
    """entitlements.serve.check.CheckInputError (what the CLI reports as bad input), else ValueError."""
    try:
        from entitlements.serve.check import CheckInputError
    except ModuleNotFoundError as exc:
        if exc.name != "entitlements.serve.check":
            raise
        return ValueError(message)
    return CheckInputError(message)


# --------------------------------------------------------------------------- formatting


def format_date(value: date | None) -> str:
    """A date as the statement prints it: 1 Dec 2026."""
    return "" if value is None else f"{value.day} {value:%b %Y}"


def format_period(first: date | None, last: date | None) -> str:
    """An inclusive date range, compact, with en dashes: 1-31 Oct 2026, 1 Apr 2026 - 31 Mar 2027;
    "from 1 Jan 2026" with no last day (open-ended: an evergreen contract)."""
    if first is not None and last is None:
        return f"from {format_date(first)}"
    if first is None or last is None:
        return format_date(first or last)
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}{DASH}{format_date(last)}"
    if first.year == last.year:
        return f"{first.day} {first:%b} {DASH} {format_date(last)}"
    return f"{format_date(first)} {DASH} {format_date(last)}"


def format_quantity(value: Decimal | None) -> str:
    """A quantity as the statement prints it: 12,662 or 85.5; '' for none."""
    if value is None:
        return ""
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value.normalize():,f}"


def format_money(value: Decimal | None, currency: str | None) -> str:
    if value is None:
        return ""
    return f"{currency or ''} {value:,.2f}".strip()


def window_label(window: str) -> str:
    return {
        "0-30": "Within 30 days",
        "31-60": f"In 31{DASH}60 days",
        "61-90": f"In 61{DASH}90 days",
        "later": "In more than 90 days",
        "renewed": "Renewed",
        "expired_not_renewed": "Ended",
    }.get(window, window)


def renewal_window(days_to_expiry: int, renewed: bool) -> str:
    """The renewal window of fct_renewal_pipeline, for a date other than the warehouse's as-of."""
    if renewed:
        return "renewed"
    if days_to_expiry <= 0:
        return "expired_not_renewed"
    for bound, name in ((30, "0-30"), (60, "31-60"), (90, "61-90")):
        if days_to_expiry <= bound:
            return name
    return "later"


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else Decimal(str(round(value, 4)))
    return Decimal(str(value))


def _date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):  # also pandas.Timestamp
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, float) and math.isnan(value):
        return None
    if str(value) == "NaT":
        return None
    return date.fromisoformat(str(value)[:10])


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class EntitlementLine:
    contract_id: str
    contract_line_id: str
    package_code: str
    entitlement_code: str
    name: str
    unit: str | None
    service_level: str
    covers: str
    covers_detail: str
    valid_from: date
    valid_to: date | None  # exclusive; None: open-ended (an evergreen contract)
    period_start: date
    period_end: date | None  # exclusive; None: the whole of an open-ended term
    limit_quantity: Decimal | None
    used_quantity: Decimal
    remaining_quantity: Decimal | None

    @property
    def valid_through(self) -> date | None:
        return self.valid_to - timedelta(days=1) if self.valid_to else None

    @property
    def period_last_day(self) -> date | None:
        return self.period_end - timedelta(days=1) if self.period_end else None

    @property
    def unlimited(self) -> bool:
        return self.limit_quantity is None

    @property
    def pct_used(self) -> float | None:
        if self.limit_quantity is None:
            return None
        if self.limit_quantity == 0:
            return 100.0 if self.used_quantity > 0 else 0.0
        return float(self.used_quantity / self.limit_quantity * 100)

    @property
    def tone(self) -> str:
        pct = self.pct_used
        if pct is None:
            return "ok"
        return next(tone for tone, bound in TONES if pct >= bound)


@dataclass
class PackageGroup:
    code: str
    name: str
    lines: list[EntitlementLine] = field(default_factory=list)


@dataclass
class ContractGroup:
    contract_id: str
    contract_type: str
    start_date: date | None
    end_date: date | None  # exclusive
    packages: list[PackageGroup] = field(default_factory=list)
    title: str = ""  # what the customer calls it: the CRM's name, else the id
    reference: str | None = None  # its number and id, when the title is the name

    @property
    def last_day(self) -> date | None:
        return self.end_date - timedelta(days=1) if self.end_date else None


def contract_title(contract_id: str, contract: dict[str, Any]) -> tuple[str, str | None]:
    """(title, reference) of a contract as a customer knows it: its name, with its number and id
    beside it; the id alone when the CRM export gives no name."""
    name, number = _text(contract.get("contract_name")), _text(contract.get("contract_number"))
    if not name:
        return contract_id, f"No. {number}" if number else None
    return name, " · ".join(part for part in (f"No. {number}" if number else None, contract_id) if part)


@dataclass(frozen=True)
class Renewal:
    contract_id: str
    contract_type: str
    start_date: date
    end_date: date
    days_to_expiry: int
    window: str
    window_label: str
    annual_value: Decimal | None
    currency: str | None
    auto_renew: bool | None
    renewed_by_contract_id: str | None
    title: str = ""
    reference: str | None = None


@dataclass
class Statement:
    customer_id: str
    customer_name: str
    currency: str
    country: str | None
    statement_date: date
    contracts: list[ContractGroup]
    renewals: list[Renewal]

    @property
    def lines(self) -> list[EntitlementLine]:
        return [line for c in self.contracts for p in c.packages for line in p.lines]

    @property
    def limited_lines(self) -> list[EntitlementLine]:
        return [line for line in self.lines if not line.unlimited]


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def warehouse_as_of(con: duckdb.DuckDBPyConnection) -> date:
    """The date the marts answer for (warehouse.built_as_of)."""
    as_of = built_as_of(con)
    if as_of is None:
        raise _input_error("the warehouse has no built marts: run `entitlements run` or `build` first")
    return _date(as_of)


def _active_rows_on(warehouse: Path, customer_id: str, on: date) -> list[dict[str, Any]]:
    """Active entitlements on a date other than the warehouse's as-of date."""
    from entitlements.serve.asof import active_entitlements  # written alongside; imported when needed

    frame = active_entitlements(warehouse, on)
    frame = frame[frame["customer_id"] == customer_id]
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _lookup(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> dict[Any, dict[str, Any]]:
    out = {}
    for row in _rows(con, sql, params):
        out[next(iter(row.values()))] = row
    return out


def _catalog(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, str], dict[tuple[str, str], dict]]:
    packages: dict[str, str] = {}
    entitlements: dict[tuple[str, str], dict] = {}
    if table_exists(con, "marts", "dim_entitlement_catalog"):
        packages = dict(
            con.execute(
                "select distinct package_code, package_name from marts.dim_entitlement_catalog"
            ).fetchall()
        )
        for row in _rows(
            con,
            "select package_code, entitlement_code, entitlement_name, sla_response_hours, coverage_hours"
            " from marts.dim_entitlement_catalog",
        ):
            entitlements[(row["package_code"], row["entitlement_code"])] = row
    return packages, entitlements


def _service_level(term: dict | None) -> str:
    if not term:
        return ""
    parts = []
    hours = _decimal(term.get("sla_response_hours"))
    if hours is not None:
        parts.append(f"{format_quantity(hours)} h response")
    coverage = _text(term.get("coverage_hours"))
    if coverage:
        parts.append(COVERAGE_HOURS.get(coverage, coverage.replace("_", " ")))
    return ", ".join(parts)


ALL_ASSETS = "All your assets and sites"


def _covers(asset_id: str | None, location_id: str | None, assets: dict, sites: dict) -> tuple[str, str]:
    """What a grant covers: (main line, detail line)."""

    def site_name(loc: str | None) -> str | None:
        return (sites.get(loc) or {}).get("location_name") or loc

    if asset_id:
        asset = assets.get(asset_id) or {}
        product, serial = asset.get("product_code"), asset.get("serial_number")
        main = " · ".join(filter(None, [product, serial])) or asset_id
        where = site_name(location_id or asset.get("location_id"))
        detail = ", ".join(filter(None, [f"asset {asset_id}" if main != asset_id else None, where]))
        return main, detail
    if location_id:
        return f"All assets at {site_name(location_id)}", ""
    return ALL_ASSETS, ""


def load_statement(warehouse: Path, customer_id: str, on: date | None = None) -> Statement:
    """Everything the statement shows, read from the warehouse (read-only)."""
    warehouse = Path(warehouse)
    con = connect_marts(warehouse)
    try:
        account = None
        if table_exists(con, "marts", "dim_customers"):
            # any id of the account will do: a billing id, a 15-character Salesforce id
            customer_id = resolve_account(con, customer_id) or customer_id
            found = _rows(
                con,
                "select customer_id, customer_name, country, currency from marts.dim_customers"
                " where customer_id = ?",
                [customer_id],
            )
            account = found[0] if found else None
        if account is None:
            raise _input_error(f"unknown customer {customer_id!r}: no such account in {warehouse}")
        as_of = warehouse_as_of(con)
        statement_date = on or as_of
        if statement_date > as_of:
            raise _input_error(
                f"statement date {statement_date} is after the warehouse's as-of date {as_of}:"
                " use after that is not known yet"
            )
        active = None
        if statement_date == as_of:
            active = _rows(
                con, "select * from marts.fct_active_entitlements where customer_id = ?", [customer_id]
            )
        contracts = _lookup(
            con,
            "select contract_id, contract_type, start_date, end_date, contract_name, contract_number"
            " from marts.dim_contracts where customer_id = ?",
            [customer_id],
        )
        assets = _lookup(
            con,
            "select asset_id, product_code, serial_number, location_id from marts.dim_assets"
            " where customer_id = ?",
            [customer_id],
        )
        sites = _lookup(
            con,
            "select location_id, location_name from marts.dim_locations where customer_id = ?",
            [customer_id],
        )
        package_names, terms = _catalog(con)
        renewal_rows = _rows(
            con,
            "select contract_id, contract_type, start_date, end_date, days_to_expiry, renewal_window,"
            " annual_value, currency, auto_renew, renewed_by_contract_id"
            " from marts.fct_renewal_pipeline where customer_id = ? order by end_date, contract_id",
            [customer_id],
        )
    finally:
        con.close()
    if active is None:  # entitlements.serve.asof opens its own connection, after ours is closed
        active = _active_rows_on(warehouse, customer_id, statement_date)

    groups: dict[str, ContractGroup] = {}
    for row in active:
        package_code = str(row["package_code"])
        code = str(row["entitlement_code"])
        term = terms.get((package_code, code))
        covers = _covers(_text(row.get("asset_id")), _text(row.get("location_id")), assets, sites)
        line = EntitlementLine(
            contract_id=str(row["contract_id"]),
            contract_line_id=str(row["contract_line_id"]),
            package_code=package_code,
            entitlement_code=code,
            name=(term or {}).get("entitlement_name") or code,
            unit=_text(row.get("unit")),
            service_level=_service_level(term),
            covers=covers[0],
            covers_detail=covers[1],
            valid_from=_date(row["valid_from"]),
            valid_to=_date(row["valid_to"]),
            period_start=_date(row["period_start"]),
            period_end=_date(row["period_end"]),
            limit_quantity=_decimal(row.get("limit_quantity")),
            used_quantity=_decimal(row.get("used_quantity")) or Decimal(0),
            remaining_quantity=_decimal(row.get("remaining_quantity")),
        )
        contract = contracts.get(line.contract_id) or {}
        title, reference = contract_title(line.contract_id, contract)
        group = groups.setdefault(
            line.contract_id,
            ContractGroup(
                contract_id=line.contract_id,
                contract_type=CONTRACT_TYPES.get(contract.get("contract_type"), "Contract"),
                start_date=_date(contract.get("start_date")),
                end_date=_date(contract.get("end_date")),
                title=title,
                reference=reference,
            ),
        )
        package = next((p for p in group.packages if p.code == package_code), None)
        if package is None:
            package = PackageGroup(package_code, package_names.get(package_code) or package_code)
            group.packages.append(package)
        package.lines.append(line)

    for group in groups.values():
        group.packages.sort(key=lambda p: p.name)
        for package in group.packages:
            package.lines.sort(key=lambda ln: (ln.name, ln.covers, ln.contract_line_id))
    ordered = sorted(groups.values(), key=lambda g: (g.start_date or date.min, g.contract_id))

    renewals = []
    for row in renewal_rows:
        end = _date(row["end_date"])
        if statement_date == as_of:
            days, window = int(row["days_to_expiry"]), str(row["renewal_window"])
        else:
            days = (end - statement_date).days
            window = renewal_window(days, row["renewed_by_contract_id"] is not None)
        if days <= 0 or window == "expired_not_renewed":
            continue  # already ended: not a renewal date any more
        title, reference = contract_title(str(row["contract_id"]), contracts.get(row["contract_id"]) or {})
        renewals.append(
            Renewal(
                contract_id=str(row["contract_id"]),
                contract_type=CONTRACT_TYPES.get(row["contract_type"], "Contract"),
                start_date=_date(row["start_date"]),
                end_date=end,
                days_to_expiry=days,
                window=window,
                window_label=window_label(window),
                annual_value=_decimal(row["annual_value"]),
                currency=_text(row["currency"]),
                auto_renew=row["auto_renew"],
                renewed_by_contract_id=_text(row["renewed_by_contract_id"]),
                title=title,
                reference=reference,
            )
        )

    return Statement(
        customer_id=customer_id,
        customer_name=_text(account["customer_name"]) or customer_id,
        currency=_text(account["currency"]) or "",
        country=_text(account["country"]),
        statement_date=statement_date,
        contracts=ordered,
        renewals=renewals,
    )


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class UsageBar:
    """One limited allowance in the chart: its share used, drawn as a bar of `width` % of the track."""

    label: str
    contract: str
    tone: str
    width: float  # of the track, whose right end is the chart's scale_max %
    text: str


@dataclass(frozen=True)
class UsageChart:
    bars: list[UsageBar]
    limit_at: float  # where 100 % falls on the track, in % of it


def usage_chart(statement: Statement) -> UsageChart | None:
    """The share of each limited allowance used, fullest first: plain HTML bars (the template's),
    so the page needs no script and stays a few kilobytes."""
    lines = sorted(statement.limited_lines, key=lambda ln: ln.pct_used or 0, reverse=True)
    if not lines:
        return None
    titles = {c.contract_id: c.title for c in statement.contracts}
    scale_max = max(100.0, *(ln.pct_used or 0.0 for ln in lines))
    bars = [
        UsageBar(
            label=ln.name + ("" if ln.covers == ALL_ASSETS else f" · {ln.covers}"),
            contract=titles.get(ln.contract_id, ln.contract_id),
            tone=ln.tone,
            width=round(100 * (ln.pct_used or 0.0) / scale_max, 2),
            text=f"{ln.pct_used or 0:.0f} % ({format_quantity(ln.used_quantity)} of"
            f" {format_quantity(ln.limit_quantity)}{' ' + ln.unit if ln.unit else ''})",
        )
        for ln in lines
    ]
    return UsageChart(bars, round(100 * 100 / scale_max, 2))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["date"] = format_date
    env.filters["qty"] = format_quantity
    env.filters["money"] = format_money
    env.globals["period"] = format_period
    env.globals["one_day"] = timedelta(days=1)
    return env


def render_statement(statement: Statement) -> str:
    """The statement as one self-contained HTML document."""
    next_renewal = next((r for r in statement.renewals if r.window != "renewed"), None)
    return (
        _environment()
        .get_template(TEMPLATE_NAME)
        .render(
            s=statement,
            chart=usage_chart(statement),
            next_renewal=next_renewal,
            near_limit=[ln for ln in statement.limited_lines if ln.tone != "ok"],
        )
    )


def write_statement(warehouse: Path, customer_id: str, out: Path, on: date | None = None) -> Path:
    """Write `customer_id`'s entitlement statement for `on` (default: the warehouse's as-of date) to `out`.

    Raises entitlements.serve.check.CheckInputError (ValueError until that module exists) for a customer
    the warehouse does not know, FileNotFoundError for a missing warehouse. Returns `out`.
    """
    statement = load_statement(Path(warehouse), customer_id, on)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_statement(statement), encoding="utf-8")
    return out
