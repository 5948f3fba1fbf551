"""Incremental loads (issue 5; docs/ingest.md, "Incremental loads"), run after run on one warehouse.

- a corrected file (same name, new content) replaces that file's rows in one transaction: the old
  load is superseded and its rows move from raw to raw_superseded (raw holds current loads' rows
  only, all staging reads), other files are untouched; a corrected file that is refused leaves the
  old rows in force, and a correction reverted after it landed moves them back to raw;
- late events (occurred in an earlier month, sent in a later file) land with their own occurred_at;
- new usage files append;
- a file whose name, size and modification time are those of a file whose content is landed is
  skipped without being read (--rehash reads it).

A re-sent file (same content, whatever its name) is skipped by its checksum: tests/test_ingest.py.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest

from entitlements.ingest.land import SUPERSEDED_SCHEMA, FileResult, IngestError, ingest_exports, revert_load
from entitlements.runs.pipeline import PipelineError, ingest_step
from tests.test_ingest_bad_input import (
    ACCOUNTS_HEADER,
    LINES_HEADER,
    account,
    accounts,
    assert_conserved,
    csv_text,
    event,
    invoice_lines,
    jsonl_text,
    load_rows,
    query,
    write_export,
)

pytestmark = pytest.mark.integration

# A load counts when landed (or validated) and not replaced by a correction: raw holds its rows.
CURRENT = "m.status IN ('landed', 'validated') AND m.superseded_by IS NULL"


class Warehouse:
    """One warehouse and one export folder, changed and ingested again run after run."""

    def __init__(self, root: Path) -> None:
        self.path = root / "warehouse.duckdb"
        self.export = root / "export"
        self.export.mkdir(parents=True)

    def write(self, files: dict[str, str | bytes]) -> None:
        write_export(self.export, files)

    def ingest(self, **options: object) -> dict[str, FileResult]:
        return {r.source_file: r for r in ingest_exports(self.path, self.export, progress=False, **options)}

    def current(self, table: str, columns: str) -> list[tuple]:
        """raw's rows, as staging (and so the marts) sees them; each one of a current load."""
        rows = query(self.path, f"SELECT {columns} FROM raw.{table} AS r ORDER BY 1")
        of_current = query(
            self.path,
            f"SELECT {columns} FROM raw.{table} AS r"
            f" JOIN audit.ingest_manifest AS m ON m.load_id = r._load_id WHERE {CURRENT} ORDER BY 1",
        )
        assert rows == of_current
        return rows

    def superseded(self, table: str, columns: str) -> list[tuple]:
        """The rows set aside in raw_superseded (loads a correction replaced)."""
        return query(self.path, f"SELECT {columns} FROM {SUPERSEDED_SCHEMA}.{table} AS r ORDER BY 1")

    def loads(self, source_file: str) -> list[tuple]:
        """(load_id, status, rows_in, row_count, rows_rejected, superseded_by) of a file, in load order."""
        return query(
            self.path,
            "SELECT load_id, status, rows_in, row_count, rows_rejected, superseded_by"
            " FROM audit.ingest_manifest WHERE source_file = $file ORDER BY loaded_at",
            {"file": source_file},
        )


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path)


def usage(*events: str) -> str:
    return jsonl_text(list(events))


def march_events() -> str:
    return usage(
        event("evt-m1", occurred_at="2024-03-01T09:00:00Z"),
        event("evt-m2", occurred_at="2024-03-15T12:00:00Z"),
        event("evt-m3", occurred_at="2024-03-31T18:00:00Z"),
    )


# ------------------------------------------------------------------------------------ corrected


