"""Ingest: landing exports in raw, skipping what is already there, refusing bad files whole."""

from __future__ import annotations

import csv
import json
import re
import shutil
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from entitlements.ingest.currencies import CURRENCIES
from entitlements.ingest.land import (
    SUPERSEDED_SCHEMA,
    IngestError,
    ensure_warehouse,
    ingest_exports,
    revert_load,
)
from entitlements.ingest.layouts import (
    EXPORT_LAYOUTS,
    LAYOUTS_BY_TABLE,
    LEGACY_LAYOUTS,
    Column,
    Layout,
    layout_for,
)

pytestmark = pytest.mark.integration

# ---------------------------------------------------------------- fixtures written from the layouts


def file_name(layout: Layout, suffix: str = "") -> str:
    """A path the layout's pattern matches, e.g. crm/accounts_a.csv or usage/events.jsonl."""
    name = layout.pattern.replace("/*", "/events").replace("*", suffix)
    assert layout_for(name) is layout, name
    return name


def value(column: Column, layout: Layout, row: int) -> object:
    """A valid value of the column's type for row `row` (JSON-ready; CSV writes it as text)."""
    type_ = column.type.upper()
    if column.name in layout.enums:
        return layout.enums[column.name][row % len(layout.enums[column.name])]
    day = date(2024, 1, 1) + timedelta(days=row)
    if type_ == "DATE":
        return day.isoformat()
    if type_ == "TIMESTAMP":
        return f"{day} 08:30:00"
    if type_.startswith("DECIMAL"):
        return row + 0.5
    if type_ in ("INTEGER", "BIGINT"):
        return row + 1
    if type_ == "BOOLEAN":
        return row % 2 == 0
    return f"{column.name}-{row}"


def records(layout: Layout, n: int, tag: str = "") -> list[dict[str, object]]:
    rows = [{c.name: value(c, layout, i) for c in layout.columns} for i in range(n)]
    for row in rows:  # tag makes two files of the same layout differ in content (and hash)
        row[layout.column_names[0]] = f"{row[layout.column_names[0]]}{tag}"
    if layout.table == "crm_catalog":  # a valid tree (docs/catalog.md): package -> group -> entitlement
        for previous, row in zip([None, *rows], rows, strict=False):
            row["parent_code"] = None if row["node_level"] == "package" else previous["node_code"]
    if layout.table == "billing_price_book":  # valid prices (docs/pricing.md): one per-unit row each
        for row in rows:
            row |= dict.fromkeys(("tier_up_to", "flat_amount", "package_size", "rounding", "free_units"))
            row["charge_model"] = "per_unit"
    return rows


def write_file(export: Path, relative: str, layout: Layout, rows: list[dict[str, object]]) -> Path:
    path = export / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout.file_format == "csv":
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else list(layout.column_names))
            writer.writeheader()
            writer.writerows(
                {k: str(v).lower() if isinstance(v, bool) else v for k, v in r.items()} for r in rows
            )
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def row_count(layout: Layout) -> int:
    """Different per table, so a count landing in the wrong table would show."""
    return 2 + EXPORT_LAYOUTS.index(layout)


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """One file per layout, plus the files the ingest must ignore."""
    root = tmp_path / "export"
    for layout in EXPORT_LAYOUTS:
        write_file(root, file_name(layout), layout, records(layout, row_count(layout)))
    (root / "export.json").write_text("{}")
    (root / ".DS_Store").write_text("x")
    for ignored in ("ground_truth", "legacy", "crm/.cache"):
        (root / ignored).mkdir(parents=True)
        (root / ignored / "anything.txt").write_text("not an export")
    return root


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "wh" / "warehouse.duckdb"


@pytest.fixture
def empty_warehouse(warehouse: Path) -> Path:
    warehouse.parent.mkdir(parents=True)
    with duckdb.connect(str(warehouse)) as con:
        ensure_warehouse(con)
    return warehouse


def query(warehouse: Path, sql: str, params: object = None) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params).fetchall()


