"""The exact read in chunks, and what the fast read proves from a file's bytes (issue 17).

A file the fast read refuses is read exactly, a chunk of records at a time (chunk_rows), so a bad
file of any length is checked in bounded memory. These tests make the chunks small, so that the
problems sit on and across chunk boundaries, and assert what no chunking may change: every
problem named with its exact line and column, every row landed or rejected with its reason
(assert_conserved), keys repeated across chunks caught, and the same outcome as in one chunk.

The fast read leaves out the tests a file's bytes make needless (no space: no trimming; no '/': that
part of a timestamp's form; no backslash or DEL: the ids' control characters, looked for in the
landed rows instead). The first MiB decides; a file holding one further on is read again with
them: the last tests put one past the first MiB and assert that it is still caught.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from entitlements.ingest.land import ingest_exports
from tests.test_ingest_bad_input import (
    ACCOUNTS_HEADER,
    account,
    accounts,
    assert_conserved,
    csv_text,
    event,
    events,
    ingest,
    jsonl_text,
    query,
    refuse,
    rejected,
)

pytestmark = pytest.mark.integration

CHUNK = 100  # records per chunk in these tests (readers.EXACT_CHUNK_ROWS otherwise)


def raw_rows(warehouse: Path, table: str, key: str) -> list[tuple]:
    """The landed rows, lineage left out, in key order."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        columns = [
            name
            for (name,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'raw'"
                " AND table_name = $table AND column_name NOT IN ('_load_id', '_loaded_at')"
                " ORDER BY ordinal_position",
                {"table": table},
            ).fetchall()
        ]
        return con.execute(f"SELECT {', '.join(columns)} FROM raw.{table} ORDER BY {key}").fetchall()


def test_a_bad_json_lines_file_read_in_chunks_names_each_problem_and_accounts_for_every_row(
    tmp_path: Path,
) -> None:
    """2,500 events in 25 chunks; problems on the first and last line and either side of boundaries."""
    lines = events(2500)
    lines[0] = event("evt-0001", quantity="12,5")  # line 1: the first of the first chunk
    lines[99] = '{"event_id": "evt-0100", "customer_id": '  # line 100: the last of chunk 1
    lines[100] = event("evt-0101", occurred_at="2024-03-01 10:00 America/New_York")  # first of chunk 2
    lines[1299] = event("evt-1300", customer_id="A\u0001")  # an escape giving a control character
    lines[1300] = "[1, 2]"  # line 1301
    lines[2499] = event("evt-2500", quantity=-3)  # the very last line
    files = {"usage/events.jsonl": jsonl_text(lines)}

    (result,), warehouse = ingest(tmp_path / "chunks", files, chunk_rows=CHUNK)

    assert (result.status, result.rows_in, result.rows, result.rows_rejected) == ("landed", 2500, 2494, 6)
    assert [row[1:4] for row in rejected(warehouse)] == [
        (1, "quantity", "cannot read '12,5' as DECIMAL(18,4) (expected a number)"),
        (100, None, "not valid JSON: Expecting value at character 41"),
        (
            101,
            "occurred_at",
            "cannot read '2024-03-01 10:00 America/New_York' as TIMESTAMP"
            " (expected an ISO 8601 date and time)",
        ),
        (
            1300,
            "customer_id",
            "an id or code with a control character: 'A\x01' (NUL, tab or line break):"
            " ids must be plain text",
        ),
        (1301, None, "the line is not a JSON object"),
        (2500, "quantity", "negative value '-3'"),
    ]
    assert [row[4] for row in rejected(warehouse)] == [lines[n - 1] for n in (1, 100, 101, 1300, 1301, 2500)]
    assert {row[5] for row in rejected(warehouse)} == {"rejected"}
    assert_conserved(warehouse)
    # One chunk or 25: the same rows land, the same rows are rejected.
    _, whole = ingest(tmp_path / "whole", files)
    assert raw_rows(warehouse, "usage_events", "event_id") == raw_rows(whole, "usage_events", "event_id")
    assert rejected(warehouse) == rejected(whole)