def test_corrected_file_replaces_that_files_rows(warehouse: Warehouse) -> None:
    warehouse.write(
        {
            "billing/invoice_lines.csv": csv_text(LINES_HEADER, invoice_lines(4)),
            "crm/accounts.csv": csv_text(ACCOUNTS_HEADER, accounts(n=5)),
            "crm/accounts_partner.csv": csv_text(ACCOUNTS_HEADER, accounts("P", n=2)),
            "usage/events_2024-03.jsonl": march_events(),
        }
    )
    first = warehouse.ingest()
    old = first["crm/accounts.csv"].load_id

    # The correction: A002 renamed, A005 dropped, A006 added.
    corrected = accounts(n=4)
    corrected[1] = account("A002", customer_name="Acme Renamed")
    warehouse.write({"crm/accounts.csv": csv_text(ACCOUNTS_HEADER, [*corrected, account("A006")])})
    second = warehouse.ingest()

    result = second["crm/accounts.csv"]
    assert (result.status, result.rows_in, result.rows, result.rows_rejected) == ("landed", 5, 5, 0)
    assert result.message == f"corrected file: replaces load {old} (5 rows)"
    assert warehouse.loads("crm/accounts.csv") == [
        (old, "landed", 5, 5, 0, result.load_id),
        (result.load_id, "landed", 5, 5, 0, None),
    ]
    assert warehouse.current("crm_accounts", "r.customer_id, r.customer_name") == [
        ("A001", "Customer A001"),
        ("A002", "Acme Renamed"),
        ("A003", "Customer A003"),
        ("A004", "Customer A004"),
        ("A006", "Customer A006"),
        ("P001", "Customer P001"),
        ("P002", "Customer P002"),
    ]
    # The old rows are kept as history (a correction can be reverted), set aside out of raw.
    assert load_rows(warehouse.path, "crm_accounts", old) == (0, 5)
    # Other files: skipped, their loads still current.
    for name in ("billing/invoice_lines.csv", "crm/accounts_partner.csv", "usage/events_2024-03.jsonl"):
        assert second[name].status == "skipped"
        assert warehouse.loads(name)[0][5] is None
    assert len(warehouse.current("billing_invoice_lines", "r.invoice_line_id")) == 4
    assert len(warehouse.current("usage_events", "r.event_id")) == 3
    assert_conserved(warehouse.path)


def test_refused_correction_leaves_the_old_rows_in_force(warehouse: Warehouse) -> None:
    warehouse.write({"crm/accounts.csv": csv_text(ACCOUNTS_HEADER, accounts())})
    old = warehouse.ingest()["crm/accounts.csv"].load_id

    bad = accounts()
    for k in (10, 20, 30):  # 3 of 200: 1.5 %, over the 1 % allowed
        bad[k - 1] = account(f"A{k:03d}", customer_name="Corrected", currency="XX")
    warehouse.write({"crm/accounts.csv": csv_text(ACCOUNTS_HEADER, bad)})
    with pytest.raises(IngestError) as caught:
        warehouse.ingest()

    assert (caught.value.source_file, caught.value.line, caught.value.column) == (
        "crm/accounts.csv",
        11,
        "currency",
    )
    (old_load, refused) = warehouse.loads("crm/accounts.csv")
    assert old_load == (old, "landed", 200, 200, 0, None)  # not superseded
    assert refused[1:] == ("refused", 200, 0, 3, None)
    current = warehouse.current("crm_accounts", "r.customer_id, r.customer_name, r._load_id")
    assert len(current) == 200
    assert {load_id for *_, load_id in current} == {old}
    assert ("A010", "Customer A010", old) in current

    # Fixed and sent again: now it replaces the old rows.
    fixed = accounts()
    fixed[9] = account("A010", customer_name="Corrected")
    warehouse.write({"crm/accounts.csv": csv_text(ACCOUNTS_HEADER, fixed)})
    result = warehouse.ingest()["crm/accounts.csv"]

    assert (result.status, result.rows) == ("landed", 200)
    assert result.message == f"corrected file: replaces load {old} (200 rows)"
    assert ("A010", "Corrected", result.load_id) in warehouse.current(
        "crm_accounts", "r.customer_id, r.customer_name, r._load_id"
    )
    assert len(warehouse.current("crm_accounts", "r.customer_id")) == 200
    assert_conserved(warehouse.path)


