"""Usage exports (ingest/adapters/usage.py): CloudEvents and metering events onto raw usage_events.

Each test writes a small hand-made export (CloudEvents in the spec's JSON format, Stripe meter
events as its API and Dashboard upload templates document them), lands it with the real ingest and
checks the raw rows against the values written here: event ids (source|id for CloudEvents), mapped
meters and customers, quantities, UTC times from offsets and from epoch seconds. A re-delivered
event counts once after dbt's de-duplication, a late event lands in its own month, and an
unmapped meter is named in the error.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from entitlements.ingest.errors import IngestError
from entitlements.ingest.land import ingest_exports
from entitlements.transform.dbt_runner import run_dbt
from tests.conftest import query_rows

pytestmark = pytest.mark.integration

MAPPING = """kind,source_id,target_id
meter,com.acme.api.call,API_CALLS
meter,storage,STORAGE_GB
meter,api_calls,API_CALLS
meter,storage_gb,STORAGE_GB
customer,cus_A,C00001
customer,cus_B,C00002
"""

# Structured-mode CloudEvents, one per line: offsets in several forms, quantity as a number or a
# string under data.quantity or data.value, the customer in subject or in data, an extension.
CLOUDEVENTS = """\
{"specversion":"1.0","id":"a1","source":"//meter.acme.example/api","type":"com.acme.api.call","subject":"C00001","time":"2024-03-31T23:30:00-02:00","datacontenttype":"application/json","data":{"quantity":120},"recordedtime":"2024-04-01T01:31:00Z","partitionkey":"C00001"}
{"specversion":"1.0","id":"a2","source":"//meter.acme.example/api","type":"com.acme.api.call","subject":"C00002","time":"2024-03-15T10:00:00.250+05:30","data":{"value":"2.5"}}
{"specversion":"1.0","id":"a1","source":"//meter.acme.example/storage","type":"com.acme.usage","time":"2024-03-20t08:00:00z","data":{"customer_id":"C00001","meter":"storage","quantity":7}}
"""

# The batch format: a JSON array of events.
CLOUDEVENTS_BATCH = """[
  {"specversion": "1.0", "id": "b1", "source": "billing-agent", "type": "com.acme.api.call",
   "subject": "C00002", "time": "2024-02-29T12:00:00Z", "data": {"quantity": 1}}
]
"""

# Stripe meter events as the API returns them: v1 (epoch seconds) and v2 (RFC 3339).
STRIPE_METER_EVENTS = """\
{"object":"billing.meter_event","created":1711929600,"event_name":"api_calls","identifier":"idmp_1","livemode":false,"payload":{"stripe_customer_id":"cus_A","value":"25"},"timestamp":1711843200}
{"object":"v2.billing.meter_event","created":"2024-04-01T12:10:00.000Z","event_name":"storage_gb","identifier":"idmp_2","livemode":false,"payload":{"stripe_customer_id":"cus_B","value":"1.5"},"timestamp":"2024-03-31T22:00:00.000-03:00"}
"""

# Stripe's Dashboard CSV upload template: payload flattened into payload_* columns.
STRIPE_UPLOAD_CSV = """\
identifier,timestamp,event_name,payload_stripe_customer_id,payload_value
idmp_3,1709251200,api_calls,cus_A,3
idmp_4,2024-03-01T00:00:00+01:00,api_calls,cus_B,4
"""

# A flat metering export in JSON lines.
FLAT_METER_EVENTS = """\
{"event_name":"storage_gb","identifier":"m-1","customer_id":"cus_B","value":0.75,"timestamp":"2024-03-10T00:00:00+02:00","created":1710028800}
"""


def _export(root: Path, files: dict[str, str], mapping: str = MAPPING) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "mapping.csv").write_text(mapping)
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _usage(warehouse: Path, table: str = "raw.usage_events") -> list[tuple]:
    rows = query_rows(
        warehouse,
        f"SELECT event_id, customer_id, meter_code, quantity, occurred_at, sent_at FROM {table}"
        " ORDER BY event_id, sent_at NULLS LAST",
    )
    return [tuple(r.values()) for r in rows]


def test_cloudevents_land_with_source_and_id_as_event_id_and_utc_times(tmp_path: Path) -> None:
    export = _export(
        tmp_path / "export",
        {"usage/2024-03.jsonl": CLOUDEVENTS, "usage/batch.json": CLOUDEVENTS_BATCH},
    )
    warehouse = tmp_path / "warehouse.duckdb"
    results = ingest_exports(warehouse, export, progress=False)
    assert {(r.source_file, r.rows) for r in results} == {("usage/2024-03.jsonl", 3), ("usage/batch.json", 1)}
    assert _usage(warehouse) == [
        # same id "a1" from two sources: two events
        (
            "//meter.acme.example/api|a1",
            "C00001",
            "API_CALLS",
            Decimal("120"),
            datetime(2024, 4, 1, 1, 30),  # 23:30 at -02:00
            datetime(2024, 4, 1, 1, 31),  # recordedtime
        ),
        (
            "//meter.acme.example/api|a2",
            "C00002",
            "API_CALLS",
            Decimal("2.5"),
            datetime(2024, 3, 15, 4, 30, 0, 250000),  # 10:00:00.250 at +05:30
            None,
        ),
        (  # customer and meter from data; lower-case t and z
            "//meter.acme.example/storage|a1",
            "C00001",
            "STORAGE_GB",
            Decimal("7"),
            datetime(2024, 3, 20, 8, 0),
            None,
        ),
        ("billing-agent|b1", "C00002", "API_CALLS", Decimal("1"), datetime(2024, 2, 29, 12, 0), None),
    ]
    extra = query_rows(
        warehouse, "SELECT _extra->>'partitionkey' AS p FROM raw.usage_events WHERE _extra IS NOT NULL"
    )
    assert "C00001" in {r["p"] for r in extra}


def test_metering_events_land_from_epoch_seconds_and_rfc3339(tmp_path: Path) -> None:
    export = _export(
        tmp_path / "export",
        {
            "usage/stripe_meter_events.jsonl": STRIPE_METER_EVENTS,
            "usage/upload.csv": STRIPE_UPLOAD_CSV,
            "usage/meter_events_flat.jsonl": FLAT_METER_EVENTS,
        },
    )
    warehouse = tmp_path / "warehouse.duckdb"
    results = ingest_exports(warehouse, export, file_format="metering", progress=False)
    assert sorted(r.rows for r in results) == [1, 2, 2]
    assert _usage(warehouse) == [
        ("idmp_1", "C00001", "API_CALLS", Decimal("25"), datetime(2024, 3, 31), datetime(2024, 4, 1)),
        (  # 22:00 at -03:00; created in RFC 3339
            "idmp_2",
            "C00002",
            "STORAGE_GB",
            Decimal("1.5"),
            datetime(2024, 4, 1, 1, 0),
            datetime(2024, 4, 1, 12, 10),
        ),
        ("idmp_3", "C00001", "API_CALLS", Decimal("3"), datetime(2024, 3, 1), None),
        ("idmp_4", "C00002", "API_CALLS", Decimal("4"), datetime(2024, 2, 29, 23, 0), None),  # +01:00
        ("m-1", "C00002", "STORAGE_GB", Decimal("0.75"), datetime(2024, 3, 9, 22, 0), datetime(2024, 3, 10)),
    ]


def test_redelivered_event_counts_once_and_late_event_keeps_its_month(tmp_path: Path) -> None:
    """Each event twice, in two files of two loads; the second file is April's but holds March."""
    march = """\
{"specversion":"1.0","id":"e1","source":"//meter","type":"com.acme.api.call","subject":"C00001","time":"2024-03-30T10:00:00Z","data":{"quantity":5},"recordedtime":"2024-03-30T10:00:05Z"}
"""
    april = """\
{"specversion":"1.0","id":"e2","source":"//meter","type":"com.acme.api.call","subject":"C00001","time":"2024-04-02T09:00:00Z","data":{"quantity":1},"recordedtime":"2024-04-02T09:00:01Z"}
{"specversion":"1.0","id":"e1","source":"//meter","type":"com.acme.api.call","subject":"C00001","time":"2024-03-30T10:00:00Z","data":{"quantity":5},"recordedtime":"2024-04-01T00:10:00Z"}
{"specversion":"1.0","id":"e3","source":"//meter","type":"com.acme.api.call","subject":"C00001","time":"2024-03-31T23:59:00+00:00","data":{"quantity":2},"recordedtime":"2024-04-01T00:20:00Z"}
"""
    header = "identifier,timestamp,event_name,customer_id,value,created\n"
    metering_march = header + "k1,1711108800,api_calls,cus_B,10,1711108810\n"  # 2024-03-22 12:00 UTC
    metering_april = header + "k1,1711108800,api_calls,cus_B,10,1711929600\n"  # re-sent 2024-04-01
    warehouse = tmp_path / "warehouse.duckdb"
    first = _export(
        tmp_path / "first", {"usage/events-2024-03.jsonl": march, "usage/meter-2024-03.csv": metering_march}
    )
    second = _export(
        tmp_path / "second", {"usage/events-2024-04.jsonl": april, "usage/meter-2024-04.csv": metering_april}
    )
    ingest_exports(warehouse, first, progress=False)
    ingest_exports(warehouse, second, progress=False)
    assert len(query_rows(warehouse, "SELECT 1 FROM raw.usage_events")) == 6  # every delivery lands

    build = run_dbt(
        "build",
        warehouse,
        date(2024, 4, 30),
        "--select",
        "+int_usage_events_deduplicated",  # with the customer identities it resolves ids through
        "--indirect-selection",
        "cautious",  # only the tests of what is built (not the accounts' relationships)
    )
    assert build.ok, build.output
    assert len(query_rows(warehouse, "SELECT 1 FROM staging.stg_usage__events")) == 6
    deduplicated = query_rows(
        warehouse,
        "SELECT event_id, quantity, occurred_on, sent_at FROM intermediate.int_usage_events_deduplicated"
        " ORDER BY event_id",
    )
    assert [tuple(r.values()) for r in deduplicated] == [
        ("//meter|e1", Decimal("5"), date(2024, 3, 30), datetime(2024, 3, 30, 10, 0, 5)),  # first delivery
        ("//meter|e2", Decimal("1"), date(2024, 4, 2), datetime(2024, 4, 2, 9, 0, 1)),
        ("//meter|e3", Decimal("2"), date(2024, 3, 31), datetime(2024, 4, 1, 0, 20)),  # late: March
        ("k1", Decimal("10"), date(2024, 3, 22), datetime(2024, 3, 22, 12, 0, 10)),
    ]
    march_total = query_rows(
        warehouse,
        "SELECT sum(quantity) AS q FROM intermediate.int_usage_events_deduplicated"
        " WHERE occurred_on BETWEEN DATE '2024-03-01' AND DATE '2024-03-31'",
    )
    assert march_total == [{"q": Decimal("17")}]  # 5 + 2 + 10: each once, the late one included


