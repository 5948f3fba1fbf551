"""Usage adapters: CloudEvents 1.0 and billing-metering events onto raw usage_events.

Both land in the same raw table as the canonical usage files and feed the same de-duplication
(int_usage_events_deduplicated keeps one delivery per event_id), so a re-delivered event counts once
whichever file it arrives in. occurred_at is the event's own time, so a late event lands in its
true period, not the month of the file that brought it. docs/ingest.md, "Usage events", has the
field mapping and the reasons for it.
"""

from __future__ import annotations

from entitlements.ingest.layouts import LAYOUTS_BY_TABLE
from entitlements.ingest.shapes import Lookup, Shape

USAGE = LAYOUTS_BY_TABLE["usage_events"]

# Where usage files are looked for: anything under usage/, or a file named like events or meters.
NAMES = ("usage/*", "*event*", "*usage*", "*meter*")

# RFC 3339 (offset or Z, any case; no offset is read as UTC) -> UTC timestamp without zone.
RFC3339_UTC = "CAST(TRY_CAST(upper(trim({})) AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP)"

# Epoch seconds (Stripe's API) or RFC 3339 (Stripe's v2 API, hand-made files), in one template.
# Up to 11 integer digits is seconds (until year 5138); a 13-digit epoch in milliseconds falls to
# the RFC 3339 branch and is rejected instead of landing some 50,000 years ahead.
EPOCH_OR_RFC3339_UTC = (
    r"CASE WHEN regexp_full_match(trim({}), '[0-9]{1,11}(\.[0-9]+)?')"
    " THEN CAST(to_timestamp(CAST(trim({}) AS DOUBLE)) AT TIME ZONE 'UTC' AS TIMESTAMP)"
    f" ELSE {RFC3339_UTC} END"
)


def _data(path: str) -> str:
    return f"json_extract_string(\"data\", '$.{path}')"


CLOUDEVENTS = Shape(
    name="cloudevents.events",
    family="cloudevents",
    layout=USAGE,
    names=NAMES,
    # JSON lines in structured mode; a .json file is the batch format (a JSON array of events).
    formats=("jsonl", "json", "parquet"),
    signature=("specversion", "id", "source", "type"),
    fields={
        "specversion": "VARCHAR",
        "id": "VARCHAR",
        "source": "VARCHAR",
        "type": "VARCHAR",
        "subject": "VARCHAR",
        "time": "VARCHAR",
        "datacontenttype": "VARCHAR",
        "data": "JSON",
        # Extension attribute (CloudEvents "Recorded Time"): when the producer created the event.
        "recordedtime": "VARCHAR",
    },
    columns={
        # An id is unique only within its source (spec: source + id identify an event, and a
        # re-sent event keeps both). "|" cannot occur in a URI-reference, so two different
        # (source, id) pairs never give the same event_id, and a re-delivery always does.
        "event_id": '"source" || \'|\' || "id"',
        # The subject is the account the usage belongs to, as the CRM knows it (no mapping).
        "customer_id": f'coalesce("subject", {_data("customer_id")})',
        # data.meter when the producer sends one type for all meters, else the event type.
        "meter_code": Lookup("meter", f'coalesce({_data("meter")}, "type")'),
        "quantity": f"coalesce({_data('quantity')}, {_data('value')})",
        "occurred_at": '"time"',
        "sent_at": '"recordedtime"',
    },
    parse={"occurred_at": RFC3339_UTC, "sent_at": RFC3339_UTC},
    description="CloudEvents 1.0 usage events (JSON lines, structured mode; or a JSON batch)",
)

# Stripe billing meter events (v1 and v2 API objects, and the Dashboard's JSON/JSONLINE upload
# template): customer and value inside payload, under the meter's default payload keys.
STRIPE_METER_EVENTS = Shape(
    name="metering.stripe_meter_events",
    family="metering",
    layout=USAGE,
    names=NAMES,
    formats=("jsonl", "json", "parquet"),
    signature=("event_name", "identifier", "payload"),
    fields={
        "event_name": "VARCHAR",
        "identifier": "VARCHAR",
        "payload": "JSON",
        "timestamp": "VARCHAR",
        "created": "VARCHAR",
    },
    columns={
        "event_id": '"identifier"',
        "customer_id": Lookup("customer", "json_extract_string(\"payload\", '$.stripe_customer_id')"),
        "meter_code": Lookup("meter", '"event_name"'),
        "quantity": "json_extract_string(\"payload\", '$.value')",
        "occurred_at": '"timestamp"',
        # When Stripe received the event; the first delivery is the one de-duplication keeps.
        "sent_at": '"created"',
    },
    parse={"occurred_at": EPOCH_OR_RFC3339_UTC, "sent_at": EPOCH_OR_RFC3339_UTC},
    description="Stripe billing meter events (payload.stripe_customer_id, payload.value)",
)

# The same events flat: a metering system's export, or Stripe's CSV upload template
# (payload_stripe_customer_id, payload_value).
METER_EVENTS = Shape(
    name="metering.meter_events",
    family="metering",
    layout=USAGE,
    names=NAMES,
    formats=("csv", "jsonl", "json", "parquet"),
    signature=("event_name", "identifier", "customer_id", "value"),
    fields={
        "event_name": "VARCHAR",
        "identifier": "VARCHAR",
        "customer_id": "VARCHAR",
        "value": "VARCHAR",
        "timestamp": "VARCHAR",
        "created": "VARCHAR",
    },
    aliases={
        "customer_id": ("payload_stripe_customer_id", "stripe_customer_id"),
        "value": ("payload_value",),
    },
    columns={
        "event_id": '"identifier"',
        # A billing system's customer id: translated to the CRM account through the mapping.
        "customer_id": Lookup("customer", '"customer_id"'),
        "meter_code": Lookup("meter", '"event_name"'),
        "quantity": '"value"',
        "occurred_at": '"timestamp"',
        "sent_at": '"created"',
    },
    parse={"occurred_at": EPOCH_OR_RFC3339_UTC, "sent_at": EPOCH_OR_RFC3339_UTC},
    description="flat metering events (event_name, identifier, customer_id, value, timestamp)",
)

SHAPES: tuple[Shape, ...] = (CLOUDEVENTS, STRIPE_METER_EVENTS, METER_EVENTS)
