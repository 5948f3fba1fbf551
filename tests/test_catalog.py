"""Catalog validation (docs/catalog.md): every rule, the check-catalog command, the ingest pre-flight.

Bad catalogs are the demo catalog with one mistake each, so every other row is known to be valid
and a test can assert the exact list of problems. Lines are physical CSV lines, header = line 1:
the demo's node on data row i is on line i + 2.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from entitlements.demo import catalog, generate_demo
from entitlements.demo.generator import _write_csv
from entitlements.ingest.catalog import CATALOG_LAYOUT, CatalogProblem, validate_catalog
from entitlements.ingest.land import IngestError, ensure_warehouse, ingest_exports
from entitlements.ingest.layouts import LAYOUTS
from tests.conftest import entitlements

pytestmark = pytest.mark.unit

NAME = "crm/catalog.csv"
THREE_LEVELS = (
    "the catalog has exactly three levels, package -> group -> entitlement;"
    " int_catalog_entitlements resolves no others and leaves such a node out"
)
DOCS = Path(__file__).resolve().parents[1] / "docs" / "catalog.md"
DEMO_WIDTH = len(catalog.CATALOG_COLUMNS)  # fields in a demo catalog line

Rows = list[dict[str, object]]


def demo_rows() -> Rows:
    return [dict(zip(catalog.CATALOG_COLUMNS, row, strict=True)) for row in catalog.CATALOG]


def row(rows: Rows, node_code: str) -> dict[str, object]:
    return next(r for r in rows if r["node_code"] == node_code)


def write_catalog(path: Path, rows: Rows, columns: tuple[str, ...] = catalog.CATALOG_COLUMNS) -> Path:
    """The catalog as the demo generator writes it (its CSV writer: empty for None)."""
    _write_csv(path, columns, rows)
    return path


def problems_of(tmp_path: Path, rows: Rows) -> list[str]:
    return [str(p) for p in validate_catalog(write_catalog(tmp_path / "catalog.csv", rows), name=NAME)]


# ------------------------------------------------------------------------------------- valid files


def test_demo_catalog_is_valid(tmp_path: Path) -> None:
    assert problems_of(tmp_path, demo_rows()) == []


def test_catalog_of_a_generated_demo_export_is_valid(tmp_path: Path) -> None:
    generate_demo(tmp_path / "exports", seed=1, customers=20, usage_events=5000)
    assert validate_catalog(tmp_path / "exports" / "crm" / "catalog.csv") == []


def test_terms_may_come_from_group_or_package(tmp_path: Path) -> None:
    rows = demo_rows()
    for code in ("API_PRO.CALLS", "API_PRO.DATA"):  # the unit moves up to the package
        row(rows, code)["unit"] = None
    row(rows, "API_PRO")["unit"] = "units"
    row(rows, "API_PRO.QUOTA")["limit_period"] = None  # the period moves up to the package
    row(rows, "API_PRO")["limit_period"] = "month"
    assert problems_of(tmp_path, rows) == []


def test_example_in_the_docs_is_valid(tmp_path: Path) -> None:
    """The documented example catalog is checked like a user's file."""
    blocks = re.findall(r"```csv\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.DOTALL)
    example = tmp_path / "catalog.csv"
    example.write_text(blocks[0], encoding="utf-8")
    assert blocks[0].startswith(",".join(catalog.CATALOG_COLUMNS) + "\n")
    assert validate_catalog(example) == []
    types = {r["entitlement_type"] for r in _csv_rows(example)}
    assert {"product", "service", "feature", "time_based"} <= types


def test_docs_describe_every_column_and_allowed_value() -> None:
    """docs/catalog.md follows the layout: a column or value added there must be documented."""
    docs = DOCS.read_text(encoding="utf-8")
    table = {line.split("|")[1].strip(" `"): line for line in docs.splitlines() if line.startswith("| `")}
    assert set(CATALOG_LAYOUT.column_names) <= set(table)
    for column, allowed in CATALOG_LAYOUT.enums.items():
        assert all(f"`{value}`" in table[column] for value in allowed), column


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_absent_optional_columns_and_extra_columns_are_fine(tmp_path: Path) -> None:
    rows = demo_rows()
    for r in rows:
        del r["coverage_hours"]
        r["crm_note"] = "not in the layout"
    columns = (*(c for c in catalog.CATALOG_COLUMNS if c != "coverage_hours"), "crm_note")
    assert validate_catalog(write_catalog(tmp_path / "catalog.csv", rows, columns)) == []


# ------------------------------------------------------------------------ one mistake, one message


def _set(code: str, /, **values: object) -> Callable[[Rows], None]:
    def mutate(rows: Rows) -> None:
        row(rows, code).update(values)

    return mutate


# name: (a mutation of the demo catalog, [(line, node_code, column, message)] expected)
MISTAKES: dict[str, tuple[Callable[[Rows], None], list[tuple[int, str, str, str]]]] = {
    "unknown parent": (
        _set("GOLD_SUPPORT.ONSITE", parent_code="GOLD_SUPPORT.CORES"),
        [
            (
                6,
                "GOLD_SUPPORT.ONSITE",
                "parent_code",
                "unknown parent 'GOLD_SUPPORT.CORES' (no node with that code)",
            )
        ],
    ),
    "missing unit": (
        _set("API_PRO.DATA", unit=None),
        [
            (
                17,
                "API_PRO.DATA",
                "unit",
                "missing unit: neither the entitlement nor its group 'API_PRO.QUOTA' nor its package"
                " 'API_PRO' sets one (e.g. incidents, visits, calls, GB)",
            )
        ],
    ),
    "negative limit_quantity": (
        _set("API_PRO.CALLS", limit_quantity=-100),
        [
            (
                16,
                "API_PRO.CALLS",
                "limit_quantity",
                "negative limit_quantity -100: it must be 0 or more (leave it empty for unlimited)",
            )
        ],
    ),
    "negative sla_response_hours": (
        _set("SILVER_SUPPORT.CORE", sla_response_hours="-24"),
        [
            (
                8,
                "SILVER_SUPPORT.CORE",
                "sla_response_hours",
                "negative sla_response_hours -24: it must be 0 or more"
                " (leave it empty for no response-time promise)",
            )
        ],
    ),
    "package with a parent": (
        _set("SILVER_SUPPORT", parent_code="GOLD_SUPPORT"),
        [
            (
                7,
                "SILVER_SUPPORT",
                "parent_code",
                "a package cannot have a parent (parent_code is 'GOLD_SUPPORT'): packages are the top"
                f" level; {THREE_LEVELS}. Leave parent_code empty",
            )
        ],
    ),
    "entitlement under a package": (
        _set("GOLD_SUPPORT.PHONE", parent_code="GOLD_SUPPORT"),
        [
            (
                5,
                "GOLD_SUPPORT.PHONE",
                "parent_code",
                "the parent of an entitlement must be a group, but 'GOLD_SUPPORT' (line 2) is a package;"
                f" {THREE_LEVELS}",
            )
        ],
    ),
    "group under a group": (
        _set("API_STARTER.QUOTA", parent_code="API_PRO.QUOTA"),
        [
            (
                19,
                "API_STARTER.QUOTA",
                "parent_code",
                "the parent of a group must be a package, but 'API_PRO.QUOTA' (line 15) is a group;"
                f" {THREE_LEVELS}",
            )
        ],
    ),
    "group without a parent": (
        _set("STANDARD_WARRANTY.REPAIR", parent_code=None),
        [
            (
                12,
                "STANDARD_WARRANTY.REPAIR",
                "parent_code",
                f"a group needs a parent package, but parent_code is empty; {THREE_LEVELS}",
            )
        ],
    ),
    "duplicate node_code": (
        _set("API_STARTER.DATA", node_code="API_STARTER.CALLS"),
        [
            (
                21,
                "API_STARTER.CALLS",
                "node_code",
                "duplicate node_code 'API_STARTER.CALLS': line 20 has the same code; node codes must be"
                " unique (children refer to them in parent_code)",
            )
        ],
    ),
    "entitlement without entitlement_code": (
        _set("SILVER_SUPPORT.ONSITE", entitlement_code=None),
        [
            (
                10,
                "SILVER_SUPPORT.ONSITE",
                "entitlement_code",
                "an entitlement without an entitlement_code: set the code that service deliveries"
                " (service_code), usage (meter_code) and overrides are matched on",
            )
        ],
    ),
    "entitlement_code twice in a package": (
        _set("GOLD_SUPPORT.PHONE", entitlement_code="INCIDENT"),
        [
            (
                5,
                "GOLD_SUPPORT.PHONE",
                "entitlement_code",
                "entitlement_code 'INCIDENT' is already granted by package 'GOLD_SUPPORT' (line 4):"
                " a package grants each entitlement_code once (int_entitlement_grants keys a grant by"
                " contract line and entitlement_code)",
            )
        ],
    ),
    "unknown entitlement_type": (
        _set("GOLD_SUPPORT", entitlement_type="services"),
        [
            (
                2,
                "GOLD_SUPPORT",
                "entitlement_type",
                "unknown entitlement_type 'services' (allowed: product, service, feature, time_based)",
            )
        ],
    ),
    "unknown limit_period": (
        _set("GOLD_SUPPORT.CORE", limit_period="yearly"),
        [
            (
                3,
                "GOLD_SUPPORT.CORE",
                "limit_period",
                "unknown limit_period 'yearly' (allowed: month, year, term)",
            )
        ],
    ),
    "unknown consumed_by": (
        _set("API_PRO.QUOTA", consumed_by="usage "),
        [
            (
                15,
                "API_PRO.QUOTA",
                "consumed_by",
                "unknown consumed_by 'usage ' (allowed: service, usage, none): remove the spaces around it",
            )
        ],
    ),
    "unknown coverage_hours": (
        _set("SILVER_SUPPORT.CORE", coverage_hours="9to5"),
        [
            (
                8,
                "SILVER_SUPPORT.CORE",
                "coverage_hours",
                "unknown coverage_hours '9to5' (allowed: business_hours, 24x7)",
            )
        ],
    ),
    "unknown node_level": (
        _set("STANDARD_WARRANTY.REPAIR", node_level="Group"),
        [
            (
                12,
                "STANDARD_WARRANTY.REPAIR",
                "node_level",
                "unknown node_level 'Group' (allowed: package, group, entitlement): values are lower case",
            )
        ],
    ),
    "limit without a limit_period": (
        _set("API_STARTER.QUOTA", limit_period=None),
        [
            (
                line,
                code,
                "limit_period",
                f"limit_quantity {limit} but no limit_period: neither the entitlement nor its group"
                " 'API_STARTER.QUOTA' nor its package 'API_STARTER' sets one. Set limit_period"
                " (month, year or term) to say over which period the limit counts",
            )
            for line, code, limit in ((20, "API_STARTER.CALLS", 20000), (21, "API_STARTER.DATA", 100))
        ],
    ),
    "inherited limit without a limit_period": (
        lambda rows: (
            _set("STANDARD_WARRANTY.REPAIR", limit_quantity=2, limit_period=None)(rows),
            _set("STANDARD_WARRANTY", limit_period=None)(rows),
        ),
        [
            (
                13,
                "STANDARD_WARRANTY.VISIT",
                "limit_period",
                "limit_quantity 2 (inherited from group 'STANDARD_WARRANTY.REPAIR') but no limit_period:"
                " neither the entitlement nor its group 'STANDARD_WARRANTY.REPAIR' nor its package"
                " 'STANDARD_WARRANTY' sets one. Set limit_period (month, year or term) to say over which"
                " period the limit counts",
            )
        ],
    ),
    "limit_quantity not a number": (
        _set("GOLD_SUPPORT.INCIDENT", limit_quantity="12,5"),
        [(4, "GOLD_SUPPORT.INCIDENT", "limit_quantity", "'12,5' is not a number (DECIMAL(18,4))")],
    ),
    "empty node_name": (
        _set("API_PRO", node_name=None),
        [(14, "API_PRO", "node_name", "node_name is empty: every node needs one")],
    ),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_mistake_is_reported_with_its_line(tmp_path: Path, mistake: str) -> None:
    mutate, expected = MISTAKES[mistake]
    rows = demo_rows()
    mutate(rows)

    assert problems_of(tmp_path, rows) == [
        f"{NAME}, line {line}, node {code}, column {column}: {message}"
        for line, code, column, message in expected
    ]


def test_cycle_names_every_node_in_it(tmp_path: Path) -> None:
    rows = demo_rows()
    row(rows, "GOLD_SUPPORT")["parent_code"] = "GOLD_SUPPORT.INCIDENT"  # package -> ... -> itself

    problems = validate_catalog(write_catalog(tmp_path / "catalog.csv", rows), name=NAME)

    cycle = (
        "parent links form a cycle: 'GOLD_SUPPORT' (line 2) -> 'GOLD_SUPPORT.INCIDENT' (line 4)"
        " -> 'GOLD_SUPPORT.CORE' (line 3) -> 'GOLD_SUPPORT'; 3 nodes never reach a package."
        " Point one of them at its real parent"
    )
    assert [(p.line, p.node_code, p.column) for p in problems] == [
        (2, "GOLD_SUPPORT", "parent_code"),  # a package with a parent
        (2, "GOLD_SUPPORT", "parent_code"),  # the cycle, reported once, on its first line
    ]
    assert problems[1].message == cycle
    assert str(problems[1]) == f"{NAME}, line 2, node GOLD_SUPPORT, column parent_code: {cycle}"


def test_node_that_is_its_own_parent_is_a_cycle(tmp_path: Path) -> None:
    rows = demo_rows()
    row(rows, "API_PRO.QUOTA")["parent_code"] = "API_PRO.QUOTA"

    problems = problems_of(tmp_path, rows)

    assert f"{NAME}, line 15, node API_PRO.QUOTA, column parent_code: parent links form a cycle:" in (
        "\n".join(problems)
    )
    assert "'API_PRO.QUOTA' (line 15) -> 'API_PRO.QUOTA'; 1 node never reaches a package" in problems[-1]


def test_every_problem_is_reported_in_line_order(tmp_path: Path) -> None:
    rows = demo_rows()
    for mistake in ("negative limit_quantity", "unknown parent", "unknown coverage_hours", "missing unit"):
        MISTAKES[mistake][0](rows)

    problems = validate_catalog(write_catalog(tmp_path / "catalog.csv", rows), name=NAME)

    assert [(p.line, p.node_code, p.column) for p in problems] == [
        (6, "GOLD_SUPPORT.ONSITE", "parent_code"),
        (8, "SILVER_SUPPORT.CORE", "coverage_hours"),
        (16, "API_PRO.CALLS", "limit_quantity"),
        (17, "API_PRO.DATA", "unit"),
    ]


def test_lines_are_physical_lines(tmp_path: Path) -> None:
    """A quoted line break in a name moves every later node one line down, blank lines count too."""
    rows = demo_rows()
    row(rows, "GOLD_SUPPORT")["node_name"] = "Gold\nSupport"
    MISTAKES["unknown parent"][0](rows)
    path = write_catalog(tmp_path / "catalog.csv", rows)
    text = path.read_text(encoding="utf-8").replace("\r\n", "\n").splitlines(keepends=True)
    path.write_text("".join([*text[:4], "\n", *text[4:]]), encoding="utf-8")  # blank line 5

    (problem,) = validate_catalog(path, name=NAME)

    assert problem.line == 8  # line 6 in the demo, + 1 for the line break, + 1 for the blank line
    assert path.read_text(encoding="utf-8").splitlines()[problem.line - 1].startswith("GOLD_SUPPORT.ONSITE,")


def test_problem_reads_file_line_node_column() -> None:
    problem = CatalogProblem(
        NAME, 7, "GOLD.X", "parent_code", "unknown parent 'GOLD.Y' (no node with that code)"
    )
    assert str(problem) == (
        "crm/catalog.csv, line 7, node GOLD.X, column parent_code:"
        " unknown parent 'GOLD.Y' (no node with that code)"
    )
    assert (
        str(CatalogProblem(NAME, 1, None, None, "the file is empty"))
        == "crm/catalog.csv, line 1: the file is empty"
    )


def test_file_is_named_as_given_by_default(tmp_path: Path) -> None:
    rows = demo_rows()
    MISTAKES["missing unit"][0](rows)
    path = write_catalog(tmp_path / "catalog.csv", rows)
    assert str(validate_catalog(path)[0]).startswith(f"{path}, line 17, node API_PRO.DATA, column unit: ")


def test_unreadable_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("\n")
    assert [str(p) for p in validate_catalog(empty, name=NAME)] == [
        f"{NAME}, line 1: the file is empty (expected a header line, then one node per line)"
    ]

    no_level = write_catalog(
        tmp_path / "no_level.csv", demo_rows(), tuple(c for c in catalog.CATALOG_COLUMNS if c != "node_level")
    )
    (problem,) = validate_catalog(no_level, name=NAME)
    assert (problem.line, problem.column) == (1, "node_level")
    assert problem.message.startswith(
        "missing required column 'node_level' (required: node_code, node_level,"
    )

    short = write_catalog(tmp_path / "short.csv", demo_rows())
    lines = short.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = "GOLD_SUPPORT.CORE,GOLD_SUPPORT,group,Premium Services\n"  # 8 fields short
    short.write_text("".join(lines), encoding="utf-8")
    assert str(validate_catalog(short, name=NAME)[0]) == (
        f"{NAME}, line 3, node GOLD_SUPPORT.CORE: 4 fields where the header has {DEMO_WIDTH}"
        " (a missing or extra comma, or an unquoted comma in a value)"
    )

    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(
        write_catalog(tmp_path / "ok.csv", demo_rows()).read_bytes() + "X,,package,Prämie\n".encode("latin-1")
    )
    (problem,) = validate_catalog(latin1, name=NAME)
    assert (problem.line, problem.message) == (22, "not UTF-8 text (byte 0xe4): save the file as UTF-8")


HAS_RESETS = "resets" in CATALOG_LAYOUT.column_names
needs_resets = pytest.mark.skipif(not HAS_RESETS, reason="layout crm_catalog has no resets column")


@needs_resets
def test_allowance_that_does_not_reset_needs_no_period(tmp_path: Path) -> None:
    """resets = false makes the period the term (int_catalog_entitlements), inherited like the rest."""
    rows = demo_rows()
    row(rows, "API_STARTER.QUOTA")["limit_period"] = None
    row(rows, "API_STARTER")["resets"] = "false"
    path = write_catalog(tmp_path / "catalog.csv", rows, (*catalog.CATALOG_COLUMNS, "resets"))
    assert validate_catalog(path) == []

    row(rows, "API_STARTER.CALLS")["resets"] = "true"  # this one resets again: it needs a period
    path = write_catalog(tmp_path / "catalog.csv", rows, (*catalog.CATALOG_COLUMNS, "resets"))
    assert [(p.line, p.column) for p in validate_catalog(path)] == [(20, "limit_period")]


@needs_resets
def test_resets_must_be_a_boolean(tmp_path: Path) -> None:
    rows = demo_rows()
    row(rows, "API_PRO.QUOTA")["resets"] = "monthly"
    path = write_catalog(tmp_path / "catalog.csv", rows, (*catalog.CATALOG_COLUMNS, "resets"))
    assert [str(p) for p in validate_catalog(path, name=NAME)] == [
        f"{NAME}, line 15, node API_PRO.QUOTA, column resets: 'monthly' is not a BOOLEAN (use true or false)"
    ]


# ----------------------------------------------------------------------------------------- the CLI


def test_check_catalog_exits_1_and_prints_every_problem(tmp_path: Path) -> None:
    rows = demo_rows()
    for mistake in ("unknown parent", "negative limit_quantity"):
        MISTAKES[mistake][0](rows)
    path = write_catalog(tmp_path / "catalog.csv", rows)

    result = entitlements("check-catalog", path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"{path}, line 6, node GOLD_SUPPORT.ONSITE, column parent_code: unknown parent 'GOLD_SUPPORT.CORES'"
        " (no node with that code)",
        f"{path}, line 16, node API_PRO.CALLS, column limit_quantity: negative limit_quantity -100:"
        " it must be 0 or more (leave it empty for unlimited)",
    ]


def test_check_catalog_exits_0_for_a_valid_file(tmp_path: Path) -> None:
    path = write_catalog(tmp_path / "catalog.csv", demo_rows())

    result = entitlements("check-catalog", path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"{path}: valid"
    assert result.stderr == ""


# ------------------------------------------------------------------------------------------ ingest


def _state(warehouse: Path) -> tuple[dict[str, int], int]:
    counts = " UNION ALL ".join(f"SELECT '{t.table}', count(*) FROM raw.{t.table}" for t in LAYOUTS)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        raw = dict(con.execute(counts).fetchall())
        (manifest,) = con.execute("SELECT count(*) FROM audit.ingest_manifest").fetchone()
    return raw, manifest


def test_ingest_refuses_an_export_whose_catalog_has_a_cycle(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    generate_demo(exports, seed=1, customers=20, usage_events=5000)
    rows = demo_rows()
    row(rows, "GOLD_SUPPORT")["parent_code"] = "GOLD_SUPPORT.INCIDENT"
    write_catalog(exports / "crm" / "catalog.csv", rows)
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        ensure_warehouse(con)

    with pytest.raises(IngestError) as caught:
        ingest_exports(warehouse, exports, progress=False)

    error = caught.value
    assert (error.source_file, error.line, error.column) == ("crm/catalog.csv", 2, "parent_code")
    message = str(error)
    assert message.startswith(
        "crm/catalog.csv, line 2: the catalog has 2 problems, so the export was refused"
        " and nothing was landed:\n"
    )
    assert (
        "  - crm/catalog.csv, line 2, node GOLD_SUPPORT, column parent_code: parent links form a cycle:"
        " 'GOLD_SUPPORT' (line 2) -> 'GOLD_SUPPORT.INCIDENT' (line 4) -> 'GOLD_SUPPORT.CORE' (line 3)"
        " -> 'GOLD_SUPPORT';"
    ) in message
    assert (
        "  - crm/catalog.csv, line 2, node GOLD_SUPPORT, column parent_code: a package cannot have a parent"
        in (message)
    )
    assert message.endswith("and run the ingest again.")
    # billing/ files sort before crm/catalog.csv: the pre-flight refused them all before any landed
    assert _state(warehouse) == (dict.fromkeys((t.table for t in LAYOUTS), 0), 0)


def test_ingest_lands_an_export_with_a_valid_catalog(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    generate_demo(exports, seed=1, customers=20, usage_events=5000)

    results = ingest_exports(tmp_path / "warehouse.duckdb", exports, progress=False)

    catalog_result = next(r for r in results if r.source_file == "crm/catalog.csv")
    assert (catalog_result.status, catalog_result.rows) == ("landed", len(catalog.CATALOG))


def test_ingest_names_a_malformed_catalog_row_not_the_header(tmp_path: Path) -> None:
    """A short row throws DuckDB's CSV sniffer off the header; the catalog check runs first."""
    exports = tmp_path / "exports"
    generate_demo(exports, seed=1, customers=20, usage_events=5000)
    path = exports / "crm" / "catalog.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = "GOLD_SUPPORT.CORE,GOLD_SUPPORT,group,Premium Services\r\n"
    path.write_text("".join(lines), encoding="utf-8")

    with pytest.raises(IngestError) as caught:
        ingest_exports(tmp_path / "warehouse.duckdb", exports, progress=False)

    assert (caught.value.source_file, caught.value.line, caught.value.column) == ("crm/catalog.csv", 3, None)
    assert (
        f"  - crm/catalog.csv, line 3, node GOLD_SUPPORT.CORE: 4 fields where the header has {DEMO_WIDTH}"
        in str(caught.value)
    )
    assert not (tmp_path / "warehouse.duckdb").exists()
