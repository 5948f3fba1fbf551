"""Ingest: landing exports in raw, skipping what is already there, refusing bad files whole."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from ingest.land import IngestError, ensure_warehouse, ingest_exports, revert_load
from ingest.layouts import LAYOUTS, LAYOUTS_BY_TABLE, Column, Layout, layout_for

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
    return 2 + LAYOUTS.index(layout)


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """One file per layout, plus the files the ingest must ignore."""
    root = tmp_path / "export"
    for layout in LAYOUTS:
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
    counts = " UNION ALL ".join(f"SELECT '{t.table}', count(*) FROM raw.{t.table}" for t in LAYOUTS)
    return dict(query(warehouse, counts))


def manifest(warehouse: Path) -> list[tuple]:
    return query(warehouse, "SELECT * FROM audit.ingest_manifest ORDER BY loaded_at, source_file, status")


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

    assert [r.source_file for r in results] == sorted(file_name(layout) for layout in LAYOUTS)
    assert {r.status for r in results} == {"landed"}
    assert {r.table: r.rows for r in results} == {layout.table: row_count(layout) for layout in LAYOUTS}
    assert raw_counts(warehouse) == {layout.table: row_count(layout) for layout in LAYOUTS}
    assert len({r.load_id for r in results}) == len(LAYOUTS)

    lineage = " UNION ALL ".join(
        f"SELECT DISTINCT '{r.table}', _load_id, _source_file, _loaded_at IS NOT NULL FROM raw.{r.table}"
        for r in results
    )
    expected_lineage = [(r.table, r.load_id, r.source_file, True) for r in results]
    assert sorted(query(warehouse, lineage)) == sorted(expected_lineage)
    landed = query(
        warehouse,
        "SELECT load_id, source_file, export_dir, table_name, sha256, row_count, status"
        " FROM audit.ingest_manifest",
    )
    export_dir = str(export.resolve())
    expected = [(r.load_id, r.source_file, export_dir, r.table, r.sha256, r.rows, "landed") for r in results]
    assert sorted(landed) == sorted(expected)


def test_values_land_typed(export: Path, warehouse: Path) -> None:
    ingest_exports(warehouse, export, progress=False)

    first = query(warehouse, "SELECT customer_id, created_date FROM raw.crm_accounts ORDER BY customer_id")[0]
    assert first == ("customer_id-0", date(2024, 1, 1))
    event = query(warehouse, "SELECT quantity, occurred_at FROM raw.usage_events ORDER BY event_id")[0]
    assert event == (Decimal("0.5"), datetime(2024, 1, 1, 8, 30))


def test_extra_columns_dropped_and_absent_optional_columns_land_null(tmp_path: Path, warehouse: Path) -> None:
    rows = records(ACCOUNTS, 3)
    for row in rows:
        del row["segment"]
        row["crm_internal_note"] = "not in the layout"
    root = tmp_path / "export"
    write_file(root, "crm/accounts.csv", ACCOUNTS, rows)

    (result,) = ingest_exports(warehouse, root, progress=False)

    assert result.rows == 3
    assert "dropped columns not in the layout: crm_internal_note" in result.message
    assert "landed as NULL: segment" in result.message
    assert query(warehouse, "SELECT count(*) FROM raw.crm_accounts WHERE segment IS NULL") == [(3,)]
    assert "crm_internal_note" not in [r[0] for r in query(warehouse, "DESCRIBE raw.crm_accounts")]


def test_second_ingest_skips_every_file(export: Path, warehouse: Path) -> None:
    first = ingest_exports(warehouse, export, progress=False)
    counts = raw_counts(warehouse)

    second = ingest_exports(warehouse, export, progress=False)

    assert [(r.source_file, r.status, r.rows, r.load_id) for r in second] == [
        (r.source_file, "skipped", 0, None) for r in first
    ]
    assert [r.sha256 for r in second] == [r.sha256 for r in first]
    assert all(f"load {f.load_id}" in s.message for f, s in zip(first, second, strict=True))
    assert raw_counts(warehouse) == counts
    statuses = query(warehouse, "SELECT status, count(*) FROM audit.ingest_manifest GROUP BY ALL ORDER BY 1")
    assert statuses == [("landed", len(LAYOUTS)), ("skipped", len(LAYOUTS))]


def test_progress_bar_only_when_asked_or_on_a_terminal(
    tmp_path: Path, warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "export"
    write_file(root, "crm/accounts_a.csv", ACCOUNTS, records(ACCOUNTS, 2, tag="-a"))
    write_file(root, "crm/accounts_b.csv", ACCOUNTS, records(ACCOUNTS, 2, tag="-b"))

    ingest_exports(warehouse, root)  # progress=None and stderr is not a terminal under pytest
    assert capsys.readouterr() == ("", "")
    ingest_exports(warehouse, root, progress=True)
    assert "ingest 2/2 crm/accounts_b.csv" in capsys.readouterr().err


def test_ensure_warehouse_creates_empty_tables_and_is_idempotent(empty_warehouse: Path) -> None:
    with duckdb.connect(str(empty_warehouse)) as con:
        ensure_warehouse(con)  # again
    columns = [r[0] for r in query(empty_warehouse, "DESCRIBE raw.crm_accounts")]
    assert columns == [*ACCOUNTS.column_names, "_load_id", "_source_file", "_loaded_at"]
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
    assert columns == ["customer_id", "_load_id", *ACCOUNTS.column_names[1:], "_source_file", "_loaded_at"]
    assert query(warehouse, "SELECT customer_id, customer_name FROM raw.crm_accounts") == [("C1", None)]


# ------------------------------------------------------------------------------------ refusing


def test_missing_required_column_refuses_before_anything_lands(
    export: Path, warehouse: Path, tmp_path: Path
) -> None:
    ingest_exports(warehouse, export, progress=False)
    before = state(warehouse)
    # A new export whose billing files (sorted before crm/) are fine and would land first.
    new = tmp_path / "export2"
    for layout in LAYOUTS:
        write_file(new, file_name(layout), layout, records(layout, 2, tag="-new"))
    rows = records(ACCOUNTS, 2, tag="-new")
    for row in rows:
        del row["created_date"]
    write_file(new, "crm/accounts.csv", ACCOUNTS, rows)

    with pytest.raises(IngestError) as caught:
        ingest_exports(warehouse, new, progress=False)

    error = caught.value
    assert (error.source_file, error.column, error.line) == ("crm/accounts.csv", "created_date", None)
    assert str(error).startswith(
        "crm/accounts.csv: missing required column 'created_date' (layout crm_accounts; required: "
    )
    assert "Add the column to the export or fix the header." in str(error)
    assert state(warehouse) == before


def test_unparseable_date_refuses_the_file_naming_line_and_column(
    export: Path, warehouse: Path, tmp_path: Path
) -> None:
    ingest_exports(warehouse, export, progress=False)
    before = state(warehouse)
    rows = records(ACCOUNTS, 5, tag="-new")
    rows[3]["created_date"] = "2024-02-30"  # data row 4 is line 5, after the header
    bad = tmp_path / "bad"
    write_file(bad, "crm/accounts.csv", ACCOUNTS, rows)

    with pytest.raises(IngestError) as caught:
        ingest_exports(warehouse, bad, progress=False)

    error = caught.value
    assert (error.source_file, error.line, error.column) == ("crm/accounts.csv", 5, "created_date")
    assert str(error).startswith("crm/accounts.csv, line 5, column 'created_date' (DATE): ")
    assert "2024-02-30" in str(error)
    assert "Nothing from this file was landed" in str(error)
    assert state(warehouse) == before


@pytest.mark.parametrize(("table", "column"), [("crm_accounts", "created_date"), ("crm_cases", "created_at")])
def test_non_iso_dates_are_refused_not_guessed(
    empty_warehouse: Path, tmp_path: Path, table: str, column: str
) -> None:
    """DuckDB's sniffer would read 01/02/2024 as 1 February; the contract is ISO 8601."""
    layout = LAYOUTS_BY_TABLE[table]
    rows = records(layout, 3)
    for row in rows:
        row[column] = "01/02/2024" + (" 10:00:00" if column == "created_at" else "")
    write_file(tmp_path / "export", file_name(layout), layout, rows)
    before = state(empty_warehouse)

    with pytest.raises(IngestError) as caught:
        ingest_exports(empty_warehouse, tmp_path / "export", progress=False)

    assert (caught.value.line, caught.value.column) == (2, column)
    assert '"01/02/2024' in str(caught.value)
    assert state(empty_warehouse) == before


