"""The user's configuration file, entitlements.yml: every business fact a company differs on.

One YAML file per export (``entitlements.yml`` at the export's top level, or ``--config FILE``),
documented key by key in docs/configuration.md. It is read and checked whole before anything lands:
each problem names the file, the line and the key (``entitlements check-config FILE``). What it
says reaches the ingest (how vendor fields are read: meters, identity keys, classification,
evidence references, CRM links) and dbt (tolerances, windows, precedence, currency) through
:meth:`Config.dbt_vars`; nobody edits dbt_project.yml or SQL.

A run records the configuration it used in the warehouse (audit.configuration), so later dbt
commands on that warehouse (build, docs, migrate) use the same rules without being told again.
"""

from __future__ import annotations

import functools
import json
import math
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from entitlements import audit

CONFIG_FILE = "entitlements.yml"

# How a meter's events make a period's use (int_usage_events_attributed): the values add up; each
# event counts 1; the highest reading; the last reading; how many different values.
AGGREGATIONS = ("sum", "count", "max", "latest", "unique_count")
CUSTOMER_KEYS = ("crm_account", "billing_customer", "mapping")
PRECEDENCE_RULES = ("most_generous", "most_specific", "latest_start")
ENTITLEMENT_TYPES = ("product", "service", "feature", "time_based")
LINE_PRICES = ("per_term", "annual", "monthly")
USAGE_MATCHES = ("subscription_item", "customer_meter_month")  # int_invoice_line_matches
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A path into an event or a record: dot-separated keys (data.usage.calls).
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*")
_CODE = re.compile(r"[A-Z][A-Z0-9_]*")
_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)|24:00")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ConfigError(ValueError):
    """The configuration file has problems: each names the file, line and key."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path, self.problems = path, problems
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        super().__init__(
            f"{path}: the configuration has {count}, so nothing was read:\n"
            + "".join(f"  - {p}\n" for p in problems)
            + "Fix the file (docs/configuration.md documents every key) and run again;"
            " `entitlements check-config FILE` checks it on its own."
        )


@dataclass(frozen=True)
class Meter:
    """One meter: which usage events it counts and how (docs/configuration.md, meters)."""

    code: str  # the catalog entitlement code its usage consumes (API_CALLS)
    event_types: tuple[str, ...]  # the events' type values it takes; empty: every event
    value: str | None  # path of the quantity (unique_count: of what is counted); None with count
    aggregation: str  # sum | count | max | latest | unique_count (AGGREGATIONS)


@dataclass(frozen=True)
class UsageEvents:
    """Where the fields every usage event shares are (CloudEvents names by default)."""

    event_id: tuple[str, ...] = ("id",)  # paths joined with "|": together they identify an event
    time: str = "time"
    type: str = "type"
    customer: str = "subject"
    # What the customer path holds: crm_account | billing_customer | mapping.
    customer_key: str = "crm_account"
    # When the producer recorded the event: of several deliveries, the earliest recorded is kept.
    recorded_time: str | None = None


@dataclass(frozen=True)
class Config:
    path: Path | None
    dbt: dict[str, Any] = field(default_factory=dict)  # dbt vars the file sets
    meters: tuple[Meter, ...] = ()
    usage: UsageEvents = field(default_factory=UsageEvents)
    billing_customer_account_key: str | None = None  # a Stripe customer's metadata key naming its CRM account
    billable_field: str | None = None  # the CRM field that tells customer-pay deliveries (Case Type)
    billable_values: tuple[str, ...] = ()
    covered_values: tuple[str, ...] = ()
    evidence: tuple[
        tuple[str, str], ...
    ] = ()  # ordered (strategy, argument): metadata_key | description_pattern
    renewal_link_field: str = "ParentServiceContractId"
    contract_line_price: str = "per_term"
    ignore: tuple[str, ...] = ()  # export files not to read: glob patterns (a Data Export's other objects)

    def dbt_vars(self) -> dict[str, Any]:
        return dict(self.dbt)

    def fingerprint(self) -> str:
        """A short stable hash of everything the file says (recorded with each load it shaped)."""
        import hashlib

        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        out = asdict(self)
        out["path"] = str(self.path) if self.path else None
        return out


DEFAULT = Config(None)


# --------------------------------------------------------------------------------------- reading


def find_config(export_dir: Path | None, explicit: Path | None) -> Path | None:
    """--config FILE, else entitlements.yml at the export's top level, else none."""
    if explicit is not None:
        return Path(explicit)
    if export_dir is not None and (Path(export_dir) / CONFIG_FILE).is_file():
        return Path(export_dir) / CONFIG_FILE
    return None


