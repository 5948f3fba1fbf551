"""Property: whatever bytes an export holds, `entitlements ingest` answers with an exit code and a
message, never a traceback, and accounts for every row of every file it read.

Hypothesis generates hostile CSV and JSON lines files: random text and bytes in fields (quotes,
delimiters, line breaks, NUL, invalid UTF-8), random encodings, random header case and repeated
headers, random JSON nesting (deeper than Python's parser goes). Derandomized, so a run is
repeatable; the command runs in-process through click's runner (the real CLI, its real ingest).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entitlements.cli import cli

pytestmark = pytest.mark.integration

ACCOUNT_COLUMNS = ["customer_id", "customer_name", "country", "currency", "segment", "created_date"]
EVENT_KEYS = ["event_id", "customer_id", "meter_code", "quantity", "occurred_at", "sent_at"]
GOOD_ACCOUNT = ["A1", "Acme", "DE", "EUR", "smb", "2024-01-15"]

cells = st.one_of(
    st.sampled_from(
        ["", " ", '"', '""', ",", ";", "\n", "\r\n", "\x00", "=1+1", "12.345", "1_000", "2024-1-5"]
    ),
    st.text(max_size=12),
    st.sampled_from(GOOD_ACCOUNT),
)
header_cells = st.sampled_from(ACCOUNT_COLUMNS).flatmap(
    lambda name: st.sampled_from([name, name.upper(), name.title(), f" {name} "])
)
encodings = st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16"])


@st.composite
def hostile_csv(draw: st.DrawFn) -> bytes:
    header = draw(st.lists(header_cells, min_size=1, max_size=8))
    if draw(st.booleans()):
        header = ACCOUNT_COLUMNS + header[:2]  # recognisable, with repeats differing in case
    rows = draw(st.lists(st.lists(cells, min_size=0, max_size=9), max_size=6))
    rows.append(GOOD_ACCOUNT)
    sep = draw(st.sampled_from([",", ";"]))
    text = "\n".join(sep.join(row) for row in [header, *rows]) + draw(st.sampled_from(["", "\n"]))
    data = text.encode(draw(encodings), errors="replace")
    if draw(st.booleans()):  # a stray byte that is valid in no UTF-8
        at = draw(st.integers(min_value=0, max_value=len(data)))
        data = data[:at] + bytes([draw(st.integers(min_value=0x80, max_value=0xFF))]) + data[at:]
    return data


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def hostile_jsonl(draw: st.DrawFn) -> bytes:
    lines = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        kind = draw(st.sampled_from(["event", "random", "deep", "bytes", "not json"]))
        if kind == "event":
            keys = draw(st.lists(st.sampled_from(EVENT_KEYS + [k.upper() for k in EVENT_KEYS]), max_size=8))
            record = {
                key: draw(json_values | st.sampled_from(["2024-03-01T10:00:00Z", "1", "A1"])) for key in keys
            }
            lines.append(json.dumps(record).encode())
        elif kind == "random":
            lines.append(json.dumps(draw(json_values)).encode())
        elif kind == "deep":
            depth = draw(st.sampled_from([10, 999, 5000]))
            lines.append(b'{"event_id": "deep", "quantity": ' + b"[" * depth + b"]" * depth + b"}")
        elif kind == "bytes":
            lines.append(draw(st.binary(max_size=30)).replace(b"\n", b""))
        else:
            lines.append(b'{"event_id": "x", "quantity": 1')
    return b"\n".join(lines) + b"\n"


def assert_accounted(warehouse: Path) -> None:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        loads = con.execute(
            "select load_id, table_name, status, rows_in, row_count, rows_rejected,"
            " coalesce(rows_reverted, 0), superseded_by is not null"
            " from audit.ingest_manifest where load_id is not null"
        ).fetchall()
        for load_id, table, status, rows_in, row_count, rejected, reverted, superseded in loads:
            if status == "refused":  # nothing landed; its problem rows are recorded
                assert row_count == 0 and rejected > 0
            else:
                assert rows_in == row_count + rejected + reverted, (status, rows_in, row_count, rejected)
            (in_raw,) = con.execute(
                f'select count(*) from raw."{table}" where _load_id = ?', [load_id]
            ).fetchall()
            (recorded,) = con.execute(
                "select count(*) from audit.rejected_rows where load_id = ?", [load_id]
            ).fetchall()
            # raw holds current loads' rows only (a superseded load's are in raw_superseded)
            assert (in_raw[0], recorded[0]) == (0 if superseded else row_count, rejected)
    finally:
        con.close()


def ingest(files: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        export, warehouse = Path(tmp) / "export", Path(tmp) / "w.duckdb"
        for name, content in files.items():
            (export / name).parent.mkdir(parents=True, exist_ok=True)
            (export / name).write_bytes(content)
        result = CliRunner().invoke(cli, ["ingest", str(export), "--warehouse", str(warehouse)])

        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        assert result.exit_code in (0, 1, 2), result.output
        assert "Traceback" not in result.output
        if result.exit_code:
            assert result.output.strip(), "a refusal says why"
        if warehouse.exists():
            assert_accounted(warehouse)


SETTINGS = settings(
    max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@SETTINGS
@given(hostile_csv())
def test_hostile_csv_never_gives_a_traceback_and_every_row_is_accounted(content: bytes) -> None:
    ingest({"crm/accounts.csv": content})


@SETTINGS
@given(hostile_jsonl())
def test_hostile_json_lines_never_give_a_traceback_and_every_row_is_accounted(content: bytes) -> None:
    ingest({"usage/events.jsonl": content})