def raw_counts(warehouse: Path) -> dict[str, int]:
    counts = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM raw.{t}" for t in LAYOUTS_BY_TABLE)
    return dict(query(warehouse, counts))


ORDER = "ORDER BY loaded_at, source_file, status"


def manifest(warehouse: Path) -> list[tuple]:
    return query(warehouse, f"SELECT * FROM audit.ingest_manifest {ORDER}")


def state(warehouse: Path) -> tuple[dict[str, int], list[tuple]]:
    return raw_counts(warehouse), manifest(warehouse)


def single_file_export(tmp_path: Path, name: str, relative: str, content: str) -> Path:
    root = tmp_path / name
    (root / relative).parent.mkdir(parents=True)
    (root / relative).write_text(content)
    return root


ACCOUNTS = LAYOUTS_BY_TABLE["crm_accounts"]
EVENTS = LAYOUTS_BY_TABLE["usage_events"]

# ---------------------------------------------------------------------------------------- landing


def test_lands_every_file_with_lineage(export: Path, warehouse: Path) -> None:
    results = ingest_exports(warehouse, export, progress=False)

    assert [r.source_file for r in results] == sorted(file_name(layout) for layout in EXPORT_LAYOUTS)
    assert {r.status for r in results} == {"landed"}
    assert {r.table: r.rows for r in results} == {
        layout.table: row_count(layout) for layout in EXPORT_LAYOUTS
    }
    landed = {layout.table: row_count(layout) for layout in EXPORT_LAYOUTS}
    # the legacy/ folder holds a legacy system's files, never an export's: nothing lands from it
    assert raw_counts(warehouse) == landed | dict.fromkeys((t.table for t in LEGACY_LAYOUTS), 0)
    assert len({r.load_id for r in results}) == len(EXPORT_LAYOUTS)

    lineage = " UNION ALL ".join(
        f"SELECT DISTINCT '{r.table}', _load_id, _source_file, _loaded_at IS NOT NULL FROM raw.{r.table}"
        for r in results
    )
    expected_lineage = [(r.table, r.load_id, r.source_file, True) for r in results]
    assert sorted(query(warehouse, lineage)) == sorted(expected_lineage)
    landed = query(
        warehouse,
        "SELECT load_id, source_file, export_dir, table_name, checksum, row_count, status"
        " FROM audit.ingest_manifest",
    )
    export_dir = str(export.resolve())
    expected = [
        (r.load_id, r.source_file, export_dir, r.table, r.checksum, r.rows, "landed") for r in results
    ]
    assert sorted(landed) == sorted(expected)


def test_values_land_typed(export: Path, warehouse: Path) -> None:
    ingest_exports(warehouse, export, progress=False)

    first = query(warehouse, "SELECT customer_id, created_date FROM raw.crm_accounts ORDER BY customer_id")[0]
    assert first == ("customer_id-0", date(2024, 1, 1))
    event = query(warehouse, "SELECT quantity, occurred_at FROM raw.usage_events ORDER BY event_id")[0]
    assert event == (Decimal("0.5"), datetime(2024, 1, 1, 8, 30))


def test_extra_columns_kept_in_extra_and_absent_optional_columns_land_null(
    tmp_path: Path, warehouse: Path
) -> None:
    rows = records(ACCOUNTS, 3)
    for number, row in enumerate(rows):
        del row["segment"]
        row["crm_internal_note"] = f"note {number}"
    root = tmp_path / "export"
    write_file(root, "crm/accounts.csv", ACCOUNTS, rows)

    (result,) = ingest_exports(warehouse, root, progress=False)

    assert (result.rows, result.rows_in, result.rows_rejected) == (3, 3, 0)
    assert result.message == (
        "columns kept in _extra: crm_internal_note; optional columns not in the file, landed as NULL: segment"
    )
    assert query(warehouse, "SELECT customer_id, segment, _extra FROM raw.crm_accounts ORDER BY 1") == [
        ("customer_id-0", None, '{"crm_internal_note":"note 0"}'),
        ("customer_id-1", None, '{"crm_internal_note":"note 1"}'),
        ("customer_id-2", None, '{"crm_internal_note":"note 2"}'),
    ]
    assert "crm_internal_note" not in [r[0] for r in query(warehouse, "DESCRIBE raw.crm_accounts")]