@pytest.mark.parametrize(
    ("relative", "text", "unmapped"),
    [
        (
            "usage/events.jsonl",
            '{"specversion":"1.0","id":"x1","source":"s","type":"com.acme.gpu.hours","subject":"C00001",'
            '"time":"2024-03-01T00:00:00Z","data":{"quantity":1}}\n',
            "com.acme.gpu.hours",
        ),
        (
            "usage/meter_events.csv",
            "identifier,timestamp,event_name,customer_id,value\nx2,1709251200,gpu_hours,cus_A,1\n",
            "gpu_hours",
        ),
    ],
)
def test_unmapped_meter_is_named(tmp_path: Path, relative: str, text: str, unmapped: str) -> None:
    export = _export(tmp_path / "export", {relative: text})
    with pytest.raises(IngestError) as caught:
        ingest_exports(tmp_path / "warehouse.duckdb", export, progress=False)
    message = str(caught.value)
    assert relative in message
    assert f"unmapped meter id '{unmapped}'" in message
    assert f"meter,{unmapped},<meter_code>" in message


def test_epoch_milliseconds_and_missing_event_time_are_rejected_not_misread(tmp_path: Path) -> None:
    """1709251200000 would read as a date 54,000 years ahead; an event without `time` has no period."""
    export = _export(
        tmp_path / "export",
        {
            "usage/meter_events.csv": (
                "identifier,timestamp,event_name,customer_id,value\n"
                "ok-1,1709251200,api_calls,cus_A,3\n"
                "ms-1,1709251200000,api_calls,cus_A,3\n"
            ),
            "usage/events.jsonl": (
                '{"specversion":"1.0","id":"t1","source":"s","type":"com.acme.api.call","subject":"C00001",'
                '"data":{"quantity":1}}\n'
            ),
        },
    )
    warehouse = tmp_path / "warehouse.duckdb"
    ingest_exports(warehouse, export, max_rejected_share=1.0, progress=False)
    assert _usage(warehouse) == [("ok-1", "C00001", "API_CALLS", Decimal("3"), datetime(2024, 3, 1), None)]
    rejected = query_rows(
        warehouse,
        "SELECT source_file, line, column_name, reason FROM audit.rejected_rows ORDER BY source_file",
    )
    assert [(r["source_file"], r["line"], r["column_name"]) for r in rejected] == [
        ("usage/events.jsonl", 1, "occurred_at"),
        ("usage/meter_events.csv", 3, "occurred_at"),
    ]
    assert rejected[0]["reason"] == "required value is missing"
    assert "'1709251200000'" in rejected[1]["reason"]
