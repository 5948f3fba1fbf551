"""Checking a price book file (layout billing_price_book) before it lands; docs/pricing.md is the format.

A price is the set of rows sharing (item_code, currency, price_type, package_code, valid_from):
one row, or one row per tier for a graduated or volume price. The dbt pricing macro reads a price
as a whole (a tier starts where the previous one ends), so a tier rejected at landing, two
unbounded tiers or a column the price's charge model does not read would change what a quantity
costs without any error. The rules here catch those before anything lands.

Every problem is reported, not only the first, each with the physical CSV line (header = line 1);
values are judged as the ingest reads them (entitlements/ingest/whole_file.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

from entitlements.ingest.layouts import CHARGE_MODELS, LAYOUTS_BY_TABLE
from entitlements.ingest.whole_file import FileProblem, Problems, Row, WholeFile, check_values, read_rows

__all__ = ["PRICE_BOOK_LAYOUT", "PriceBookProblem", "validate_price_book"]

PRICE_BOOK_LAYOUT = LAYOUTS_BY_TABLE["billing_price_book"]
PRICE_KEY = ("item_code", "currency", "price_type", "package_code", "valid_from")
TIERED = ("graduated", "volume")
_PRICE_BOOK = WholeFile(
    PRICE_BOOK_LAYOUT,
    subject="item_code",
    row_noun="price or tier",
    empty_means={"tier_up_to": "the last tier, which has no upper bound"},
)
# Columns only some charge models read: set on a row of another model they would be ignored, so the
# price would not be what the file seems to say. Each with the models reading it and what to do.
_MODEL_COLUMNS: dict[str, tuple[tuple[str, ...], str]] = {
    "tier_up_to": (TIERED, "set charge_model graduated or volume on every tier of the price"),
    "flat_amount": (TIERED, "for a fixed charge use charge_model flat, whose unit_amount is the charge"),
    "package_size": (("package",), "set charge_model package to sell in packages"),
    "rounding": (("package",), "set charge_model package to sell in packages"),
    "free_units": (
        ("per_unit", "package"),
        "for units free on a graduated or volume price, make its first tier free (unit_amount 0)",
    ),
}
# Where the general advice above would not fit the row's model.
_INSTEAD: dict[tuple[str, str], str] = {
    (
        "flat_amount",
        "flat",
    ): "put the charge in unit_amount (a flat price charges it for any quantity above 0)",
}


class PriceBookProblem(FileProblem):
    """One problem in a price book; str() names file, line, item and column, then the problem."""

    SUBJECT = "item"

    @property
    def item_code(self) -> str | None:
        return self.subject


class _PriceRow(Row):
    @property
    def model(self) -> str:
        return self.values["charge_model"] or "per_unit"

    @property
    def tier(self) -> Decimal | None:
        value = self.typed.get("tier_up_to")
        return value if isinstance(value, Decimal) else None

    @property
    def tier_unreadable(self) -> bool:
        return self.values["tier_up_to"] is not None and self.tier is None

    @property
    def price(self) -> str:
        """The price the row belongs to, as messages name it."""
        item, currency, price_type, package, valid_from = (self.values[c] for c in PRICE_KEY)
        return (
            f"{item} {currency} {price_type}"
            + (f" for package {package}" if package else "")
            + (f" from {valid_from}" if valid_from else "")
        )

    def add(self, problems: Problems[PriceBookProblem], column: str | None, message: str) -> None:
        problems.add(self.line, self.values["item_code"], column, message)


def validate_price_book(path: Path, *, name: str | None = None) -> list[PriceBookProblem]:
    """Every problem in a price book CSV, in line order; an empty list means the file is valid.

    name: how the file is named in the problems (default: the path as given), e.g. the path
    relative to the export directory.
    """
    path = Path(path)
    problems = Problems(str(path) if name is None else name, PriceBookProblem)
    rows = read_rows(path, _PRICE_BOOK, problems, _PriceRow)
    if rows is None:  # unreadable, or a header the rules can't be applied to
        return list(problems)
    check_values(rows, _PRICE_BOOK, problems)
    off_model: set[int] = set()
    for price in _prices(rows):
        off_model.update(_check_price(price, problems))
    for row in rows:
        # A row of another model than its price's, or of an unknown one: its model is what to fix.
        if row.model in CHARGE_MODELS and row.line not in off_model:
            _check_columns(row, problems)
    return problems.in_line_order(PRICE_BOOK_LAYOUT)


def _prices(rows: list[_PriceRow]) -> Iterable[list[_PriceRow]]:
    """The rows of each price, in file order. A row whose key is missing or unreadable belongs to no
    price: the landing rejects it, and it is reported already."""
    prices: dict[tuple[str | None, ...], list[_PriceRow]] = {}
    for row in rows:
        key = tuple(row.values[c] for c in PRICE_KEY)
        unreadable_date = row.values["valid_from"] is not None and row.typed.get("valid_from") is None
        if None in key[:3] or unreadable_date:
            continue
        prices.setdefault(key, []).append(row)
    return prices.values()


# ------------------------------------------------------------------------------------- price rules


def _check_price(rows: list[_PriceRow], problems: Problems[PriceBookProblem]) -> list[int]:
    """One charge model, no duplicate rows, one row or well-formed tiers. Returns the lines of rows
    whose (known) charge model is not the price's, i.e. that of its first row with a known one."""
    known = [row for row in rows if row.model in CHARGE_MODELS]
    model = known[0].model if known else None
    for row in known:
        if row.model != model:
            said = (
                f"charge_model {row.model}"
                if row.values["charge_model"]
                else "charge_model is empty, which means per_unit"
            )
            row.add(
                problems,
                "charge_model",
                f"{said}, but line {known[0].line} of the same price ({row.price}) is {model}: all rows of"
                " a price have one charge_model. Set it on every row, or make this row a price of its own"
                " (another valid_from or package_code)",
            )
    one_model = len(known) == len(rows) and all(row.model == model for row in rows)
    _check_duplicates(rows, model if one_model else None, problems)
    # Tiers a (reported) unreadable or negative bound makes uncertain are judged once it is fixed.
    bounds_known = not any(row.tier_unreadable or (row.tier or 0) < 0 for row in rows)
    if one_model and model in TIERED and bounds_known:
        _check_tiers(rows, model, problems)
    return [row.line for row in known if row.model != model]