def test_keys_repeated_across_chunks_are_caught_with_the_line_of_their_first_occurrence(
    tmp_path: Path,
) -> None:
    """A key's first row may sit chunks before its repeat, and may itself be rejected: still the first."""
    lines = accounts(n=450)
    lines[29] = account("A030", created_date="2024-02-30")  # line 31: rejected, but the key's first row
    lines[129] = account("A030")  # line 131, the next chunk: a repeat of line 31's key
    lines[349] = account("A001", segment="enterprise")  # line 351, three chunks after line 2
    # A quoted line break: the record on lines 200-201 straddles chunk 2's end (line numbers go on).
    lines[198] = account("A199", customer_name='"Customer A199\nsecond line"')
    lines[250] = account("A100")  # line 253 (after the two-line record): repeats line 101's key
    files = {"crm/accounts.csv": csv_text(ACCOUNTS_HEADER, lines)}

    (result,), warehouse = ingest(tmp_path / "chunks", files, chunk_rows=CHUNK, max_rejected_share=0.05)

    assert (result.rows_in, result.rows, result.rows_rejected) == (450, 446, 4)
    assert [row[1:4] for row in rejected(warehouse)] == [
        (31, "created_date", "cannot read '2024-02-30' as DATE (expected YYYY-MM-DD)"),
        (131, "customer_id", "duplicate customer_id A030 within the file: first on line 31"),
        (253, "customer_id", "duplicate customer_id A100 within the file: first on line 101"),
        (352, "customer_id", "duplicate customer_id A001 within the file: first on line 2"),
    ]
    assert query(warehouse, "SELECT segment FROM raw.crm_accounts WHERE customer_id = 'A001'") == [("smb",)]
    assert query(warehouse, "SELECT customer_name FROM raw.crm_accounts WHERE customer_id = 'A199'") == [
        ("Customer A199\nsecond line",)
    ]
    assert_conserved(warehouse)
    _, whole = ingest(tmp_path / "whole", files, max_rejected_share=0.05)
    assert raw_rows(warehouse, "crm_accounts", "customer_id") == raw_rows(
        whole, "crm_accounts", "customer_id"
    )
    assert rejected(warehouse) == rejected(whole)


def test_a_file_refused_after_many_chunks_lands_nothing_and_records_every_bad_row(tmp_path: Path) -> None:
    """3 % bad rows, spread over 12 chunks: the refusal is known only at the end, and undoes them all."""
    lines = events(1200)
    bad = range(5, 1200, 33)  # 37 rows, in every chunk
    for k in bad:
        lines[k] = event(f"evt-{k + 1:04d}", quantity="n/a")

    error, warehouse = refuse(tmp_path, {"usage/events.jsonl": jsonl_text(lines)}, chunk_rows=CHUNK)

    assert (error.source_file, error.line, error.column) == ("usage/events.jsonl", 6, "quantity")
    assert str(error).startswith(
        "usage/events.jsonl: 37 of 1200 rows (3.1%) have problems, more than the 1.0% allowed, so the file"
        " was refused whole and nothing of it landed. First problems:\n"
        "  - usage/events.jsonl, line 6, column 'quantity': cannot read 'n/a' as DECIMAL(18,4) (expected a"
        " number)\n"
    )
    assert query(warehouse, "SELECT count(*) FROM raw.usage_events") == [(0,)]
    assert [(row[1], row[5]) for row in rejected(warehouse)] == [(k + 1, "refused") for k in bad]
    assert query(
        warehouse, "SELECT status, rows_in, row_count, rows_rejected FROM audit.ingest_manifest"
    ) == [("refused", 1200, 0, 37)]
    assert_conserved(warehouse)


def test_parquet_is_read_exactly_in_chunks_of_its_rows(tmp_path: Path) -> None:
    records = [json.loads(line) for line in events(250)]
    records[119]["quantity"] = "lots"
    for record in records:
        record["quantity"] = str(record["quantity"])
    path = tmp_path / "export" / "usage" / "events.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(records), path, row_group_size=40)

    warehouse = tmp_path / "warehouse.duckdb"
    (result,) = ingest_exports(warehouse, tmp_path / "export", progress=False, chunk_rows=CHUNK)

    assert (result.rows_in, result.rows, result.rows_rejected) == (250, 249, 1)
    assert [row[1:4] for row in rejected(warehouse)] == [
        (120, "quantity", "cannot read 'lots' as DECIMAL(18,4) (expected a number)")
    ]
    assert_conserved(warehouse)


