"""Price book validation (docs/pricing.md): every rule, the check-price-book command, the ingest
pre-flight, and the documented examples (valid, and each worked amount what the rules give).

Files are written out line by line, header = line 1, so each expected line can be counted by hand.
"""

from __future__ import annotations

import math
import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest

from entitlements.demo import catalog, generate_demo
from entitlements.demo.generator import _write_csv
from entitlements.ingest.land import IngestError, ensure_warehouse, ingest_exports
from entitlements.ingest.layouts import LAYOUTS
from entitlements.ingest.price_book import PRICE_BOOK_LAYOUT, PriceBookProblem, validate_price_book
from tests.conftest import entitlements

pytestmark = pytest.mark.unit

NAME = "billing/price_book.csv"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "pricing.md"
TIERS = "item_code,currency,price_type,unit_amount,charge_model,tier_up_to"


def book(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    return [str(p) for p in validate_price_book(write(tmp_path / "price_book.csv", text), name=NAME)]


# ------------------------------------------------------------------------------------- valid files

VALID = {
    "only the required columns": book(
        "item_code,currency,price_type,unit_amount",
        "GOLD_SUPPORT,USD,annual_fee,12000.00",
        "INCIDENT,USD,unit,250",
        "INCIDENT,EUR,unit,230",  # another currency: another price
        "INCIDENT,USD,premium_surcharge,75",  # another price type: another price
    ),
    "per_unit": book(
        "item_code,currency,price_type,unit_amount,charge_model,free_units",
        "ONSITE_VISIT,EUR,unit,450.00,per_unit,2",
        "INCIDENT,EUR,unit,200.00,,",  # empty charge_model: per_unit
    ),
    "package": book(
        "item_code,currency,price_type,unit_amount,charge_model,package_size,rounding,free_units",
        "API_CALLS,USD,unit,2.00,package,1000,up,",
        "API_DATA,USD,unit,5.00,package,10,,100",  # rounding defaults to up
        "API_SMS,USD,unit,0.50,package,100,down,",
    ),
    "graduated": book(
        "item_code,currency,price_type,unit_amount,charge_model,tier_up_to,flat_amount",
        "DATA_GB,USD,unit,0.50,graduated,100,10",
        "DATA_GB,USD,unit,0.40,graduated,1000,",
        "DATA_GB,USD,unit,0.25,graduated,,20.00",
        "SINGLE,USD,unit,1,graduated,,",  # one tier, unbounded
    ),
    "volume": book(
        TIERS,
        "DESIGN_SEATS,EUR,unit,30.00,volume,10",
        "OTHER,EUR,unit,1,volume,",  # tiers of different prices may interleave
        "DESIGN_SEATS,EUR,unit,25.00,volume,50.5",
        "DESIGN_SEATS,EUR,unit,20.00,volume,",
    ),
    "flat": book(
        "item_code,currency,price_type,unit_amount,charge_model",
        "ONSITE_VISIT,GBP,premium_surcharge,150.00,flat",
    ),
    "package prices and price changes": book(
        "item_code,currency,price_type,unit_amount,package_code,valid_from,charge_model,tier_up_to",
        "INCIDENT,USD,unit,250.00,,,,",
        "INCIDENT,USD,unit,275.00,,2025-07-01,,",
        "INCIDENT,USD,unit,180.00,GOLD_SUPPORT,2025-01-01,,",
        # a price may change its charge model at a valid_from
        "INCIDENT,USD,unit,150.00,GOLD_SUPPORT,2026-01-01,volume,10",
        "INCIDENT,USD,unit,120.00,GOLD_SUPPORT,2026-01-01,volume,",
    ),
}


@pytest.mark.parametrize("example", VALID)
def test_valid_price_books(tmp_path: Path, example: str) -> None:
    assert problems_of(tmp_path, VALID[example]) == []


def test_demo_price_book_is_valid(tmp_path: Path) -> None:
    generate_demo(tmp_path / "exports", seed=1, customers=20, usage_events=5000)
    assert validate_price_book(tmp_path / "exports" / "billing" / "price_book.csv") == []


def test_every_column_with_extra_columns_and_spaces_is_fine(tmp_path: Path) -> None:
    """The full layout, a column the layout lacks (ignored), codes with spaces (trimmed on landing)."""
    columns = ",".join(PRICE_BOOK_LAYOUT.column_names)
    text = book(
        f"{columns},billing_note",
        "API_CALLS,USD,unit,2.00,API_PRO,package,2025-01-01,,,1000,down,500,from the 2025 list",
        " API_CALLS , USD ,unit,0.002,,per_unit, 2025-01-01 ,,,,,,",
    )
    assert problems_of(tmp_path, text) == []


# ------------------------------------------------------------------------ one mistake, one message

# name: (the file, [(line, item_code, column, message)] expected)
MISTAKES: dict[str, tuple[str, list[tuple[int, str | None, str | None, str]]]] = {
    "mixed charge models": (
        book(
            TIERS,
            "DATA_GB,USD,unit,0.50,graduated,100",
            "DATA_GB,USD,unit,0.40,,1000",
            "DATA_GB,USD,unit,0.25,graduated,",
        ),
        [
            (
                3,
                "DATA_GB",
                "charge_model",
                "charge_model is empty, which means per_unit, but line 2 of the same price (DATA_GB USD"
                " unit) is graduated: all rows of a price have one charge_model. Set it on every row, or"
                " make this row a price of its own (another valid_from or package_code)",
            )
        ],
    ),
    "mixed known charge models in a dated package price": (
        book(
            "item_code,currency,price_type,unit_amount,package_code,valid_from,charge_model",
            "INCIDENT,USD,unit,250.00,GOLD,2025-01-01,flat",
            "INCIDENT,USD,unit,250.00,GOLD,2025-01-01,per_unit",
        ),
        [
            (
                3,
                "INCIDENT",
                "item_code",  # a price that is not tiered has one row, whichever model is right
                "duplicate row: line 2 has the same item_code, currency, price_type, package_code and"
                " valid_from. Remove one of them",
            ),
            (
                3,
                "INCIDENT",
                "charge_model",
                "charge_model per_unit, but line 2 of the same price (INCIDENT USD unit for package GOLD"
                " from 2025-01-01) is flat: all rows of a price have one charge_model. Set it on every"
                " row, or make this row a price of its own (another valid_from or package_code)",
            ),
        ],
    ),
    "two rows of a per_unit price": (
        book(
            "item_code,currency,price_type,unit_amount,tier_up_to",
            "INCIDENT,USD,unit,250.00,",
            "INCIDENT,USD,unit,200.00,10",
        ),
        [
            (
                3,
                "INCIDENT",
                "item_code",
                "a second row for the per_unit price INCIDENT USD unit (line 2 is the first): only"
                " graduated and volume prices have one row per tier. Remove one, or give it another"
                " valid_from or package_code",
            ),
            (
                3,
                "INCIDENT",
                "tier_up_to",
                "tier_up_to is set, but a per_unit price does not read it (only graduated and volume"
                " prices do): leave it empty, or set charge_model graduated or volume on every tier of"
                " the price",
            ),
        ],
    ),
    "duplicate row": (
        book(
            "item_code,currency,price_type,unit_amount,package_code",
            "INCIDENT,USD,unit,250.00,GOLD",
            "INCIDENT,USD,unit,250.00,",
            " INCIDENT ,USD,unit,240.00,GOLD",  # the same code once trimmed, as the ingest reads it
        ),
        [
            (
                4,
                "INCIDENT",
                "item_code",
                "duplicate row: line 2 has the same item_code, currency, price_type, package_code and"
                " valid_from. Remove one of them",
            )
        ],
    ),
    "duplicate tier": (
        book(
            TIERS,
            "DATA_GB,USD,unit,0.50,graduated,100",
            "DATA_GB,USD,unit,0.40,graduated,100.0",
            "DATA_GB,USD,unit,0.25,graduated,",
        ),
        [
            (
                3,
                "DATA_GB",
                "tier_up_to",
                "duplicate row: line 2 has the same item_code, currency, price_type, package_code and"
                " valid_from and tier_up_to 100.0. Remove one of them",
            )
        ],
    ),
    "tiers not ascending": (
        book(
            TIERS,
            "DATA_GB,USD,unit,0.50,graduated,1000",
            "DATA_GB,USD,unit,0.40,graduated,100",
            "DATA_GB,USD,unit,0.25,graduated,",
        ),
        [
            (
                3,
                "DATA_GB",
                "tier_up_to",
                "tier_up_to 100 is below tier_up_to 1000 on line 2: list the tiers in ascending order of"
                " tier_up_to (a tier covers the quantities above the previous tier's tier_up_to, up to"
                " its own)",
            )
        ],
    ),
    "unbounded tier not last": (
        book(
            TIERS,
            "DATA_GB,USD,unit,0.50,graduated,100",
            "DATA_GB,USD,unit,0.25,graduated,",
            "DATA_GB,USD,unit,0.40,graduated,1000",
        ),
        [
            (
                4,
                "DATA_GB",
                "tier_up_to",
                "tier_up_to 1000 comes after the unbounded tier (line 3): list the tiers in ascending"
                " order of tier_up_to, the unbounded tier (empty tier_up_to) last",
            )
        ],
    ),
    "no unbounded tier": (
        book(
            TIERS,
            "DESIGN_SEATS,EUR,unit,30.00,volume,10",
            "DESIGN_SEATS,EUR,unit,25.00,volume,50",
        ),
        [
            (
                3,
                "DESIGN_SEATS",
                "tier_up_to",
                "the volume price DESIGN_SEATS EUR unit has no unbounded tier, so a quantity above 50 has"
                " no price: leave tier_up_to empty on its last tier, or add a last tier with an empty"
                " tier_up_to",
            )
        ],
    ),
    "two unbounded tiers": (
        book(
            TIERS,
            "DATA_GB,USD,unit,0.50,graduated,100",
            "DATA_GB,USD,unit,0.40,graduated,",
            "DATA_GB,USD,unit,0.25,graduated,",
        ),
        [
            (
                4,
                "DATA_GB",
                "tier_up_to",
                "a second unbounded tier (empty tier_up_to; line 3 is one too): a graduated price has"
                " exactly one, its last tier. Set this tier's tier_up_to, or remove the row",
            )
        ],
    ),
    "tier_up_to 0": (
        book(
            TIERS,
            "DATA_GB,USD,unit,0,graduated,0",
            "DATA_GB,USD,unit,0.25,graduated,",
        ),
        [
            (
                2,
                "DATA_GB",
                "tier_up_to",
                "tier_up_to 0: a tier covers the quantities above the previous tier's tier_up_to up to"
                " its own, so tier_up_to must be more than 0 (the first tier starts at 0)",
            )
        ],
    ),
    "package without package_size": (
        book(
            "item_code,currency,price_type,unit_amount,charge_model,package_size",
            "API_CALLS,USD,unit,2.00,package,",
        ),
        [
            (
                2,
                "API_CALLS",
                "package_size",
                "a package price needs package_size: how many units one package holds (more than 0)",
            )
        ],
    ),
    "package_size 0": (
        book(
            "item_code,currency,price_type,unit_amount,charge_model,package_size",
            "API_CALLS,USD,unit,2.00,package,0.0",
        ),
        [
            (
                2,
                "API_CALLS",
                "package_size",
                "package_size 0: a package holds more than 0 units. Set how many units one package holds",
            )
        ],
    ),
    "package columns on a per_unit price": (
        book(
            "item_code,currency,price_type,unit_amount,package_size,rounding",
            "API_CALLS,USD,unit,2.00,1000,up",
        ),
        [
            (
                2,
                "API_CALLS",
                column,
                f"{column} is set, but a per_unit price does not read it (only package prices do): leave"
                " it empty, or set charge_model package to sell in packages",
            )
            for column in ("package_size", "rounding")
        ],
    ),
    "flat_amount on a flat price": (
        book(
            "item_code,currency,price_type,unit_amount,charge_model,flat_amount",
            "ONSITE_VISIT,GBP,premium_surcharge,0,flat,150",
        ),
        [
            (
                2,
                "ONSITE_VISIT",
                "flat_amount",
                "flat_amount is set, but a flat price does not read it (only graduated and volume prices"
                " do): leave it empty, or put the charge in unit_amount (a flat price charges it for any"
                " quantity above 0)",
            )
        ],
    ),
    "free_units on tiers": (
        book(
            "item_code,currency,price_type,unit_amount,charge_model,tier_up_to,free_units",
            "DATA_GB,USD,unit,0.50,graduated,100,10",
            "DATA_GB,USD,unit,0.25,graduated,,",
        ),
        [
            (
                2,
                "DATA_GB",
                "free_units",
                "free_units is set, but a graduated price does not read it (only per_unit and package"
                " prices do): leave it empty, or for units free on a graduated or volume price, make its"
                " first tier free (unit_amount 0)",
            )
        ],
    ),
    "unknown charge_model": (
        book(
            "item_code,currency,price_type,unit_amount,charge_model,tier_up_to",
            "DATA_GB,USD,unit,0.50,tiered,100",  # its columns are judged once the model is fixed
        ),
        [
            (
                2,
                "DATA_GB",
                "charge_model",
                "unknown charge_model 'tiered' (allowed: per_unit, package, graduated, volume, flat)",
            )
        ],
    ),
    "unknown rounding": (
        book(
            "item_code,currency,price_type,unit_amount,charge_model,package_size,rounding",
            "API_CALLS,USD,unit,2.00,package,1000,Up",
        ),
        [
            (
                2,
                "API_CALLS",
                "rounding",
                "unknown rounding 'Up' (allowed: up, down): values are lower case",
            )
        ],
    ),
    "unknown price_type and currency": (
        book(
            "item_code,currency,price_type,unit_amount",
            "INCIDENT,usd,units,250.00",
        ),
        [
            (
                2,
                "INCIDENT",
                "currency",
                f"unknown currency 'usd' (not one of the {len(PRICE_BOOK_LAYOUT.enums['currency'])}"
                " allowed): values are upper case",
            ),
            (
                2,
                "INCIDENT",
                "price_type",
                "unknown price_type 'units' (allowed: annual_fee, unit, premium_surcharge)",
            ),
        ],
    ),
    "values the landing would reject": (
        book(
            "item_code,currency,price_type,unit_amount,valid_from,tier_up_to,charge_model",
            "INCIDENT,USD,unit,-5,2025-7-1,,",
            'DATA_GB,USD,unit,0.1234567,,"1,000",graduated',  # an unreadable bound: tiers not judged
            "DATA_GB,USD,unit,0.25,0024-03-15,,graduated",
            "VISIT,USD,unit,,,,",
        ),
        [
            (2, "INCIDENT", "unit_amount", "negative unit_amount -5: it must be 0 or more"),
            (2, "INCIDENT", "valid_from", "'2025-7-1' is not a valid DATE (write YYYY-MM-DD)"),
            (
                3,
                "DATA_GB",
                "unit_amount",
                "'0.1234567' has more decimals than unit_amount holds (6): send the exact value"
                " (nothing is rounded)",
            ),
            (3, "DATA_GB", "tier_up_to", "'1,000' is not a number (DECIMAL(18,4))"),
            (
                4,
                "DATA_GB",
                "valid_from",
                "date 0024-03-15 is outside 1900-01-01 to 9999-12-31: not a plausible date",
            ),
            (5, "VISIT", "unit_amount", "unit_amount is empty: every price or tier needs one"),
        ],
    ),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_mistake_is_reported_with_its_line(tmp_path: Path, mistake: str) -> None:
    text, expected = MISTAKES[mistake]
    assert problems_of(tmp_path, text) == [
        f"{NAME}, line {line}"
        + (f", item {item}" if item else "")
        + (f", column {column}" if column else "")
        + f": {message}"
        for line, item, column, message in expected
    ]


def test_every_problem_is_reported_in_line_order(tmp_path: Path) -> None:
    text = book(
        "item_code,currency,price_type,unit_amount,charge_model,tier_up_to,package_size,free_units",
        "DATA_GB,USD,unit,0.50,graduated,1000,,5",
        "API_CALLS,USD,unit,2.00,package,,,",
        "DATA_GB,USD,unit,0.40,graduated,100,,",
        "",  # a blank line counts
        "DATA_GB,USD,unit,0.25,graduated,,10,",
    )

    problems = validate_price_book(write(tmp_path / "price_book.csv", text), name=NAME)

    assert [(p.line, p.item_code, p.column) for p in problems] == [
        (2, "DATA_GB", "free_units"),
        (3, "API_CALLS", "package_size"),
        (4, "DATA_GB", "tier_up_to"),
        (6, "DATA_GB", "package_size"),
    ]


def test_lines_are_physical_lines(tmp_path: Path) -> None:
    """A quoted line break moves every later row one line down."""
    text = book(
        "item_code,currency,price_type,unit_amount,package_code,billing_note",
        'INCIDENT,USD,unit,250.00,,"two',
        'lines"',
        "INCIDENT,USD,unit,250.00,,",
    )
    (problem,) = validate_price_book(write(tmp_path / "price_book.csv", text), name=NAME)
    assert (problem.line, problem.column) == (4, "item_code")


def test_problem_reads_file_line_item_column() -> None:
    problem = PriceBookProblem(NAME, 7, "DATA_GB", "tier_up_to", "tier_up_to 0: ...")
    assert (
        str(problem) == "billing/price_book.csv, line 7, item DATA_GB, column tier_up_to: tier_up_to 0: ..."
    )
    assert (
        str(PriceBookProblem(NAME, 1, None, None, "the file is empty"))
        == f"{NAME}, line 1: the file is empty"
    )


def test_unreadable_files(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "\n") == [
        f"{NAME}, line 1: the file is empty (expected a header line, then one price or tier per line)"
    ]
    assert problems_of(tmp_path, book("item_code,currency,price_type", "INCIDENT,USD,unit")) == [
        f"{NAME}, line 1, column unit_amount: missing required column 'unit_amount'"
        " (required: item_code, currency, price_type, unit_amount)"
    ]
    assert problems_of(
        tmp_path, book("item_code,currency,price_type,unit_amount", "INCIDENT,USD,250.00")
    ) == [
        f"{NAME}, line 2, item INCIDENT: 3 fields where the header has 4 (a missing or extra comma,"
        " or an unquoted comma in a value)",
        f"{NAME}, line 2, item INCIDENT, column price_type: unknown price_type '250.00'"
        " (allowed: annual_fee, unit, premium_surcharge)",
        f"{NAME}, line 2, item INCIDENT, column unit_amount: unit_amount is empty:"
        " every price or tier needs one",
    ]
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(
        book("item_code,currency,price_type,unit_amount", "PRÄMIE,EUR,unit,1").encode("latin-1")
    )
    assert [str(p) for p in validate_price_book(latin1, name=NAME)] == [
        f"{NAME}, line 2: not UTF-8 text (byte 0xc4): save the file as UTF-8"
    ]


# ----------------------------------------------------------------------------------------- the CLI


def test_check_price_book_exits_1_and_prints_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path / "price_book.csv", MISTAKES["two rows of a per_unit price"][0])

    result = entitlements("check-price-book", path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert [line.split(": ", 1)[0] for line in result.stderr.splitlines()] == [
        f"{path}, line 3, item INCIDENT, column item_code",
        f"{path}, line 3, item INCIDENT, column tier_up_to",
    ]


def test_check_price_book_exits_0_for_a_valid_file(tmp_path: Path) -> None:
    path = write(tmp_path / "price_book.csv", VALID["graduated"])

    result = entitlements("check-price-book", path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"{path}: valid"
    assert result.stderr == ""


# ------------------------------------------------------------------------------------------ ingest


def _demo_with_price_book(tmp_path: Path, *extra: str) -> Path:
    """A demo export whose price book has every layout column, then the extra lines."""
    exports = tmp_path / "exports"
    generate_demo(exports, seed=1, customers=20, usage_events=5000)
    path = exports / "billing" / "price_book.csv"
    _write_csv(path, PRICE_BOOK_LAYOUT.column_names, catalog.price_book_rows())
    with path.open("a", encoding="utf-8", newline="") as handle:
        handle.writelines(f"{line}\r\n" for line in extra)
    return exports


def _empty(warehouse: Path) -> bool:
    counts = " UNION ALL ".join(f"SELECT count(*) FROM raw.{t.table}" for t in LAYOUTS)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        landed = sum(n for (n,) in con.execute(counts).fetchall())
        (manifest,) = con.execute("SELECT count(*) FROM audit.ingest_manifest").fetchone()
    return landed == 0 and manifest == 0


def test_ingest_refuses_an_export_whose_price_book_has_a_problem(tmp_path: Path) -> None:
    first_extra = len(catalog.price_book_rows()) + 2  # header, then one line per demo price
    exports = _demo_with_price_book(
        tmp_path,
        "NEW_GB,USD,unit,0.50,,graduated,,100,,,,",
        "NEW_GB,USD,unit,0.40,,graduated,,,,,,",
        "NEW_GB,USD,unit,0.25,,graduated,,,,,,",
    )
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        ensure_warehouse(con)

    with pytest.raises(IngestError) as caught:
        ingest_exports(warehouse, exports, progress=False)

    error = caught.value
    line = first_extra + 2
    assert (error.source_file, error.line, error.column) == (NAME, line, "tier_up_to")
    assert str(error) == (
        f"{NAME}, line {line}: the price book has 1 problem, so the export was refused and nothing was"
        " landed:\n"
        f"  - {NAME}, line {line}, item NEW_GB, column tier_up_to: a second unbounded tier (empty"
        f" tier_up_to; line {first_extra + 1} is one too): a graduated price has exactly one, its last tier."
        " Set this tier's tier_up_to, or remove the row\n"
        "Fix the price book (docs/pricing.md describes the format; `entitlements check-price-book FILE`"
        " lists the problems without ingesting) and run the ingest again."
    )
    assert _empty(warehouse)


def test_ingest_lands_a_valid_tiered_price_book(tmp_path: Path) -> None:
    exports = _demo_with_price_book(
        tmp_path,
        "NEW_GB,USD,unit,0.50,,graduated,,100,,,,",
        "NEW_GB,USD,unit,0.25,,graduated,,,20,,,",
    )

    results = ingest_exports(tmp_path / "warehouse.duckdb", exports, progress=False)

    landed = next(r for r in results if r.source_file == NAME)
    assert (landed.status, landed.rows) == ("landed", len(catalog.price_book_rows()) + 2)


# -------------------------------------------------------------------------------------------- docs


def _doc_examples() -> list[tuple[str, list[dict[str, str]]]]:
    """Each ```csv block of docs/pricing.md, with the rows of the amounts table after it (if any)."""
    text = DOCS.read_text(encoding="utf-8")
    examples = []
    for match in re.finditer(r"```csv\n(.*?)```\n(.*?)(?=```|\n#)", text, flags=re.DOTALL):
        table = [line for line in match[2].splitlines() if line.startswith("|")]
        rows = []
        if table:
            header = [cell.strip() for cell in table[0].strip("|").split("|")]
            rows = [
                dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True))
                for line in table[2:]
            ]
        examples.append((match[1], rows))
    return examples


def test_examples_in_the_docs_are_valid(tmp_path: Path) -> None:
    examples = _doc_examples()
    assert len(examples) >= 8
    models = set()
    for i, (snippet, _) in enumerate(examples):
        path = write(tmp_path / f"example_{i}.csv", snippet)
        assert [str(p) for p in validate_price_book(path)] == [], snippet
        models.update(re.findall(r",(per_unit|package|graduated|volume|flat)\b", snippet))
    assert models == {"per_unit", "package", "graduated", "volume", "flat"}


def test_amounts_in_the_docs_follow_from_the_rules() -> None:
    worked = 0
    for snippet, table in _doc_examples():
        lines = snippet.splitlines()
        header = lines[0].split(",")
        rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
        for example in table:
            amount, currency = example["amount"].split()
            assert currency == rows[0]["currency"], example
            on = date.fromisoformat(example["date"]) if "date" in example else None
            expected = _amount(rows, Decimal(example["quantity"]), example.get("package"), on)
            assert Decimal(amount) == expected, (snippet, example)
            worked += 1
    assert worked >= 15


def _amount(rows: list[dict[str, str]], q: Decimal, package: str | None, on: date | None) -> Decimal:
    """The amount docs/pricing.md's rules give: an independent reading of them, not the dbt macro."""

    def in_force(package_code: str) -> list[dict[str, str]]:
        mine = [r for r in rows if r.get("package_code", "") == package_code]
        starts = {r.get("valid_from", "") for r in mine}
        started = [s for s in starts if not s or on is None or date.fromisoformat(s) <= on]
        start = max(started, default=None)  # "" (since always) sorts before any date
        return [r for r in mine if r.get("valid_from", "") == start]

    price = (package and in_force(package)) or in_force("")
    assert price, "no price in force"

    def number(row: dict[str, str], column: str, default: str = "0") -> Decimal:
        return Decimal(row.get(column) or default)

    first = price[0]
    model = first.get("charge_model") or "per_unit"
    billable = max(q - number(first, "free_units"), Decimal(0))
    unit = number(first, "unit_amount")
    total = Decimal(0)
    if q == 0:
        pass
    elif model == "per_unit":
        total = billable * unit
    elif model == "package":
        packages = billable / number(first, "package_size")
        rounded = math.floor(packages) if first.get("rounding") == "down" else math.ceil(packages)
        total = rounded * unit
    elif model == "flat":
        total = unit
    else:
        tiers = sorted(
            price, key=lambda r: Decimal(r["tier_up_to"]) if r["tier_up_to"] else Decimal("Infinity")
        )
        lower = Decimal(0)
        for tier in tiers:
            upper = number(tier, "tier_up_to", "Infinity")
            if model == "graduated" and q > lower:
                total += (min(q, upper) - lower) * number(tier, "unit_amount") + number(tier, "flat_amount")
            elif model == "volume" and lower < q <= upper:
                total = q * number(tier, "unit_amount") + number(tier, "flat_amount")
            lower = upper
    exponent = 0 if first["currency"] == "JPY" else 2
    return total.quantize(Decimal(1).scaleb(-exponent), ROUND_HALF_UP)


def test_docs_describe_every_column_and_allowed_value() -> None:
    """docs/pricing.md follows the layout: a column or value added there must be documented."""
    docs = DOCS.read_text(encoding="utf-8")
    table = {line.split("|")[1].strip(" `"): line for line in docs.splitlines() if line.startswith("| `")}
    assert set(PRICE_BOOK_LAYOUT.column_names) <= set(table)
    for column, allowed in PRICE_BOOK_LAYOUT.enums.items():
        if column != "currency":  # ISO 4217: the docs name a few
            assert all(f"`{value}`" in table[column] for value in allowed), column
    assert "entitlements check-price-book" in docs
    assert "\n## Net billing: credits, discounts and credit notes\n" in docs