def _check_duplicates(rows: list[_PriceRow], model: str | None, problems: Problems[PriceBookProblem]) -> None:
    """Each tier once; a price that is not tiered has one row. model: the price's, if one and known."""
    seen: dict[Decimal | None, _PriceRow] = {}
    for row in rows:
        if row.tier_unreadable:
            continue
        earlier = seen.setdefault(row.tier, row)
        if earlier is row:
            if model is not None and model not in TIERED and len(seen) > 1:
                first = next(iter(seen.values()))
                row.add(
                    problems,
                    "item_code",
                    f"a second row for the {model} price {row.price} (line {first.line} is the first): only"
                    " graduated and volume prices have one row per tier. Remove one, or give it another"
                    " valid_from or package_code",
                )
        elif row.tier is None and model in TIERED:
            row.add(
                problems,
                "tier_up_to",
                f"a second unbounded tier (empty tier_up_to; line {earlier.line} is one too): a {model} price"
                " has exactly one, its last tier. Set this tier's tier_up_to, or remove the row",
            )
        else:
            tier = f" and tier_up_to {row.values['tier_up_to']}" if row.tier is not None else ""
            row.add(
                problems,
                "item_code" if row.tier is None else "tier_up_to",
                f"duplicate row: line {earlier.line} has the same item_code, currency, price_type,"
                f" package_code and valid_from{tier}. Remove one of them",
            )


def _check_tiers(rows: list[_PriceRow], model: str, problems: Problems[PriceBookProblem]) -> None:
    """Tiers listed with tier_up_to above 0 and ascending, ending with the one unbounded tier."""
    highest: tuple[Decimal, _PriceRow] | None = None  # the highest tier_up_to so far, and its row
    unbounded: _PriceRow | None = None
    for row in rows:
        tier, text = row.tier, row.values["tier_up_to"]
        if tier is None:
            unbounded = unbounded or row
            continue
        if tier == 0:
            row.add(
                problems,
                "tier_up_to",
                "tier_up_to 0: a tier covers the quantities above the previous tier's tier_up_to up to its"
                " own, so tier_up_to must be more than 0 (the first tier starts at 0)",
            )
        if unbounded is not None:
            row.add(
                problems,
                "tier_up_to",
                f"tier_up_to {text} comes after the unbounded tier (line {unbounded.line}): list the tiers"
                " in ascending order of tier_up_to, the unbounded tier (empty tier_up_to) last",
            )
        elif highest is not None and tier < highest[0]:
            row.add(
                problems,
                "tier_up_to",
                f"tier_up_to {text} is below tier_up_to {highest[1].values['tier_up_to']} on line"
                f" {highest[1].line}: list the tiers in ascending order of tier_up_to (a tier covers the"
                " quantities above the previous tier's tier_up_to, up to its own)",
            )
        if highest is None or tier > highest[0]:
            highest = (tier, row)
    if unbounded is None and highest is not None:
        last = highest[1]
        last.add(
            problems,
            "tier_up_to",
            f"the {model} price {last.price} has no unbounded tier, so a quantity above"
            f" {last.values['tier_up_to']} has no price: leave tier_up_to empty on its last tier,"
            " or add a last tier with an empty tier_up_to",
        )


# --------------------------------------------------------------------------------------- row rules


def _check_columns(row: _PriceRow, problems: Problems[PriceBookProblem]) -> None:
    """The columns the row's charge model reads are set, and only those."""
    model = row.model
    for column, (models, advice) in _MODEL_COLUMNS.items():
        if row.values[column] is not None and model not in models:
            instead = _INSTEAD.get((column, model), advice)
            row.add(
                problems,
                column,
                f"{column} is set, but a {model} price does not read it (only {_either(models)} prices"
                f" do): leave it empty, or {instead}",
            )
    if model == "package":
        size = row.typed.get("package_size")
        if row.values["package_size"] is None:
            row.add(
                problems,
                "package_size",
                "a package price needs package_size: how many units one package holds (more than 0)",
            )
        elif size == 0:
            row.add(
                problems,
                "package_size",
                "package_size 0: a package holds more than 0 units. Set how many units one package holds",
            )


def _either(values: tuple[str, ...]) -> str:
    return f"{', '.join(values[:-1])} and {values[-1]}" if len(values) > 1 else values[0]
