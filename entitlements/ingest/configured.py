"""The shapes as the user's configuration (entitlements.yml, entitlements/config.py) adjusts them.

The built-in shapes read each vendor's documented fields with this project's defaults; a company
that keeps a fact elsewhere says so in its configuration, and the shapes below read it from there:

- meters: usage events are read by the declared meters (event type, value path, event id, time,
  customer), replacing the built-in CloudEvents and metering shapes;
- identity: a billing customer's CRM account from a metadata key; billing files then keep the
  billing system's customer id, which dbt resolves (int_customer_identities);
- classification: which CRM field and values make a case or work order customer-pay;
- evidence: where an invoice line names the case or work order it bills;
- CRM links: the field that makes a service contract the renewal of another, and whether a
  contract line's price is for its whole term or a year.

Every expression is built from validated names (config.py), and values are quoted.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from entitlements.config import Config
from entitlements.ingest._sql import quote_ident, quote_literal
from entitlements.ingest.adapters import all_shapes, salesforce, stripe, usage
from entitlements.ingest.shapes import Lookup, Shape

METER_EVENT_KIND = "meter_event_type"  # mapping rows the meters add: event type -> meter code


def configured_shapes(config: Config) -> tuple[Shape, ...]:
    """Every shape, each adjusted by the configuration."""
    shapes = [s for s in all_shapes() if not (config.meters and s in usage.SHAPES)]
    if config.meters:
        shapes.append(meter_events_shape(config))
    return tuple(_adjust(shape, config) for shape in shapes)


def meter_rows(config: Config) -> tuple[tuple[str, str, str], ...]:
    """The meters' event types as mapping rows (kind meter_event_type), so an event no meter
    counts is reported like an unmapped id: refused, or quarantined with --quarantine-unmapped."""
    return tuple((METER_EVENT_KIND, t, m.code) for m in config.meters for t in m.event_types)


def _path(path: str, fields: dict[str, str]) -> str:
    """SQL text of a dotted path into a record; records the top-level field it reads."""
    top, *rest = path.split(".")
    if not rest:
        fields.setdefault(top, "VARCHAR")
        return quote_ident(top)
    fields[top] = "JSON"
    json_path = "$." + ".".join(f'"{part}"' for part in rest)
    return f"json_extract_string({quote_ident(top)}, {quote_literal(json_path)})"


def meter_events_shape(config: Config) -> Shape:
    events = config.usage
    fields: dict[str, str] = {}
    event_id = " || '|' || ".join(_path(p, fields) for p in events.event_id)
    time = _path(events.time, fields)
    customer = _path(events.customer, fields)
    typed = [m for m in config.meters if m.event_types]
    type_expr = _path(events.type, fields) if typed else None
    quantity_cases = []
    distinct_cases = []
    for meter in config.meters:
        # count and unique_count: each event is 1; unique_count keeps the value it counts once.
        counted = meter.aggregation in ("count", "unique_count")
        value = "'1'" if counted else _path(meter.value or "", fields)
        when = "ELSE"
        if meter.event_types:
            when = f"WHEN {type_expr} IN ({', '.join(quote_literal(t) for t in meter.event_types)}) THEN"
        quantity_cases.append(f"{when} {value}")
        if meter.aggregation == "unique_count":
            distinct_cases.append(f"{when} {_path(meter.value or '', fields)}")
    meter_code: str | Lookup = (
        Lookup(METER_EVENT_KIND, type_expr) if type_expr else quote_literal(config.meters[0].code)
    )
    signature = tuple(dict.fromkeys(p.split(".")[0] for p in (*events.event_id, events.time)))
    return _named(
        Shape(
            name="meters.configured",
            family="meters",
            layout=usage.USAGE,
            names=usage.NAMES,
            formats=("jsonl", "json", "csv", "parquet"),
            signature=signature,
            fields=fields,
            columns={
                "event_id": event_id,
                "customer_id": Lookup("customer", customer) if events.customer_key == "mapping" else customer,
                "meter_code": meter_code,
                "quantity": f"CASE {' '.join(quantity_cases)} END",
                "occurred_at": time,
                **({"sent_at": _path(events.recorded_time, fields)} if events.recorded_time else {}),
                **({"distinct_value": f"CASE {' '.join(distinct_cases)} END"} if distinct_cases else {}),
            },
            parse={"occurred_at": usage.EPOCH_OR_RFC3339_UTC, "sent_at": usage.EPOCH_OR_RFC3339_UTC},
            description=f"usage events read by the meters of {config.path or 'the configuration'}",
        )
    )


def _adjust(shape: Shape, config: Config) -> Shape:
    """The shape as configured. One that differs from the built-in gets a name with the digest of
    its reading rules, which the manifest records: a file read under other rules lands again."""
    if shape.family == "salesforce":
        adjusted = _salesforce(shape, config)
    elif shape.family in ("stripe", "stripe_csv"):
        adjusted = _stripe(shape, config)
    elif shape in (usage.STRIPE_METER_EVENTS, usage.METER_EVENTS) and config.billing_customer_account_key:
        adjusted = _billing_ids_kept(shape)
    else:
        return shape
    return shape if adjusted == shape else _named(adjusted)


def _named(shape: Shape) -> Shape:
    rules = repr(
        (
            sorted(shape.fields.items()),
            sorted(map(repr, shape.columns.items())),
            sorted(shape.aliases.items()),
        )
    )
    return replace(shape, name=f"{shape.name}@{hashlib.sha256(rules.encode()).hexdigest()[:8]}")


def _salesforce(shape: Shape, config: Config) -> Shape:
    fields, columns = dict(shape.fields), dict(shape.columns)
    if shape in (salesforce.CASE, salesforce.WORK_ORDER) and config.billable_field:
        field = quote_ident(config.billable_field)
        fields.setdefault(config.billable_field, "VARCHAR")
        pay = ", ".join(quote_literal(v) for v in config.billable_values)
        covered = ", ".join(quote_literal(v) for v in config.covered_values) or "NULL"
        columns["billing_type"] = (
            f"CASE WHEN trim({field}) IN ({pay}) THEN 'customer_pay'"
            f" WHEN trim({field}) IN ({covered}) THEN 'covered' ELSE {salesforce.BILLING_TYPE} END"
        )
    if shape is salesforce.SERVICE_CONTRACT:
        fields.setdefault(config.renewal_link_field, "VARCHAR")
        columns["renewal_of_contract_id"] = salesforce.renewal_of(config.renewal_link_field)
    if shape is salesforce.CONTRACT_LINE_ITEM:
        columns["annual_price"] = salesforce.annual_price(config.contract_line_price)
    return replace(shape, fields=fields, columns=columns)


def _billing_ids_kept(shape: Shape) -> Shape:
    """The shape with its billing customer ids kept as written where the mapping has no row for them:
    with identity.billing_customer_metadata_key they resolve in dbt (int_customer_identities),
    through the landed billing customers, and need no mapping rows (invoices, subscriptions, meter
    events, flat metering events); a mapping row still translates its id."""
    columns = {
        c: replace(e, keep_unmapped=True) if isinstance(e, Lookup) and e.kind == "customer" else e
        for c, e in shape.columns.items()
    }
    return replace(shape, columns=columns)


def _stripe(shape: Shape, config: Config) -> Shape:
    fields, columns, aliases = dict(shape.fields), dict(shape.columns), dict(shape.aliases)
    key = config.billing_customer_account_key
    if key:
        if shape.layout is stripe.CUSTOMERS:
            if shape.family == "stripe":
                fields["metadata"] = "JSON"
                columns["customer_id"] = f'json_extract_string("metadata", {quote_literal("$." + key)})'
            else:
                fields["account_key"] = "VARCHAR"
                aliases["account_key"] = stripe.metadata_field(key)[1]
                columns["customer_id"] = '"account_key"'
        else:  # invoices, subscriptions: the billing id stays; dbt resolves it (int_customer_identities)
            columns = _billing_ids_kept(shape).columns
    if shape.layout is stripe.INVOICE_LINES and config.evidence:
        line = stripe.line_json(shape)
        if shape.family == "stripe_csv":
            for kind, argument in config.evidence:
                if kind == "metadata_key":
                    name, headers = stripe.metadata_field(argument)
                    fields[name] = "VARCHAR"
                    aliases[name] = headers
            fields["description"] = "VARCHAR"
            aliases["description"] = ("Description", "Line Item Description")
        reference, matched_by = stripe.line_reference(line, config.evidence, csv=shape.family == "stripe_csv")
        columns["reference_id"], columns["reference_matched_by"] = reference, matched_by
    return replace(shape, fields=fields, columns=columns, aliases=aliases)