def test_corrected_file_with_a_rejected_row(warehouse: Warehouse) -> None:
    warehouse.write({"crm/accounts.csv": csv_text(ACCOUNTS_HEADER, accounts())})
    old = warehouse.ingest()["crm/accounts.csv"].load_id

    corrected = accounts()
    corrected[49] = account("A050", created_date="2024-02-30")  # line 51
    warehouse.write({"crm/accounts.csv": csv_text(ACCOUNTS_HEADER, corrected)})
    result = warehouse.ingest()["crm/accounts.csv"]

    assert (result.rows_in, result.rows, result.rows_rejected) == (200, 199, 1)
    assert result.message == (
        f"1 row(s) rejected, see audit.rejected_rows (load_id {result.load_id});"
        f" corrected file: replaces load {old} (200 rows)"
    )
    # The correction is the file's content now: A050, rejected from it, is no longer current.
    assert len(warehouse.current("crm_accounts", "r.customer_id")) == 199
    assert ("A050",) not in warehouse.current("crm_accounts", "r.customer_id")
    assert query(warehouse.path, "SELECT line, column_name, disposition FROM audit.rejected_rows") == [
        (51, "created_date", "rejected")
    ]
    assert_conserved(warehouse.path)


def test_a_correction_sets_the_old_rows_aside_and_its_revert_brings_them_back(warehouse: Warehouse) -> None:
    warehouse.write(
        {
            "crm/accounts.csv": csv_text(ACCOUNTS_HEADER, accounts(n=3)),
            "crm/accounts_partner.csv": csv_text(ACCOUNTS_HEADER, accounts("P", n=2)),
        }
    )
    old = warehouse.ingest()["crm/accounts.csv"].load_id
    columns = "r.customer_id, r.customer_name, r._load_id"
    before = warehouse.current("crm_accounts", "r.*")
    old_rows = [row for row in before if row[-4] == old]  # _load_id, _source_file, _loaded_at, _extra
    assert len(old_rows) == 3

    corrected = accounts(n=2)
    corrected[0] = account("A001", customer_name="Acme Renamed")
    warehouse.write({"crm/accounts.csv": csv_text(ACCOUNTS_HEADER, corrected)})
    new = warehouse.ingest()["crm/accounts.csv"].load_id

    # raw: the correction's rows and the other file's, nothing of the superseded load.
    assert warehouse.current("crm_accounts", columns) == [
        ("A001", "Acme Renamed", new),
        ("A002", "Customer A002", new),
        ("P001", "Customer P001", warehouse.loads("crm/accounts_partner.csv")[0][0]),
        ("P002", "Customer P002", warehouse.loads("crm/accounts_partner.csv")[0][0]),
    ]
    # The superseded rows, whole, in the side schema: same table name, same columns.
    assert warehouse.superseded("crm_accounts", "r.*") == old_rows
    assert query(warehouse.path, f"DESCRIBE {SUPERSEDED_SCHEMA}.crm_accounts") == query(
        warehouse.path, "DESCRIBE raw.crm_accounts"
    )
    assert_conserved(warehouse.path)

    # The correction is refused after it landed (the landing checks failed): the earlier rows are
    # back in raw exactly as they were, the correction's gone from both schemas.
    revert_load(warehouse.path, [new], "landing checks failed")

    assert warehouse.current("crm_accounts", "r.*") == before
    assert warehouse.superseded("crm_accounts", "r.*") == []
    assert load_rows(warehouse.path, "crm_accounts", new) == (0, 0)
    assert [
        (load_id, status, superseded_by)
        for load_id, status, *_, superseded_by in warehouse.loads("crm/accounts.csv")
    ] == [(old, "landed", None), (new, "reverted", None)]


