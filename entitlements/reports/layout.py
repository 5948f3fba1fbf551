"""The reports' one look: number and date formats, the headline band, the table component, the index page.

Every report opens the same way: its title, the date its marts answer for, the marts' version (a
fingerprint of their content, render.marts_fingerprint, not a run id: a page rendered again from the
same marts is the same page, byte for byte), a note on currencies, then 3 to 5 key figures in plain
words, each with its comparison (`Headline`). Each report module computes its figures in one function
(`<report>.headline`), from the marts, with SQL; this module only formats and lays them out.

Each figure carries what it shows as data attributes (data-figure, data-currency, data-value: the exact
value), which the tests read from the page and compare with the marts; the headline is also written as
`<report>_headline.json` beside the page, which the index page (`index_page`) shows.

Tables (common.ReportTables.show) are `table.ent-table`: assets/report.js, inlined once in each page's
head by the renderer (PAGE_ASSETS), sorts them by a click on a header, filters them and pages them 25
rows at a time. Stdlib only: the run's process imports this to write the index, without pandas.
"""

from __future__ import annotations

import functools
import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from entitlements.ingest.currencies import MINOR_UNITS

ASSETS_DIR = Path(__file__).parent / "assets"
ASSET_FILES: tuple[Path, ...] = (ASSETS_DIR / "report.css", ASSETS_DIR / "report.js")
PAGE_SIZE = 25  # rows a table shows at a time (assets/report.js)
CURRENCY_NOTE = (
    "Amounts are in each contract's currency, with that currency's decimals (JPY none), and are never"
    " added across currencies."
)
TONES = ("neutral", "good", "warn", "bad")
MONTH_TICKS = "%Y-%m"  # a chart's month axis, in the pages' one date format (day, month)


# --------------------------------------------------------------------------- formats


def decimals(currency: str | None) -> int:
    """The currency's minor-unit exponent (ISO 4217: JPY 0, USD 2, BHD 3); 2 when unknown or None."""
    return MINOR_UNITS.get((currency or "").upper(), 2)


def exact(amount: object, currency: str | None = None) -> str:
    """An amount as a plain decimal string at the currency's decimals ("1234.50", "1058"): the value a
    figure's data-value holds. Half up, as a price is rounded."""
    value = Decimal(str(amount)) if amount is not None else Decimal(0)
    return str(value.quantize(Decimal(1).scaleb(-decimals(currency)), rounding=ROUND_HALF_UP))


def money(amount: object, currency: str) -> str:
    """'USD 1,234.50', 'JPY 1,058': the currency's code first, its own decimals, thousands separated."""
    places = decimals(currency)
    return f"{currency} {Decimal(exact(amount, currency)):,.{places}f}"


def count(n: object, singular: str, plural: str | None = None) -> str:
    """'1 contract', '1,204 contracts'."""
    number = int(n or 0)  # type: ignore[call-overload]
    return f"{number:,} {singular if number == 1 else (plural or singular + 's')}"


def percent(part: object, whole: object, places: int = 1) -> str | None:
    """part / whole as '12.5 %', None when whole is 0 or missing."""
    if whole is None or Decimal(str(whole)) == 0:
        return None
    share = Decimal(str(part or 0)) * 100 / Decimal(str(whole))
    return f"{share.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)} %"


def notes(*parts: str | None) -> str:
    """A figure's note from its parts, the empty ones (a share with no base, say) left out."""
    return ", ".join(part for part in parts if part)


def share_of(part: object, whole: object, of: str) -> str | None:
    """'40.2 % of it' (of='of it'), None when there is no whole to take a share of."""
    shown = percent(part, whole)
    return f"{shown} {of}" if shown else None


def day(value: date | datetime | str | None) -> str:
    """The one date format of every page: ISO, 2026-10-31."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        value = value.date()
    return value.isoformat() if isinstance(value, date) else date.fromisoformat(str(value)[:10]).isoformat()


def month(value: date) -> str:
    """A calendar month: 2026-10."""
    return value.strftime("%Y-%m")


# --------------------------------------------------------------------------- the headline


@dataclass(frozen=True)
class Value:
    """One number of a figure: the text shown, and what it is (key, exact value, its currency or the
    item it counts, e.g. a migration step) for the tests and the index. note: a few words beside it
    (its comparison); colour: a leakage category's, shown as a chip."""

    key: str
    text: str
    raw: str
    currency: str | None = None
    note: str = ""
    item: str | None = None
    colour: str | None = None