def test_a_file_already_landed_is_skipped_by_its_checksum(
    export: Path, warehouse: Path, tmp_path: Path
) -> None:
    """Every layout (CSV and JSON lines) sent again: nothing lands, each skip names the load it repeats
    and is recorded. The content decides, not the name: the same bytes renamed, elsewhere, are skipped."""
    first = ingest_exports(warehouse, export, progress=False)
    counts, landed = state(warehouse)
    load_of = {r.source_file: r.load_id for r in first}

    second = ingest_exports(warehouse, export, progress=False)

    assert [(r.source_file, r.status, r.rows_in, r.rows, r.rows_rejected, r.load_id) for r in second] == [
        (r.source_file, "skipped", 0, 0, 0, None) for r in first
    ]
    assert [r.checksum for r in second] == [r.checksum for r in first]
    # Unchanged by name, size and time: not read again. Read (--rehash), each is the same content.
    assert [r.message for r in second] == [
        f"same name, size and modification time as load {r.load_id} of {r.source_file} (landed)"
        for r in first
    ]
    rehashed = ingest_exports(warehouse, export, progress=False, rehash=True)
    assert [(r.status, r.checksum) for r in rehashed] == [("skipped", r.checksum) for r in first]
    assert [r.message for r in rehashed] == [
        f"same content as load {r.load_id} of {r.source_file} (landed)" for r in first
    ]
    assert raw_counts(warehouse) == counts
    # The loads the skips repeat are untouched.
    assert query(warehouse, f"SELECT * FROM audit.ingest_manifest WHERE status = 'landed' {ORDER}") == landed
    assert query(
        warehouse,
        "SELECT source_file, checksum, load_id, rows_in, row_count, rows_rejected FROM audit.ingest_manifest"
        " WHERE status = 'skipped' ORDER BY 1",
    ) == [(r.source_file, r.checksum, None, 0, 0, 0) for r in first for _run in (second, rehashed)]

    other = tmp_path / "other"
    for source, renamed in (
        ("crm/accounts.csv", "crm/accounts_resent.csv"),
        ("usage/events.jsonl", "usage/events_resent.jsonl"),
    ):
        (other / renamed).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(export / source, other / renamed)

    resent = ingest_exports(warehouse, other, progress=False)

    assert [(r.source_file, r.status, r.rows, r.message) for r in resent] == [
        (renamed, "skipped", 0, f"same content as load {load_of[source]} of {source} (landed)")
        for source, renamed in (
            ("crm/accounts.csv", "crm/accounts_resent.csv"),
            ("usage/events.jsonl", "usage/events_resent.jsonl"),
        )
    ]
    assert raw_counts(warehouse) == counts