@pytest.mark.parametrize(
    ("bad_line", "field", "bad_value", "column"),
    [
        (3000, "occurred_at", "yesterday", "occurred_at"),  # DuckDB reports the batch start: line ~2049
        (3000, "quantity", "1,5", "quantity"),
        (7, None, '{"event_id": "e7", oops', None),  # malformed JSON: DuckDB reports one line late
    ],
)
def test_bad_jsonl_value_names_exact_line_and_column(
    empty_warehouse: Path,
    tmp_path: Path,
    bad_line: int,
    field: str | None,
    bad_value: str,
    column: str | None,
) -> None:
    rows = [json.dumps(r) for r in records(EVENTS, 5000)]
    rows.insert(2, "")  # a blank line: DuckDB's record numbers no longer match lines
    if field is None:
        rows[bad_line - 1] = bad_value
    else:
        record = json.loads(rows[bad_line - 1])
        record[field] = bad_value
        rows[bad_line - 1] = json.dumps(record)
    root = single_file_export(tmp_path, "bad", "usage/events.jsonl", "\n".join(rows) + "\n")
    before = state(empty_warehouse)

    with pytest.raises(IngestError) as caught:
        ingest_exports(empty_warehouse, root, progress=False)

    error = caught.value
    assert (error.source_file, error.line, error.column) == ("usage/events.jsonl", bad_line, column)
    assert str(error).startswith(f"usage/events.jsonl, line {bad_line}")
    assert state(empty_warehouse) == before


def test_unknown_file_refuses_the_whole_export(export: Path, warehouse: Path) -> None:
    (export / "crm" / "opportunities.csv").write_text("id\n1\n")

    with pytest.raises(IngestError) as caught:
        ingest_exports(warehouse, export, progress=False)

    assert caught.value.source_file == "crm/opportunities.csv"
    assert str(caught.value).startswith("crm/opportunities.csv: no layout matches this file")
    assert "crm/accounts*.csv" in str(caught.value)
    assert not warehouse.exists()  # refused before the warehouse was even opened


def test_empty_file_is_refused(tmp_path: Path, warehouse: Path) -> None:
    root = single_file_export(tmp_path, "export", "crm/accounts.csv", "")

    with pytest.raises(IngestError, match=r"^crm/accounts.csv: the file is empty \(expected a header line\)"):
        ingest_exports(warehouse, root, progress=False)


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
            (reverted.load_id, "refused", "crm_accounts: 3 rows with an unknown currency"),
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