@dataclass(frozen=True)
class Figure:
    """A key figure: a label in plain words, its values (one per currency, or one), and its comparison."""

    label: str
    values: tuple[Value, ...]
    comparison: str = ""
    tone: str = "neutral"  # the card's accent: neutral, good, warn, bad
    wide: bool = False  # two columns of the band: values with longer words (a migration step's result)

    def __post_init__(self) -> None:
        if self.tone not in TONES:
            raise ValueError(f"tone {self.tone!r} is not one of {TONES}")


@dataclass(frozen=True)
class Headline:
    """The top of a report: title, as-of date, marts version, currency note, lead sentence, figures."""

    report: str
    title: str
    as_of: date | None
    marts_version: str | None
    lead: str
    figures: tuple[Figure, ...]
    currency_note: str = CURRENCY_NOTE
    extra_meta: tuple[str, ...] = field(default=())  # e.g. the migration run shown

    def _repr_html_(self) -> str:
        return headline_html(self)

    def as_json(self) -> dict:
        out = asdict(self)
        out["as_of"] = day(self.as_of) or None
        return out

    def save(self, out_dir: Path) -> Path:
        """`<out_dir>/<report>_headline.json`, which the index page shows."""
        path = Path(out_dir) / f"{self.report}_headline.json"
        path.write_text(json.dumps(self.as_json(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return path


def money_value(key: str, amount: object, currency: str, note: str = "") -> Value:
    return Value(key, money(amount, currency), exact(amount, currency), currency, note)


def count_value(
    key: str, n: object, singular: str, plural: str | None = None, note: str = "", item: str | None = None
) -> Value:
    return Value(key, count(n, singular, plural), str(int(n or 0)), None, note, item)  # type: ignore[call-overload]


def percent_value(
    key: str, part: object, whole: object, currency: str | None = None, note: str = ""
) -> Value:
    """A share as '12.5 %' shown, its exact value to two decimals ('12.53'); 'no base' when whole is 0."""
    shown = percent(part, whole)
    raw = (
        ""
        if shown is None
        else str(
            (Decimal(str(part or 0)) * 100 / Decimal(str(whole))).quantize(
                Decimal("0.01"), rounding=ROUND_HALF_UP
            )
        )
    )
    text = shown or "no base"
    return Value(key, f"{currency} {text}" if currency else text, raw, currency, note)


def chip(colour: str) -> str:
    """A small square of a category's colour (the seed leakage_categories' colour)."""
    return f'<span class="ent-chip" style="background:{html.escape(colour)}"></span>'


def _value_html(value: Value) -> str:
    attrs = f'data-figure="{html.escape(value.key)}" data-value="{html.escape(value.raw)}"'
    if value.currency:
        attrs += f' data-currency="{html.escape(value.currency)}"'
    if value.item:
        attrs += f' data-item="{html.escape(value.item)}"'
    note = f'<span class="ent-note">{html.escape(value.note)}</span>' if value.note else ""
    colour = chip(value.colour) if value.colour else ""
    kind = "ent-text" if value.colour else "ent-amount"  # a category's name may wrap, a number may not
    text = f'<span class="{kind}">{colour}{html.escape(value.text)}</span>'
    return f'<div class="ent-value" {attrs}>{text}{note}</div>'


def _figure_html(figure: Figure) -> str:
    values = "".join(_value_html(v) for v in figure.values) or '<div class="ent-value">none</div>'
    comparison = f'<div class="ent-comparison">{figure.comparison}</div>' if figure.comparison else ""
    classes = f"ent-figure ent-{figure.tone}" + (" ent-wide" if figure.wide else "")
    label = f'<div class="ent-label">{html.escape(figure.label)}</div>'
    return f'<div class="{classes}">{label}{values}{comparison}</div>'


def meta_html(headline: Headline) -> str:
    parts = []
    if headline.as_of is not None:
        parts.append(f'As of <time datetime="{day(headline.as_of)}">{day(headline.as_of)}</time>')
    if headline.marts_version:
        parts.append(
            f'marts version <code title="a fingerprint of the content of the marts this report reads">'
            f"{html.escape(headline.marts_version[:12])}</code>"
        )
    parts.extend(html.escape(text) for text in headline.extra_meta)
    parts.append(html.escape(headline.currency_note))
    return "".join(f"<span>{p}</span>" for p in parts)


def headline_html(headline: Headline, *, level: int = 1, link: str | None = None) -> str:
    """The band: title (h1 on a report, h2 with a link on the index), meta line, lead, figure cards.
    Figure comparisons may hold markup (a category's colour chip); every value is escaped."""
    title = html.escape(headline.title)
    if link:
        title = f'<a href="{html.escape(link)}">{title}</a>'
    return (
        f'<section class="ent-headline" data-report="{html.escape(headline.report)}">'
        f"<h{level}>{title}</h{level}>"
        f'<p class="ent-meta">{meta_html(headline)}</p>'
        f'<p class="ent-lead">{html.escape(headline.lead)}</p>'
        f'<div class="ent-figures">{"".join(_figure_html(f) for f in headline.figures)}</div>'
        "</section>"
    )


def headline_from_json(data: Mapping) -> Headline:
    figures = tuple(
        Figure(
            f["label"],
            tuple(Value(**v) for v in f["values"]),
            f["comparison"],
            f["tone"],
            f.get("wide", False),
        )
        for f in data["figures"]
    )
    as_of = date.fromisoformat(data["as_of"]) if data.get("as_of") else None
    return Headline(
        data["report"],
        data["title"],
        as_of,
        data.get("marts_version"),
        data["lead"],
        figures,
        data.get("currency_note", CURRENCY_NOTE),
        tuple(data.get("extra_meta", ())),
    )


# --------------------------------------------------------------------------- page assets


@functools.cache
def page_styles() -> str:
    css = ASSET_FILES[0].read_text(encoding="utf-8")
    return f'<style type="text/css">\n{css}</style>\n'


@functools.cache
def page_assets() -> str:
    """The CSS and the table component, inlined in every page's head (no file, no network)."""
    js = ASSET_FILES[1].read_text(encoding="utf-8")
    return f"{page_styles()}<script>\n{js}</script>\n"


def table_attributes(name: str) -> str:
    """The attributes that make a shown table the component's (sortable, filterable, paged)."""
    return f'class="ent-table" data-table="{html.escape(name)}"'


# --------------------------------------------------------------------------- the index page


@dataclass(frozen=True)
class IndexEntry:
    name: str
    title: str
    page: str | None  # relative link, None when the report was not written here
    headline: Headline | None


def index_page(entries: Sequence[IndexEntry], links: Iterable[tuple[str, str]]) -> str:
    """data/reports/index.html: each report with its headline figures, then the other sites (Data Docs,
    dbt docs) that exist. Nothing in it changes unless a report's headline or the sites do."""
    sections = []
    for entry in entries:
        if entry.page is None:
            continue
        if entry.headline is not None:
            sections.append(f"<section>{headline_html(entry.headline, level=2, link=entry.page)}</section>")
        else:
            sections.append(
                f'<section class="ent-headline"><h2><a href="{html.escape(entry.page)}">'
                f"{html.escape(entry.title)}</a></h2></section>"
            )
    others = "".join(
        f'<li><a href="{html.escape(href)}">{html.escape(text)}</a></li>' for text, href in links
    )
    if not sections:
        sections.append('<p class="ent-lead">No report has been written here yet.</p>')
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>Entitlement reports</title>\n"
        f'{page_assets()}</head>\n<body>\n<main class="ent-index">\n'
        '<section class="ent-headline"><h1>Entitlement reports</h1>'
        '<p class="ent-lead">Each report\'s key figures; open a report for its chart and the rows behind'
        " them.</p></section>\n"
        + "\n".join(sections)
        + (
            f'\n<section><h2>Checks and lineage</h2><ul class="ent-links">{others}</ul></section>'
            if others
            else ""
        )
        + "\n</main>\n</body>\n</html>\n"
    )
