"""Source shapes: how one kind of export file maps onto a raw table.

A shape names the files it reads (path patterns and physical formats), the source fields it needs
to recognise one (its signature), and for each column of its raw table a SQL expression over
those fields giving the value as text, plus, where plain ``TRY_CAST`` is not the way to read that
text, a parse expression. The canonical layouts (entitlements/ingest/layouts.py) are shapes whose fields are
the columns themselves; vendor adapters (entitlements/ingest/adapters/) declare theirs the same way, so every
file, whatever its shape, is typed, checked and landed by the same SQL (entitlements/ingest/land.py).

Expressions are DuckDB SQL over a relation whose columns are the shape's fields (VARCHAR, or JSON
for nested values). Parse templates take the column's text as ``{}`` and may name other columns
of the relation (e.g. the currency of a minor-unit amount); they return NULL for text they cannot
read, which the landing turns into a rejected row naming the column and the text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import PurePosixPath

from entitlements.ingest.layouts import EXPORT_LAYOUTS, Layout

# Physical formats, by file name ending (".gz" is read through gzip by DuckDB and Python alike).
FORMAT_SUFFIXES: dict[str, str] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",  # a JSON document: a list, or an object holding the list (Stripe's `data`)
    ".parquet": "parquet",
}
COMPRESSION_SUFFIX = ".gz"


def split_name(relative: str) -> tuple[str, str, bool] | None:
    """(stem, format, gzipped) of an export path, e.g. ('usage/events', 'jsonl', True); None if unknown."""
    path = relative
    gzipped = path.endswith(COMPRESSION_SUFFIX)
    if gzipped:
        path = path.removesuffix(COMPRESSION_SUFFIX)
    suffix = PurePosixPath(path).suffix.lower()
    if suffix not in FORMAT_SUFFIXES or (gzipped and FORMAT_SUFFIXES[suffix] == "parquet"):
        return None
    return path[: -len(suffix)], FORMAT_SUFFIXES[suffix], gzipped


# An ISO 8601 timestamp as UTC: an offset is honoured (the ingest session's zone is UTC). Plain and
# Z-suffixed text skips the TIMESTAMPTZ parse, which costs a third more on large usage files.
ISO_TIMESTAMP = (
    "CASE WHEN NOT ends_with({}, 'Z') AND length({}) > 19 THEN CAST(TRY_CAST({} AS TIMESTAMPTZ) AS TIMESTAMP)"
    " ELSE TRY_CAST({} AS TIMESTAMP) END"
)
# Characters a file's values may be proven not to hold (entitlements/ingest/land.py, from its bytes):
# the timestamp form's tests for them are then left out, on millions of rows.
SPACE, SLASH = " ", "/"


# The only forms the default parse accepts (docs/ingest.md, "Values are exact or rejected"); anything
# else (1_000, 1,000, 2024-1-5, a BC date) is rejected naming the column, never read loosely. DuckDB's
# casts already refuse most other text; these conditions add what they would read loosely, as cheap
# tests where one does (usage files have millions of rows).
_FORMS = {
    # DuckDB reads 1_000 as 1000; other text a decimal cast reads is a plain number.
    "DECIMAL": "NOT contains({t}, '_')",
    "INTEGER": r"regexp_full_match({t}, '[+-]?[0-9]+')",  # a cast reads 0x10, 0b101 and .5 (as 1)
    # A cast reads 2024-1-5, 2024/01/05, 2024-01-05T10:00 (as the date), 12024-01-05 and BC dates
    # (LIKE patterns: cheaper than a regular expression on millions of rows).
    "DATE": "{t} LIKE '____-__-__'",
    # A cast reads those too, and a time zone name (2024-01-05 10:00 America/New_York) as UTC: below.
    "TIMESTAMP": "({t} LIKE '____-__-__T%' OR {t} LIKE '____-__-__' OR {t} LIKE '____-__-__ %')",
}
# The timestamp form's tests for a character, each left out where no value holds it. Cheapest first, for
# the common form: a byte search for '/', and a space after the date's ('___________% %') looked for
# only where there is a space at all.
_TIMESTAMP_WITHOUT = {
    SLASH: "NOT contains({t}, '/')",
    SPACE: "(NOT contains({t}, ' ') OR {t} NOT LIKE '___________% %')",
}


def default_parse(type_: str, absent: frozenset[str] = frozenset()) -> str:
    """TRY_CAST of the text (trimmed by ingest/checks.py), for text in the type's documented form only.
    absent: characters (SPACE, SLASH) the text is known not to hold."""
    upper = type_.upper()
    kind = "DECIMAL" if upper.startswith(("DECIMAL", "DOUBLE", "FLOAT")) else upper
    kind = "INTEGER" if kind in ("BIGINT", "SMALLINT") else kind
    if kind not in _FORMS:  # text, JSON, BOOLEAN (true/false, t/f, yes/no, y/n, 1/0)
        return f"TRY_CAST({{}} AS {type_})"
    if kind != "TIMESTAMP":
        return f"CASE WHEN {_FORMS[kind].replace('{t}', '{}')} THEN TRY_CAST({{}} AS {type_}) END"
    form = _FORMS[kind]
    if SLASH not in absent:
        form = f"{_TIMESTAMP_WITHOUT[SLASH]} AND {form}"
    if SPACE not in absent:
        form = f"{form} AND {_TIMESTAMP_WITHOUT[SPACE]}"
    # One CASE, the form's test its first branch: cheaper than ISO_TIMESTAMP's CASE in another.
    first = f"CASE WHEN NOT ({form.replace('{t}', '{}')}) THEN NULL WHEN"
    return ISO_TIMESTAMP.replace("CASE WHEN", first, 1)


@dataclass(frozen=True)
class Lookup:
    """A column whose value is the mapping file's target for a source id (entitlements/ingest/mapping.py).

    kind: the mapping kind, e.g. "price" or "customer"; source: SQL text expression of the id.
    An id the mapping lacks is an error naming it (or, with quarantine, a rejected row), unless
    keep_unmapped: then it lands as written (a billing customer id dbt resolves itself).
    """

    kind: str
    source: str
    keep_unmapped: bool = False


@dataclass(frozen=True)
class Shape:
    name: str  # e.g. "canonical.crm_accounts", "salesforce.Account", "stripe.invoices"
    family: str  # the --format value that selects it: canonical, salesforce, stripe, ...
    layout: Layout  # the raw table it lands in
    names: tuple[str, ...]  # fnmatch patterns on the path stem; without "/" they match the file's own stem
    formats: tuple[str, ...]  # physical formats accepted: csv, jsonl, json, parquet
    signature: tuple[str, ...]  # fields a file must have to be read as this shape
    fields: dict[str, str]  # source field -> read type, "VARCHAR" or "JSON" (nested values)
    # Raw column -> SQL giving its text (or a Lookup). A column not listed lands as NULL.
    columns: dict[str, str | Lookup] = field(default_factory=dict)
    # Raw column -> parse template over its text "{}"; default TRY_CAST({} AS <column type>).
    parse: dict[str, str] = field(default_factory=dict)
    # Dashboard CSVs: field -> header names it may appear under (first found wins).
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # JSON documents: the key holding the list of records in an object (Stripe list: "data").
    records_key: str | None = None
    # One source record giving several rows (an invoice's lines): a FROM-clause addition, e.g.
    # ", unnest(CAST(json_extract(src.lines, '$.data') AS JSON[])) AS x(line)".
    explode: str | None = None
    # SQL run once per connection before this shape is read (macros it uses).
    setup: tuple[str, ...] = ()
    description: str = ""

    def matches_name(self, stem: str, file_format: str) -> bool:
        if file_format not in self.formats:
            return False
        base = PurePosixPath(stem).name
        return any(fnmatchcase(stem if "/" in p else base, p) for p in self.names)

    def header_fields(self, header: tuple[str, ...]) -> dict[str, str]:
        """Field -> the header name it is read from, for the fields the header has. A header name
        differing only in case is the field's (Salesforce's API names are case-insensitive, and Data
        Loader can write them upper-case; DuckDB's identifiers are case-insensitive, so the shape's
        SQL reads it as written), unless another header name has that field's exact spelling."""
        by_case = {h.casefold(): h for h in reversed(header)}  # the first of names alike in case
        found = {}
        for name in self.fields:
            candidates = (name, *self.aliases.get(name, ()))
            exact = next((c for c in candidates if c in header), None)
            alike = next((by_case[c.casefold()] for c in candidates if c.casefold() in by_case), None)
            if exact or alike:
                found[name] = exact or alike
        return found

    def text_expr(self, column: str) -> str | Lookup | None:
        if column in self.columns:
            return self.columns[column]
        return f'"{column}"' if column in self.fields and self.family == "canonical" else None

    def parse_template(self, column: str, type_: str, absent: frozenset[str] = frozenset()) -> str:
        """absent: characters the column's text is known not to hold (default_parse)."""
        return self.parse.get(column) or default_parse(type_, absent)


def canonical_shape(layout: Layout) -> Shape:
    stem = layout.pattern.rsplit(".", 1)[0]  # "crm/accounts*.csv" -> "crm/accounts*"
    return Shape(
        name=f"canonical.{layout.table}",
        family="canonical",
        layout=layout,
        names=(stem,),
        formats=(layout.file_format, "parquet") + (("csv",) if layout.file_format == "jsonl" else ("jsonl",)),
        signature=layout.required_columns,
        fields={c.name: "VARCHAR" for c in layout.columns},
        description=f"this project's own {layout.table} layout (entitlements/ingest/layouts.py)",
    )


# Legacy tables have no canonical shape: only the legacy system's own files land in them.
CANONICAL_SHAPES: tuple[Shape, ...] = tuple(canonical_shape(layout) for layout in EXPORT_LAYOUTS)