# ------------------------------------------------------- what the fast read leaves out, and why safely


def clean_events(n: int) -> list[str]:
    """n events written without spaces (as DuckDB or a JavaScript exporter writes them)."""
    return [json.dumps(json.loads(line), separators=(",", ":")) for line in events(n)]


def past_the_first_mib(lines: list[str]) -> int:
    """The index of the first line starting after the file's first MiB."""
    size = 0
    for index, line in enumerate(lines):
        if size > 1 << 20:
            return index
        size += len(line) + 1
    raise AssertionError("the file is shorter than a MiB")


def test_values_padded_past_the_first_mib_still_land_trimmed(tmp_path: Path) -> None:
    lines = clean_events(12_000)
    late = past_the_first_mib(lines)
    record = json.loads(lines[late])
    lines[late] = json.dumps(record | {"event_id": " evt-late ", "customer_id": "A001 "})

    (result,), warehouse = ingest(tmp_path, {"usage/events.jsonl": jsonl_text(lines)})

    assert (result.rows_in, result.rows, result.rows_rejected) == (12_000, 12_000, 0)
    assert query(warehouse, "SELECT customer_id FROM raw.usage_events WHERE event_id = 'evt-late'") == [
        ("A001",)
    ]


@pytest.mark.parametrize(
    ("changes", "column", "reason"),
    [
        (
            {"sent_at": "2024/03/01 10:00:05"},
            "sent_at",
            "cannot read '2024/03/01 10:00:05' as TIMESTAMP (expected an ISO 8601 date and time)",
        ),
        (
            {"occurred_at": "2024-03-01 10:00 Europe/Paris"},
            "occurred_at",
            "cannot read '2024-03-01 10:00 Europe/Paris' as TIMESTAMP (expected an ISO 8601 date and time)",
        ),
        (
            {"meter_code": "API\tCALLS"},
            "meter_code",
            "an id or code with a control character: 'API\tCALLS' (NUL, tab or line break): ids must be"
            " plain text",
        ),
        (
            {"event_id": "evt\u007f"},
            "event_id",
            "an id or code with a control character: 'evt\x7f' (NUL, tab or line break): ids must be plain"
            " text",
        ),
        (
            {"quantity": 0.12345},
            "quantity",
            "'0.12345' has more decimals than quantity holds (4): send the exact value (nothing is rounded)",
        ),
    ],
)
def test_a_problem_past_the_first_mib_is_still_caught(
    tmp_path: Path, changes: dict[str, object], column: str, reason: str
) -> None:
    lines = clean_events(12_000)
    late = past_the_first_mib(lines)
    lines[late] = json.dumps(json.loads(lines[late]) | changes, separators=(",", ":"))

    (result,), warehouse = ingest(tmp_path, {"usage/events.jsonl": jsonl_text(lines)})

    assert (result.rows_in, result.rows, result.rows_rejected) == (12_000, 11_999, 1)
    assert [row[1:4] for row in rejected(warehouse)] == [(late + 1, column, reason)]
    assert_conserved(warehouse)


def test_quantities_land_the_same_whether_numbers_or_text(tmp_path: Path) -> None:
    """The fast read takes a number field as JSON: a number or a string holding one, the same value."""
    lines = clean_events(4)
    values = [12.5, "12.5", 1e-4, "0.0001"]
    lines = [json.dumps(json.loads(line) | {"quantity": v}) for line, v in zip(lines, values, strict=True)]

    (result,), warehouse = ingest(tmp_path, {"usage/events.jsonl": jsonl_text(lines)})

    assert (result.rows_in, result.rows, result.rows_rejected) == (4, 4, 0)
    assert query(warehouse, "SELECT quantity FROM raw.usage_events ORDER BY event_id") == [
        (Decimal("12.5000"),),
        (Decimal("12.5000"),),
        (Decimal("0.0001"),),
        (Decimal("0.0001"),),
    ]