def test_progress_bar_only_when_asked_or_on_a_terminal(
    tmp_path: Path, warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "export"
    write_file(root, "crm/accounts_a.csv", ACCOUNTS, records(ACCOUNTS, 2, tag="-a"))
    write_file(root, "crm/accounts_b.csv", ACCOUNTS, records(ACCOUNTS, 2, tag="-b"))

    ingest_exports(warehouse, root)  # progress=None and stderr is not a terminal under pytest
    assert capsys.readouterr() == ("", "")
    ingest_exports(warehouse, root, progress=True)
    assert "2/2 crm/accounts_b.csv" in capsys.readouterr().err


def test_ensure_warehouse_creates_empty_tables_and_is_idempotent(empty_warehouse: Path) -> None:
    with duckdb.connect(str(empty_warehouse)) as con:
        ensure_warehouse(con)  # again
    columns = [r[0] for r in query(empty_warehouse, "DESCRIBE raw.crm_accounts")]
    assert columns == [*ACCOUNTS.column_names, "_load_id", "_source_file", "_loaded_at", "_extra"]
    assert raw_counts(empty_warehouse) == dict.fromkeys(LAYOUTS_BY_TABLE, 0)
    assert manifest(empty_warehouse) == []


def test_ensure_warehouse_adds_columns_a_layout_gained(warehouse: Path) -> None:
    warehouse.parent.mkdir(parents=True)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE TABLE raw.crm_accounts (customer_id VARCHAR, _load_id VARCHAR)")
        con.execute("INSERT INTO raw.crm_accounts VALUES ('C1', 'old-load')")
        ensure_warehouse(con)
    columns = [r[0] for r in query(warehouse, "DESCRIBE raw.crm_accounts")]
    assert columns == [
        "customer_id",
        "_load_id",
        *ACCOUNTS.column_names[1:],
        "_source_file",
        "_loaded_at",
        "_extra",
    ]
    assert query(warehouse, "SELECT customer_id, customer_name FROM raw.crm_accounts") == [("C1", None)]


# ------------------------------------------------------------------------------------ refusing


def test_unparseable_date_in_a_small_file_refuses_it_naming_line_and_column(
    export: Path, warehouse: Path, tmp_path: Path
) -> None:
    """1 bad row in 5 is 20 %, above the 1 % allowed: the file is refused whole, its bad row recorded."""
    ingest_exports(warehouse, export, progress=False)
    counts_before = raw_counts(warehouse)
    rows = records(ACCOUNTS, 5, tag="-new")
    rows[3]["created_date"] = "2024-02-30"  # data row 4 is line 5, after the header
    bad = tmp_path / "bad"
    write_file(bad, "crm/accounts.csv", ACCOUNTS, rows)

    with pytest.raises(IngestError) as caught:
        ingest_exports(warehouse, bad, progress=False)

    error = caught.value
    assert (error.source_file, error.line, error.column) == ("crm/accounts.csv", 5, "created_date")
    (load_id,) = re.findall(r"load_id ([0-9a-f-]{36})", str(error))
    assert str(error) == (
        "crm/accounts.csv: 1 of 5 rows (20.0%) have problems, more than the 1.0% allowed, so the file was"
        " refused whole and nothing of it landed. First problems:\n"
        "  - crm/accounts.csv, line 5, column 'created_date': cannot read '2024-02-30' as DATE"
        " (expected YYYY-MM-DD)\n"
        f"Every rejected row is in audit.rejected_rows (load_id {load_id}). Fix the file and run the ingest"
        " again (or raise --max-rejected-share)."
    )
    assert raw_counts(warehouse) == counts_before
    assert query(
        warehouse,
        "SELECT source_file, status, rows_in, row_count, rows_rejected FROM audit.ingest_manifest"
        " WHERE load_id = $id",
        {"id": load_id},
    ) == [("crm/accounts.csv", "refused", 5, 0, 1)]
    assert query(
        warehouse,
        "SELECT source_file, line, column_name, reason, raw_content, disposition FROM audit.rejected_rows",
    ) == [
        (
            "crm/accounts.csv",
            5,
            "created_date",
            "cannot read '2024-02-30' as DATE (expected YYYY-MM-DD)",
            f"customer_id-3-new,customer_name-3,country-3,{CURRENCIES[3]},segment-3,2024-02-30",
            "refused",
        )
    ]


@pytest.mark.parametrize(
    ("table", "column", "bad", "reason"),
    [
        (
            "crm_accounts",
            "created_date",
            "01/02/2024",
            "cannot read '01/02/2024' as DATE (expected YYYY-MM-DD)",
        ),
        (
            "crm_cases",
            "created_at",
            "01/02/2024 10:00:00",
            "cannot read '01/02/2024 10:00:00' as TIMESTAMP (expected an ISO 8601 date and time)",
        ),
    ],
)
def test_non_iso_dates_are_refused_not_guessed(
    empty_warehouse: Path, tmp_path: Path, table: str, column: str, bad: str, reason: str
) -> None:
    """DuckDB's sniffer would read 01/02/2024 as 1 February; the contract is ISO 8601."""
    layout = LAYOUTS_BY_TABLE[table]
    rows = records(layout, 3)
    for row in rows:
        row[column] = bad
    write_file(tmp_path / "export", file_name(layout), layout, rows)
    counts_before = raw_counts(empty_warehouse)

    with pytest.raises(IngestError) as caught:
        ingest_exports(empty_warehouse, tmp_path / "export", progress=False)

    assert (caught.value.line, caught.value.column) == (2, column)
    assert str(caught.value).startswith(f"{file_name(layout)}: 3 of 3 rows (100.0%) have problems")
    for line in (2, 3, 4):
        assert f"  - {file_name(layout)}, line {line}, column '{column}': {reason}\n" in str(caught.value)
    assert raw_counts(empty_warehouse) == counts_before
    assert query(
        empty_warehouse,
        "SELECT line, column_name, reason, disposition FROM audit.rejected_rows ORDER BY line",
    ) == [(line, column, reason, "refused") for line in (2, 3, 4)]


@pytest.mark.parametrize(
    ("bad_line", "field", "bad_value", "column", "reason"),
    [
        (  # DuckDB's own reader reports the start of the 2048-row batch: line ~2049
            3000,
            "occurred_at",
            "yesterday",
            "occurred_at",
            "cannot read 'yesterday' as TIMESTAMP (expected an ISO 8601 date and time)",
        ),
        (3000, "quantity", "1,5", "quantity", "cannot read '1,5' as DECIMAL(18,4) (expected a number)"),
        (  # malformed JSON: DuckDB reports it one line late; no column, the character says where
            7,
            None,
            '{"event_id": "e7", oops',
            None,
            "not valid JSON: Expecting property name enclosed in double quotes at character 20",
        ),
    ],
)
def test_bad_jsonl_value_is_rejected_naming_exact_line_and_column_and_the_rest_lands(
    empty_warehouse: Path,
    tmp_path: Path,
    bad_line: int,
    field: str | None,
    bad_value: str,
    column: str | None,
    reason: str,
) -> None:
    """1 bad record in 5000 is under the 1 % allowed: it goes to audit.rejected_rows, the rest lands."""
    rows = [json.dumps(r) for r in records(EVENTS, 5000)]
    rows.insert(2, "")  # a blank line: DuckDB's record numbers no longer match lines
    if field is None:
        rows[bad_line - 1] = bad_value
    else:
        record = json.loads(rows[bad_line - 1])
        record[field] = bad_value
        rows[bad_line - 1] = json.dumps(record)
    root = single_file_export(tmp_path, "bad", "usage/events.jsonl", "\n".join(rows) + "\n")

    (result,) = ingest_exports(empty_warehouse, root, progress=False)

    assert (result.status, result.rows_in, result.rows, result.rows_rejected) == ("landed", 5000, 4999, 1)
    assert result.message == f"1 row(s) rejected, see audit.rejected_rows (load_id {result.load_id})"
    assert query(
        empty_warehouse, "SELECT rows_in, row_count, rows_rejected, status FROM audit.ingest_manifest"
    ) == [(5000, 4999, 1, "landed")]
    assert raw_counts(empty_warehouse)["usage_events"] == 4999
    assert query(
        empty_warehouse,
        "SELECT load_id, source_file, line, column_name, reason, raw_content, disposition"
        " FROM audit.rejected_rows",
    ) == [(result.load_id, "usage/events.jsonl", bad_line, column, reason, rows[bad_line - 1], "rejected")]


def test_unknown_file_refuses_the_whole_export(export: Path, warehouse: Path) -> None:
    (export / "crm" / "opportunities.csv").write_text("id\n1\n")

    with pytest.raises(IngestError) as caught:
        ingest_exports(warehouse, export, progress=False)

    message = str(caught.value)
    assert caught.value.source_file == "crm/opportunities.csv"
    assert message.startswith(
        "crm/opportunities.csv: no shape reads a csv file named like this, so the export was refused and"
        " nothing was landed. File names (without extension) each shape reads: canonical: crm/accounts*,"
    )
    assert message.endswith(
        "Rename or remove the file, leave it out with `ignore` in entitlements.yml (docs/configuration.md),"
        " or pass --format (docs/ingest.md)."
    )
    assert not warehouse.exists()  # refused before the warehouse was even opened


def test_every_file_refusing_the_export_is_named_at_once(export: Path, warehouse: Path) -> None:
    # A Salesforce Data Export holds every object of the org: name them all, not one per attempt.
    (export / "crm" / "opportunities.csv").write_text("id\n1\n")
    (export / "crm" / "products.csv").write_text("id\n1\n")
    (export / "crm" / "accounts_extra.csv").write_text("name\nAcme\n")  # a layout's name, no key column

    with pytest.raises(IngestError) as caught:
        ingest_exports(warehouse, export, progress=False)

    lines = str(caught.value).splitlines()
    assert lines[0] == (
        "3 files of this export cannot be read, so the export was refused and nothing was landed:"
    )
    assert lines[1].startswith("  - crm/accounts_extra.csv: missing required column 'customer_id'")
    assert lines[2:4] == [
        "  - crm/opportunities.csv: no shape reads a csv file named like this",
        "  - crm/products.csv: no shape reads a csv file named like this",
    ]
    assert lines[4].startswith("File names (without extension) each shape reads: canonical: crm/accounts*,")
    assert len(lines) == 5
    assert caught.value.source_file == "crm/accounts_extra.csv"
    assert not warehouse.exists()


def test_empty_file_is_refused(tmp_path: Path, warehouse: Path) -> None:
    root = single_file_export(tmp_path, "export", "crm/accounts.csv", "")

    with pytest.raises(IngestError) as caught:
        ingest_exports(warehouse, root, progress=False)

    assert caught.value.source_file == "crm/accounts.csv"
    assert str(caught.value) == (
        "crm/accounts.csv: the file is empty (expected a header line, or records)."
        " Re-export it, or remove it from the export."
    )
    assert not warehouse.exists()


# ------------------------------------------------------------------------------------- reverting


def test_revert_load_removes_exactly_that_load(tmp_path: Path, warehouse: Path) -> None:
    root = tmp_path / "export"
    write_file(root, file_name(ACCOUNTS, "_a"), ACCOUNTS, records(ACCOUNTS, 3, tag="-a"))
    write_file(root, file_name(ACCOUNTS, "_b"), ACCOUNTS, records(ACCOUNTS, 4, tag="-b"))
    write_file(root, file_name(EVENTS), EVENTS, records(EVENTS, 5))
    results = {r.source_file: r for r in ingest_exports(warehouse, root, progress=False)}
    reverted = results["crm/accounts_a.csv"]

    revert_load(warehouse, [reverted.load_id], "crm_accounts: 3 rows with an unknown currency")

    assert query(warehouse, "SELECT _source_file, count(*) FROM raw.crm_accounts GROUP BY ALL") == [
        ("crm/accounts_b.csv", 4)
    ]
    assert raw_counts(warehouse)["usage_events"] == 5
    manifest_rows = query(warehouse, "SELECT load_id, status, message FROM audit.ingest_manifest ORDER BY 1")
    assert manifest_rows == sorted(
        [
            (reverted.load_id, "reverted", "crm_accounts: 3 rows with an unknown currency"),
            (results["crm/accounts_b.csv"].load_id, "landed", ""),
            (results["usage/events.jsonl"].load_id, "landed", ""),
        ]
    )

    # A refused load no longer counts as landed: the fixed export lands again.
    again = {r.source_file: r.status for r in ingest_exports(warehouse, root, progress=False)}
    assert again == {
        "crm/accounts_a.csv": "landed",
        "crm/accounts_b.csv": "skipped",
        "usage/events.jsonl": "skipped",
    }
    assert raw_counts(warehouse)["crm_accounts"] == 7


def test_revert_unknown_load_changes_nothing(export: Path, warehouse: Path) -> None:
    results = ingest_exports(warehouse, export, progress=False)
    before = state(warehouse)

    with pytest.raises(ValueError, match="no-such-load"):
        revert_load(warehouse, [results[0].load_id, "no-such-load"], "test")

    assert state(warehouse) == before


def load_ids_by_schema(warehouse: Path, table: str) -> tuple[list[str], list[str]]:
    """The load ids with rows in raw.<table> and in raw_superseded.<table>."""
    sql = "SELECT DISTINCT _load_id FROM {}.{} ORDER BY 1"
    return (
        [r[0] for r in query(warehouse, sql.format("raw", table))],
        [r[0] for r in query(warehouse, sql.format(SUPERSEDED_SCHEMA, table))],
    )


def land_versions(tmp_path: Path, warehouse: Path, versions: int) -> list[str]:
    """crm/accounts.csv landed `versions` times, each a correction of the one before; their load ids."""
    root = tmp_path / "export"
    load_ids = []
    for version in range(versions):
        write_file(root, "crm/accounts.csv", ACCOUNTS, records(ACCOUNTS, 2 + version, tag=f"-v{version}"))
        (result,) = ingest_exports(warehouse, root, progress=False)
        load_ids.append(result.load_id)
    return load_ids


def test_reverting_corrections_moves_exactly_the_superseded_rows_back(
    tmp_path: Path, warehouse: Path
) -> None:
    v1, v2, v3 = land_versions(tmp_path, warehouse, 3)
    assert load_ids_by_schema(warehouse, "crm_accounts") == ([v3], sorted([v1, v2]))

    revert_load(warehouse, [v3], "test")  # v2 counts again; v1 stays superseded (by v2)
    assert load_ids_by_schema(warehouse, "crm_accounts") == ([v2], [v1])
    assert raw_counts(warehouse)["crm_accounts"] == 3

    revert_load(warehouse, [v1], "test")  # a superseded load reverted: its rows are gone, v2 untouched
    assert load_ids_by_schema(warehouse, "crm_accounts") == ([v2], [])
    statuses = query(warehouse, "SELECT load_id, status, superseded_by FROM audit.ingest_manifest")
    assert sorted(statuses) == sorted([(v1, "reverted", v2), (v2, "landed", None), (v3, "reverted", None)])


def test_reverting_a_correction_with_what_it_superseded_restores_nothing(
    tmp_path: Path, warehouse: Path
) -> None:
    v1, v2 = land_versions(tmp_path, warehouse, 2)

    revert_load(warehouse, [v1, v2], "test")

    assert load_ids_by_schema(warehouse, "crm_accounts") == ([], [])


def test_ensure_warehouse_sets_aside_the_superseded_rows_an_older_warehouse_kept_in_raw(
    tmp_path: Path, warehouse: Path
) -> None:
    v1, v2 = land_versions(tmp_path, warehouse, 2)
    with duckdb.connect(str(warehouse)) as con:  # as the ingest left a correction before raw_superseded
        con.execute(f"INSERT INTO raw.crm_accounts SELECT * FROM {SUPERSEDED_SCHEMA}.crm_accounts")
        con.execute(f"DROP SCHEMA {SUPERSEDED_SCHEMA} CASCADE")
    before = query(warehouse, "SELECT * FROM raw.crm_accounts WHERE _load_id = $id ORDER BY 1", {"id": v1})

    for _ in range(2):  # once moves them, again changes nothing
        with duckdb.connect(str(warehouse)) as con:
            ensure_warehouse(con)
        assert load_ids_by_schema(warehouse, "crm_accounts") == ([v2], [v1])
    assert query(warehouse, f"SELECT * FROM {SUPERSEDED_SCHEMA}.crm_accounts ORDER BY 1") == before