def test_a_run_refusing_a_later_file_restores_the_rows_its_correction_replaced(warehouse: Warehouse) -> None:
    warehouse.write({"crm/accounts.csv": csv_text(ACCOUNTS_HEADER, accounts(n=3))})
    old = warehouse.ingest()["crm/accounts.csv"].load_id
    before = warehouse.current("crm_accounts", "r.*")

    # One run: the correction lands, then a later file (in path order) is refused whole.
    bad_events = [event(f"evt-{k}", quantity="lots") for k in range(1, 4)]
    warehouse.write(
        {
            "crm/accounts.csv": csv_text(ACCOUNTS_HEADER, accounts(n=2)),
            "usage/events.jsonl": usage(*bad_events),
        }
    )
    with pytest.raises(PipelineError, match=r"usage/events\.jsonl"):
        ingest_step(warehouse.path, warehouse.export, "run-1")

    assert warehouse.current("crm_accounts", "r.*") == before
    assert warehouse.superseded("crm_accounts", "r.*") == []
    ((load_id, status, *_, superseded_by), (_, correction, *_)) = warehouse.loads("crm/accounts.csv")
    assert (load_id, status, superseded_by, correction) == (old, "landed", None, "reverted")
    assert query(warehouse.path, "SELECT count(*) FROM raw.usage_events") == [(0,)]


# ------------------------------------------------------------------------------ late and new usage


def test_late_events_land_in_their_true_period(warehouse: Warehouse) -> None:
    warehouse.write({"usage/events_2024-03.jsonl": march_events()})
    march = warehouse.ingest()["usage/events_2024-03.jsonl"]

    warehouse.write(
        {
            "usage/events_2024-04.jsonl": usage(
                event("evt-a1", occurred_at="2024-04-01T08:00:00Z", sent_at="2024-04-01T08:00:01Z"),
                event("evt-late1", occurred_at="2024-03-30T23:59:59Z", sent_at="2024-04-02T10:00:00Z"),
                event("evt-a2", occurred_at="2024-04-10T08:00:00Z", sent_at="2024-04-10T08:00:01Z"),
                # 23:30 at +02:00 is 21:30 UTC, still March.
                event("evt-late2", occurred_at="2024-03-31T23:30:00+02:00", sent_at="2024-04-03T00:00:00Z"),
            )
        }
    )
    results = warehouse.ingest()

    assert results["usage/events_2024-03.jsonl"].status == "skipped"
    april = results["usage/events_2024-04.jsonl"]
    assert (april.status, april.rows_in, april.rows, april.rows_rejected) == ("landed", 4, 4, 0)
    assert warehouse.current("usage_events", "r.event_id, r.occurred_at, r.sent_at, r._source_file") == [
        ("evt-a1", datetime(2024, 4, 1, 8), datetime(2024, 4, 1, 8, 0, 1), "usage/events_2024-04.jsonl"),
        ("evt-a2", datetime(2024, 4, 10, 8), datetime(2024, 4, 10, 8, 0, 1), "usage/events_2024-04.jsonl"),
        (
            "evt-late1",
            datetime(2024, 3, 30, 23, 59, 59),
            datetime(2024, 4, 2, 10),
            "usage/events_2024-04.jsonl",
        ),
        ("evt-late2", datetime(2024, 3, 31, 21, 30), datetime(2024, 4, 3), "usage/events_2024-04.jsonl"),
        ("evt-m1", datetime(2024, 3, 1, 9), datetime(2024, 3, 1, 10, 0, 5), "usage/events_2024-03.jsonl"),
        ("evt-m2", datetime(2024, 3, 15, 12), datetime(2024, 3, 1, 10, 0, 5), "usage/events_2024-03.jsonl"),
        ("evt-m3", datetime(2024, 3, 31, 18), datetime(2024, 3, 1, 10, 0, 5), "usage/events_2024-03.jsonl"),
    ]
    assert query(
        warehouse.path,
        "SELECT strftime(occurred_at, '%Y-%m') AS month, count(*) FROM raw.usage_events"
        " GROUP BY 1 ORDER BY 1",
    ) == [("2024-03", 5), ("2024-04", 2)]
    # March's load is untouched by April's file.
    assert warehouse.loads("usage/events_2024-03.jsonl")[0] == (march.load_id, "landed", 3, 3, 0, None)
    assert_conserved(warehouse.path)