def load_config(path: Path | None) -> Config:
    """Read and check a configuration file; None gives the defaults. Raises ConfigError."""
    if path is None:
        return DEFAULT
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, ["the file does not exist"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [f"the file cannot be read ({exc})"]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(path, [f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"]) from None
    reader = _Reader(path)
    data = reader.value(node, ()) if node is not None else {}
    config = reader.config(data)
    if reader.problems:
        raise ConfigError(path, reader.problems)
    return config


class _Reader:
    """Turns the YAML node tree into a Config, collecting every problem with its line and key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []
        self.dbt_extra: dict[str, Any] = {}  # dbt vars read inside a section
        self.lines: dict[tuple[str, ...], int] = {}
        self.unreadable: set[tuple[str, ...]] = set()  # keys whose value could not be read (said once)

    # -- the node tree, with each key's line
    def value(self, node: yaml.Node, at: tuple[str, ...]) -> Any:
        self.lines.setdefault(at, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in out:
                    self.problem((*at, key), "is given twice", line=key_node.start_mark.line + 1)
                self.lines[(*at, key)] = key_node.start_mark.line + 1
                out[key] = self.value(value_node, (*at, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item, (*at, str(i))) for i, item in enumerate(node.value)]
        if node.tag == "tag:yaml.org,2002:str":
            return node.value
        try:
            return yaml.SafeLoader("").construct_object(node)
        except (yaml.YAMLError, ValueError) as exc:  # an unknown tag (!custom), or !!int three
            problem = getattr(exc, "problem", None) or exc
            self.problem(at, f"is not a valid value ({problem})", line=node.start_mark.line + 1)
            self.unreadable.add(at)
            return None

    def problem(self, at: tuple[str, ...], message: str, line: int | None = None) -> None:
        if at in self.unreadable:
            return
        line = line or self.lines.get(at) or self._nearest_line(at)
        key = ".".join(at) or "(top level)"
        self.problems.append(f"line {line}, key {key}: {message}")

    def _nearest_line(self, at: tuple[str, ...]) -> int:
        while at and at not in self.lines:
            at = at[:-1]
        return self.lines.get(at, 1)

    # -- typed getters: each returns the default (and records a problem) for a wrong value
    def section(self, data: Any, at: tuple[str, ...], known: tuple[str, ...]) -> dict[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.problem(at, f"must be a mapping of keys ({', '.join(known)})")
            return {}
        for key in data:
            if key not in known:
                near = [k for k in known if k.replace("_", "") == key.replace("_", "").lower()]
                hint = f"; did you mean {near[0]}?" if near else f" (known keys: {', '.join(known)})"
                self.problem((*at, key), f"unknown key{hint}")
        return data

    def number(
        self, data: dict, at: tuple[str, ...], key: str, *, minimum: float = 0, integer: bool = False
    ) -> Any:
        if key not in data:
            return None
        value = data[key]
        kind = int if integer else (int, float)
        if (
            isinstance(value, bool)
            or not isinstance(value, kind)
            or not math.isfinite(value)
            or value < minimum
        ):
            what = "a whole number" if integer else "a number"
            self.problem((*at, key), f"must be {what} of at least {minimum}, not {value!r}")
            return None
        return value

    def choice(
        self, data: dict, at: tuple[str, ...], key: str, choices: tuple[str, ...], default: str
    ) -> str:
        value = data.get(key, default)
        if value not in choices:
            self.problem((*at, key), f"must be one of {', '.join(choices)}, not {value!r}")
            return default
        return value

    def text(
        self, data: dict, at: tuple[str, ...], key: str, pattern: re.Pattern | None = None, what: str = ""
    ) -> str | None:
        if key not in data or data[key] is None:
            return None
        value = data[key]
        if not isinstance(value, str) or not value.strip() or (pattern and not pattern.fullmatch(value)):
            self.problem((*at, key), f"must be {what or 'text'}, not {value!r}")
            return None
        return value

    def texts(
        self,
        data: dict,
        at: tuple[str, ...],
        key: str,
        check: Callable[[str], bool] = bool,
        what: str = "text",
    ) -> tuple[str, ...]:
        """A text or a list of texts."""
        if key not in data or data[key] is None:
            return ()
        value = data[key]
        items = value if isinstance(value, list) else [value]
        out = []
        for i, item in enumerate(items):
            where = (*at, key, str(i)) if isinstance(value, list) else (*at, key)
            if not isinstance(item, str | int) or isinstance(item, bool) or not check(str(item)):
                self.problem(where, f"must be {what}, not {item!r}")
            else:
                out.append(str(item))
        return tuple(out)

    def path_list(self, data: dict, at: tuple[str, ...], key: str) -> tuple[str, ...]:
        return self.texts(data, at, key, lambda v: bool(_PATH.fullmatch(v)), "a field path (data.calls)")

    # -- the file
    def config(self, data: Any) -> Config:
        top = self.section(
            data,
            (),
            (
                "version",
                "reporting_currency",
                "tolerances",
                "windows",
                "precedence",
                "peak_units",
                "usage_events",
                "meters",
                "identity",
                "service_deliveries",
                "evidence",
                "crm",
                "ignore",
            ),
        )
        if top.get("version", 1) != 1:
            self.problem(("version",), f"this project reads version 1 files, not {top.get('version')!r}")
        dbt: dict[str, Any] = {}
        currency = self.text(top, (), "reporting_currency", re.compile(r"[A-Z]{3}"), "an ISO 4217 code (USD)")
        if currency:
            dbt["reporting_currency"] = currency
        dbt |= self._tolerances(top.get("tolerances"))
        dbt |= self._windows(top.get("windows"))
        if "precedence" in top:
            dbt["precedence_rules"] = self._precedence(top["precedence"])
        if "peak_units" in top:
            dbt["peak_units"] = list(self.texts(top, (), "peak_units", what="a unit name (seats)"))
        usage = self._usage_events(top.get("usage_events"))
        meters = self._meters(top.get("meters"))
        identity = self.section(top.get("identity"), ("identity",), ("billing_customer_metadata_key",))
        deliveries = self._deliveries(top.get("service_deliveries"))
        dbt |= {k: v for k, v in self.dbt_extra.items() if v is not None}
        evidence = self._evidence(top.get("evidence"))
        crm = self.section(top.get("crm"), ("crm",), ("renewal_link_field", "contract_line_price"))
        return Config(
            path=self.path,
            dbt=dbt,
            meters=meters,
            usage=usage,
            billing_customer_account_key=self.text(
                identity, ("identity",), "billing_customer_metadata_key", _FIELD, "a metadata key name"
            ),
            billable_field=deliveries[0],
            billable_values=deliveries[1],
            covered_values=deliveries[2],
            evidence=evidence,
            renewal_link_field=self.text(crm, ("crm",), "renewal_link_field", _FIELD, "a field's API name")
            or "ParentServiceContractId",
            contract_line_price=self.choice(crm, ("crm",), "contract_line_price", LINE_PRICES, "per_term"),
            ignore=self.texts(
                top, (), "ignore", lambda v: bool(v.strip()), "a file name pattern (Opportunity*)"
            ),
        )

    def _tolerances(self, data: Any) -> dict[str, Any]:
        at = ("tolerances",)
        section = self.section(
            data, at, ("under_billed_amount", "under_billed_percent", "premium_response_hours")
        )
        names = {
            "under_billed_amount": "under_billed_tolerance_amount",
            "under_billed_percent": "under_billed_tolerance_pct",
            "premium_response_hours": "premium_response_hours",
        }
        return {names[k]: v for k in names if (v := self.number(section, at, k)) is not None}

    def _windows(self, data: Any) -> dict[str, Any]:
        at = ("windows",)
        keys = ("renewal_lookback_days", "recoverable_billing_window_days", "underuse_periods")
        section = self.section(data, at, keys)
        return {k: v for k in keys if (v := self.number(section, at, k, minimum=1, integer=True)) is not None}

    def _precedence(self, data: Any) -> dict[str, str]:
        at = ("precedence",)
        section = self.section(data, at, ENTITLEMENT_TYPES)
        return {t: self.choice(section, at, t, PRECEDENCE_RULES, "most_generous") for t in ENTITLEMENT_TYPES}

    def _usage_events(self, data: Any) -> UsageEvents:
        at = ("usage_events",)
        keys = ("event_id", "time", "type", "customer", "recorded_time")
        section = self.section(data, at, (*keys, "customer_key"))
        default = UsageEvents()
        paths = {k: self.path_list(section, at, k) for k in keys}
        for key in keys[1:]:
            if len(paths[key]) > 1:
                self.problem((*at, key), "must be one field path, not a list")
        return UsageEvents(
            event_id=paths["event_id"] or default.event_id,
            time=paths["time"][0] if paths["time"] else default.time,
            type=paths["type"][0] if paths["type"] else default.type,
            customer=paths["customer"][0] if paths["customer"] else default.customer,
            customer_key=self.choice(section, at, "customer_key", CUSTOMER_KEYS, default.customer_key),
            recorded_time=paths["recorded_time"][0] if paths["recorded_time"] else None,
        )

    def _meters(self, data: Any) -> tuple[Meter, ...]:
        if data is None:
            return ()
        if not isinstance(data, dict) or not data:
            self.problem(("meters",), "must map each entitlement code (API_CALLS) to its meter")
            return ()
        meters, taken = [], {}
        for code, spec in data.items():
            at = ("meters", code)
            if not _CODE.fullmatch(code):
                self.problem(at, "a meter is named by its catalog entitlement code, upper case (API_CALLS)")
            section = self.section(spec, at, ("event_type", "value", "aggregation"))
            aggregation = self.choice(section, at, "aggregation", AGGREGATIONS, "sum")
            value = self.text(section, at, "value", _PATH, "a field path (data.calls)")
            if value is None and aggregation != "count" and section.get("value") is None:
                self.problem(at, "needs value (the path of the quantity), or aggregation: count")
            types = self.texts(section, at, "event_type", what="an event type")
            for event_type in types:
                if event_type in taken:
                    self.problem(
                        (*at, "event_type"),
                        f"{event_type!r} is already counted by meter {taken[event_type]}",
                    )
                taken[event_type] = code
            meters.append(Meter(code, types, value, aggregation))
        if len(meters) > 1 and any(not m.event_types for m in meters):
            self.problem(
                ("meters",),
                "a meter without event_type takes every event: with several meters, give each its event_type",
            )
        aggregated = {
            m.code: m.aggregation for m in meters if m.aggregation in ("max", "latest", "unique_count")
        }
        if aggregated:
            self.dbt_extra["meter_aggregations"] = aggregated
        return tuple(meters)

    def _deliveries(self, data: Any) -> tuple[str | None, tuple[str, ...], tuple[str, ...]]:
        at = ("service_deliveries",)
        section = self.section(data, at, ("billable", "business_hours", "exclude_when"))
        if section.get("business_hours") is not None:
            self.dbt_extra["business_hours"] = self._business_hours(section["business_hours"])
        if "exclude_when" in section:
            listed = isinstance(section["exclude_when"], list)
            kept = []
            for i, condition in enumerate(self.texts(section, at, "exclude_when", what="a condition (SQL)")):
                if problem := _condition_problem(condition):
                    self.problem((*at, "exclude_when", str(i)) if listed else (*at, "exclude_when"), problem)
                else:
                    kept.append(condition)
            self.dbt_extra["delivery_exclusions"] = kept
        billable = self.section(
            section.get("billable"), (*at, "billable"), ("field", "customer_pay", "covered")
        )
        sub = (*at, "billable")
        name = self.text(billable, sub, "field", _FIELD, "a field's API name (Type)")
        pay = self.texts(billable, sub, "customer_pay", what="a picklist value")
        covered = self.texts(billable, sub, "covered", what="a picklist value")
        if billable and billable.get("field") is None:
            self.problem(sub, "needs field: the field whose value tells a customer-pay delivery")
        if name and not pay:
            self.problem(sub, "needs customer_pay: the values of the field that mean the customer pays")
        both = set(pay) & set(covered)
        if both:
            self.problem(
                (*sub, "covered"), f"{', '.join(sorted(both))} cannot be both customer_pay and covered"
            )
        return name, pay, covered

    def _business_hours(self, data: Any) -> dict[str, Any] | None:
        """{days: [mon, ...], from: "08:00", to: "18:00", time_zone: Europe/Berlin} -> the dbt var."""
        at = ("service_deliveries", "business_hours")
        section = self.section(data, at, ("days", "from", "to", "time_zone"))
        days = self.texts(section, at, "days", lambda d: d.lower()[:3] in WEEKDAYS, "a weekday (mon .. sun)")
        minutes = {}
        for key in ("from", "to"):
            value = section.get(key)
            match = (
                re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)|24:00", str(value)) if value is not None else None
            )
            if not match:
                self.problem((*at, key), f'must be a time of day as "HH:MM" (quoted), not {value!r}')
            else:
                minutes[key] = 1440 if value == "24:00" else int(match[1]) * 60 + int(match[2])
        if len(minutes) == 2 and minutes["from"] >= minutes["to"]:
            self.problem((*at, "to"), "must be later than from (hours that span midnight are not supported)")
        zone = self.text(section, at, "time_zone", what="an IANA time zone name (Europe/Berlin)")
        if zone is not None:
            try:
                zoneinfo.ZoneInfo(zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                self.problem(
                    (*at, "time_zone"), f"is not a known IANA time zone ({zone!r}; e.g. Europe/Berlin)"
                )
                zone = None
        if not days or len(minutes) < 2 or zone is None:
            if not days and "days" not in section:
                self.problem(at, "needs days, from, to and time_zone")
            return None
        return {
            "days": sorted({WEEKDAYS.index(d.lower()[:3]) + 1 for d in days}),
            "start_minute": minutes["from"],
            "end_minute": minutes["to"],
            "time_zone": zone,
        }

    def _evidence(self, data: Any) -> tuple[tuple[str, str], ...]:
        at = ("evidence",)
        section = self.section(data, at, ("invoice_line_reference", "usage_line_match"))
        if "usage_line_match" in section:
            strategies = self.texts(
                section, at, "usage_line_match", lambda v: v in USAGE_MATCHES, " or ".join(USAGE_MATCHES)
            )
            if not strategies or len(set(strategies)) < len(strategies):
                self.problem((*at, "usage_line_match"), "must list each strategy once, at least one")
            self.dbt_extra["usage_line_match"] = list(strategies)
        items = section.get("invoice_line_reference")
        if items is None:
            return ()
        at = (*at, "invoice_line_reference")
        if not isinstance(items, list):
            self.problem(
                at, "must be a list of strategies, tried in order (metadata_key, description_pattern)"
            )
            return ()
        out = []
        for i, item in enumerate(items):
            where = (*at, str(i))
            if not isinstance(item, dict) or len(item) != 1:
                self.problem(
                    where, "each strategy is one key: metadata_key: NAME or description_pattern: REGEX"
                )
                continue
            ((kind, argument),) = item.items()
            if kind == "metadata_key":
                if not isinstance(argument, str) or not _FIELD.fullmatch(argument):
                    self.problem((*where, kind), f"must be a metadata key name, not {argument!r}")
                    continue
            elif kind == "description_pattern":
                problem = _pattern_problem(argument)
                if problem:
                    self.problem((*where, kind), problem)
                    continue
            else:
                self.problem((*where, kind), "unknown strategy (known: metadata_key, description_pattern)")
                continue
            out.append((kind, argument))
        return tuple(out)


# The columns an exclusion condition may use: a delivery's row in int_service_deliveries.
DELIVERY_COLUMNS = {
    "delivery_id": "VARCHAR",
    "delivery_number": "VARCHAR",
    "delivery_type": "VARCHAR",
    "customer_id": "VARCHAR",
    "asset_id": "VARCHAR",
    "location_id": "VARCHAR",
    "service_code": "VARCHAR",
    "billing_type": "VARCHAR",
    "priority": "VARCHAR",
    "delivery_status": "VARCHAR",
    "is_after_hours": "BOOLEAN",
    "response_hours": "DECIMAL(9, 2)",
    "created_at": "TIMESTAMP",
}


def _condition_problem(condition: str) -> str | None:
    """Why an exclusion condition cannot be used, or None: one boolean expression over a delivery's
    columns (no statements, comments or subqueries), checked by DuckDB on an empty row."""
    import duckdb

    if re.search(r";|--|/\*|\bselect\b|\{|\}", condition, re.IGNORECASE):
        return "must be one expression: no ';', comments, braces or subqueries"
    row = ", ".join(f"NULL::{t} AS {c}" for c, t in DELIVERY_COLUMNS.items())
    try:
        with duckdb.connect() as con:
            kind = con.execute(f"SELECT typeof(({condition})) FROM (SELECT {row}) AS delivery").fetchall()[0][
                0
            ]
    except duckdb.Error as exc:
        detail = str(exc).splitlines()[0]
        return (
            f"is not a condition on a delivery's columns ({detail}; columns: {', '.join(DELIVERY_COLUMNS)})"
        )
    if kind != "BOOLEAN":
        return f"must be true or false for a delivery, not a {kind} (compare it: priority = 'Internal')"
    return None


def _pattern_problem(argument: Any) -> str | None:
    """Why a description pattern cannot be used, or None. It must capture the reference in one group."""
    if not isinstance(argument, str) or not argument:
        return f"must be a regular expression, not {argument!r}"
    try:
        compiled = re.compile(argument)
    except re.error as exc:
        return f"is not a valid regular expression ({exc})"
    if compiled.groups != 1:
        return f"must have exactly one capture group (the reference), it has {compiled.groups}: {argument!r}"
    if "'" in argument:
        return "must not contain a single quote"
    import duckdb  # the pattern runs in DuckDB (RE2): lookarounds and backreferences are not RE2

    try:
        duckdb.connect().execute("SELECT regexp_extract('', ?, 1)", [argument]).fetchall()
    except duckdb.Error as exc:
        return f"is not a regular expression DuckDB (RE2) reads ({str(exc).splitlines()[0]})"
    return None


# ------------------------------------------------------------------------------------ recording


def describe(config: Config) -> list[str]:
    """What a configuration sets, a line each (check-config prints it)."""
    lines = [f"dbt var {name}: {json.dumps(value)}" for name, value in sorted(config.dbt.items())]
    events = config.usage
    for meter in config.meters:
        types = ", ".join(meter.event_types) or "every event"
        value = "1 per event" if meter.aggregation == "count" else f"{meter.aggregation} of {meter.value}"
        lines.append(f"meter {meter.code}: events of type {types} ({events.type}); {value}")
    if config.meters:
        lines.append(
            f"usage events: id {' | '.join(events.event_id)}, time {events.time},"
            f" customer {events.customer} ({events.customer_key})"
            + (f", recorded time {events.recorded_time}" if events.recorded_time else "")
        )
    if config.billing_customer_account_key:
        lines.append(f"billing customer -> CRM account: metadata.{config.billing_customer_account_key}")
    if config.billable_field:
        lines.append(
            f"customer-pay deliveries: {config.billable_field} in {', '.join(config.billable_values)}"
            + (f"; covered: {', '.join(config.covered_values)}" if config.covered_values else "")
        )
    for kind, argument in config.evidence:
        lines.append(f"invoice line reference: {kind} {argument}")
    lines.append(
        f"renewal link: {config.renewal_link_field}; contract line price: {config.contract_line_price}"
    )
    if config.ignore:
        lines.append(f"files not read: {', '.join(config.ignore)}")
    return lines


# ------------------------------------------------------------------------------------ recording

CONFIG_TABLE = audit.table("configuration")


def record_config(con: Any, config: Config) -> None:
    """Keep the configuration an ingest used in the warehouse, when it differs from the last one;
    the last one recorded is the one every later dbt command applies (recorded_dbt_vars)."""
    audit.ensure(con, "configuration")
    last = con.execute(f"SELECT fingerprint FROM {CONFIG_TABLE} ORDER BY recorded_at DESC LIMIT 1").fetchall()
    if last and last[0][0] == config.fingerprint():
        return
    con.execute(
        f"INSERT INTO {CONFIG_TABLE} VALUES (now()::TIMESTAMP, ?, ?, ?)",
        [str(config.path) if config.path else None, config.fingerprint(), json.dumps(config.as_dict())],
    )


@functools.cache
def project_dbt_vars() -> dict[str, Any]:
    """The dbt vars' defaults: dbt_project.yml, their one definition."""
    from entitlements.warehouse import DBT_PROJECT_DIR

    return yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]


def effective_dbt_var(warehouse: Path, name: str) -> Any:
    """A dbt var as the warehouse's last build saw it: the recorded configuration's, else the default."""
    return recorded_dbt_vars(warehouse).get(name, project_dbt_vars()[name])


def recorded_dbt_vars(warehouse: Path) -> dict[str, Any]:
    """The dbt vars of the configuration last recorded in the warehouse ({} when none is)."""
    from entitlements.warehouse import connect

    if not Path(warehouse).exists():
        return {}
    with connect(warehouse, read_only=True) as con:
        exists = con.execute(
            "SELECT count(*) FROM duckdb_tables()"
            " WHERE schema_name = 'audit' AND table_name = 'configuration'"
        ).fetchall()[0][0]
        if not exists:
            return {}
        rows = con.execute(
            f"SELECT settings FROM {CONFIG_TABLE} ORDER BY recorded_at DESC LIMIT 1"
        ).fetchall()
    return json.loads(rows[0][0])["dbt"] if rows else {}