def test_new_usage_files_append(warehouse: Warehouse, tmp_path: Path) -> None:
    counts = []
    for month, n in (("2024-03", 3), ("2024-04", 2), ("2024-05", 4)):
        lines = [event(f"evt-{month}-{k}", occurred_at=f"{month}-0{k}T12:00:00Z") for k in range(1, n + 1)]
        warehouse.write({f"usage/events_{month}.jsonl": usage(*lines)})
        results = warehouse.ingest()
        assert results[f"usage/events_{month}.jsonl"].status == "landed"
        assert {r.status for name, r in results.items() if not name.endswith(f"{month}.jsonl")} <= {"skipped"}
        counts.append(query(warehouse.path, "SELECT count(*) FROM raw.usage_events")[0][0])

    assert counts == [3, 5, 9]
    assert query(
        warehouse.path,
        "SELECT source_file, status, rows_in, row_count FROM audit.ingest_manifest WHERE status = 'landed'"
        " ORDER BY 1",
    ) == [
        ("usage/events_2024-03.jsonl", "landed", 3, 3),
        ("usage/events_2024-04.jsonl", "landed", 2, 2),
        ("usage/events_2024-05.jsonl", "landed", 4, 4),
    ]
    # A folder holding only the new month (older files archived elsewhere) appends just the same.
    only_june = write_export(tmp_path / "june", {"usage/events_2024-06.jsonl": usage(event("evt-2024-06-1"))})
    (june,) = ingest_exports(warehouse.path, only_june, progress=False)
    assert (june.source_file, june.status, june.rows) == ("usage/events_2024-06.jsonl", "landed", 1)
    assert query(warehouse.path, "SELECT count(*) FROM raw.usage_events") == [(10,)]
    assert_conserved(warehouse.path)


# --------------------------------------------------------------------------- unchanged, unread


def test_a_file_unchanged_by_name_size_and_time_is_skipped_unread(warehouse: Warehouse) -> None:
    warehouse.write({"usage/events_2024-03.jsonl": march_events()})
    name = "usage/events_2024-03.jsonl"
    path = warehouse.export / name
    (first,) = warehouse.ingest().values()
    assert first.status == "landed"

    # Same name, size and time: skipped without being read, as the same content.
    again = warehouse.ingest()[name]
    assert (again.status, again.checksum) == ("skipped", first.checksum)
    unread = f"same name, size and modification time as load {first.load_id} of {name} (landed)"
    assert again.message == unread

    # Touched (a new time, the same content): read, checksummed, skipped as a re-sent file; the
    # time it had then is recorded, so the run after that skips it unread again.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    touched = warehouse.ingest()[name]
    assert touched.message == f"same content as load {first.load_id} of {name} (landed)"
    assert warehouse.ingest()[name].message.startswith("same name, size and modification time as")

    # New content of the same size given back its old time on purpose: trusted, as make and rsync
    # trust it, so skipped; --rehash reads it and lands it as the correction it is.
    changed = march_events().replace("evt-m3", "evt-m9")
    assert len(changed) == len(march_events())
    mtime = path.stat().st_mtime_ns
    path.write_text(changed)
    os.utime(path, ns=(mtime, mtime))
    assert warehouse.ingest()[name].status == "skipped"
    assert [r[0] for r in warehouse.current("usage_events", "r.event_id")] == ["evt-m1", "evt-m2", "evt-m3"]
    corrected = warehouse.ingest(rehash=True)[name]
    assert corrected.status == "landed"
    assert corrected.message.endswith(f"corrected file: replaces load {first.load_id} (3 rows)")
    assert [r[0] for r in warehouse.current("usage_events", "r.event_id")] == ["evt-m1", "evt-m2", "evt-m9"]
    assert_conserved(warehouse.path)
