"""Stripe billing exports: API JSON (family "stripe") and Dashboard CSV (family "stripe_csv").

The mapping onto the raw tables, the header alias table, minor units, where the period fields sit
in each API version and the metadata convention are documented in docs/ingest.md, section Stripe.

Decisions the SQL below encodes (the docs give the reasons):

- Customer ids: every customer reference (invoices, subscriptions, customers) is translated by
  the mapping file, kind ``customer`` (Stripe ``cus_...`` -> CRM account id), one rule for all
  files; a customer's ``metadata.crm_account_id`` is not read (the docs show how to build the
  mapping rows from it).
- Prices: ``item_code`` = mapping kind ``price`` and ``line_type`` = mapping kind ``line_type``,
  both keyed by the price id (``pricing.price_details.price`` from API 2025-03-31.basil on,
  ``price.id`` before, ``plan.id`` for legacy plans).
- Invoice lines: contract_id, contract_line_id and reference_id come from the line's metadata
  keys of the same names. Amounts are minor units, scaled by the currency's exponent.
- invoice_date = effective_at, else status_transitions.finalized_at, else created (drafts).
- Invoice status ``uncollectible`` lands as ``open``: it was billed and is still owed on paper.
- Subscription periods: the item's current_period_start/end (API 2025-03-31.basil and later),
  else the subscription's (older versions).
- Credits land as they are: a negative line amount is a credit (a proration for unused time, a
  negative invoice item). is_proration = ``parent.subscription_item_details.proration`` or
  ``parent.invoice_item_details.proration`` (2025-03-31.basil on), else the line's ``proration``.
- discount_amount = the sum of the line's ``discount_amounts[].amount``, scaled like ``amount``:
  0 when the list is present but empty, NULL when the line has no ``discount_amounts`` (or it is
  null), since then nothing says whether it was discounted. Dashboard CSV: the column's value, NULL
  for a blank cell or no such column (a blank cannot be told from an absent one there).
- Credit notes (GET /v1/credit_notes), one row per line of ``lines.data``: amount = the line's
  ``amount`` (gross, before discounts) minus its ``discount_amounts``, in the credit note's
  currency; credited_on = effective_at, else created; invoice_line_id = ``invoice_line_item``
  (NULL for a ``custom_line_item``). A credit note with no lines gives one rejected row.
"""

from __future__ import annotations

from entitlements.ingest.layouts import LAYOUTS_BY_TABLE
from entitlements.ingest.shapes import Lookup, Shape

# ISO 4217 minor-unit exponents where Stripe's API differs from two decimals
# (https://docs.stripe.com/currencies: zero-decimal and three-decimal currencies).
ZERO_DECIMAL = (
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA",
    "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
)  # fmt: skip
THREE_DECIMAL = ("BHD", "JOD", "KWD", "OMR", "TND")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


MACROS: tuple[str, ...] = (
    # The number of decimals of a currency's minor unit, as Stripe's API counts them.
    f"""CREATE OR REPLACE TEMP MACRO stripe_exponent(currency) AS CASE
        WHEN upper(trim(currency)) IN ({_in(ZERO_DECIMAL)}) THEN 0
        WHEN upper(trim(currency)) IN ({_in(THREE_DECIMAL)}) THEN 3
        ELSE 2 END""",
    # An integer amount in minor units as major-unit decimal text. Anything else becomes a text
    # saying what is wrong, which fails the DECIMAL parse, so the row is rejected quoting it
    # (a plain TRY_CAST would round 12.5 cents, or read major units as minor ones, silently).
    # Stripe requires three-decimal amounts to end in 0; one that does not would be rounded.
    """CREATE OR REPLACE TEMP MACRO stripe_major(amount, currency) AS CASE
        WHEN amount IS NULL OR trim(CAST(amount AS VARCHAR)) = '' THEN NULL
        WHEN NOT regexp_full_match(trim(CAST(amount AS VARCHAR)), '-?[0-9]{1,18}')
            THEN 'not an integer amount in minor units: ' || CAST(amount AS VARCHAR)
        WHEN stripe_exponent(currency) = 3 AND CAST(trim(CAST(amount AS VARCHAR)) AS BIGINT) % 10 <> 0
            THEN 'a three-decimal amount not ending in 0: ' || CAST(amount AS VARCHAR)
        ELSE CAST(
            CAST(trim(CAST(amount AS VARCHAR)) AS DECIMAL(18, 0))
            * CASE stripe_exponent(currency) WHEN 0 THEN 1.000 WHEN 3 THEN 0.001 ELSE 0.010 END
            AS VARCHAR)
        END""",
    # A timestamp as UTC: Unix epoch seconds (the API), or ISO 8601 text with or without an
    # offset (Dashboard CSV "2024-02-01 00:00", data-pipeline exports); NULL when unreadable.
    """CREATE OR REPLACE TEMP MACRO stripe_ts(t) AS CASE
        WHEN regexp_full_match(trim(CAST(t AS VARCHAR)), '-?[0-9]{1,11}')
            THEN make_timestamp(CAST(trim(CAST(t AS VARCHAR)) AS BIGINT) * 1000000)
        ELSE CAST(TRY_CAST(trim(CAST(t AS VARCHAR)) AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP)
        END""",
    # An expandable reference: the id whether the field holds "cus_1", the JSON string
    # "\"cus_1\"" or the expanded object {"id": "cus_1", ...}.
    """CREATE OR REPLACE TEMP MACRO stripe_ref(x) AS CASE
        WHEN x IS NULL THEN NULL
        WHEN starts_with(ltrim(CAST(x AS VARCHAR)), '{') AND json_valid(CAST(x AS VARCHAR))
            THEN json_extract_string(CAST(x AS VARCHAR), '$.id')
        WHEN starts_with(ltrim(CAST(x AS VARCHAR)), '"') AND json_valid(CAST(x AS VARCHAR))
            THEN json_extract_string(CAST(x AS VARCHAR), '$')
        ELSE CAST(x AS VARCHAR)
        END""",
    # The sum of a list of Stripe amount objects ([{"amount": 150, ...}], e.g. discount_amounts) in
    # minor units, as text: '0' for an empty list, NULL for none (SQL or JSON null). Anything else is
    # returned as its JSON, which stripe_major then rejects quoting it.
    """CREATE OR REPLACE TEMP MACRO stripe_total(amounts) AS CASE
        WHEN amounts IS NULL OR json_type(amounts) = 'NULL' THEN NULL
        WHEN json_type(amounts) <> 'ARRAY' THEN 'not a list: ' || CAST(amounts AS VARCHAR)
        WHEN coalesce(list_bool_and(list_transform(TRY_CAST(amounts AS JSON[]), lambda a:
            coalesce(regexp_full_match(json_extract_string(a, '$.amount'), '-?[0-9]{1,18}'), false))), true)
            THEN CAST(coalesce(list_sum(list_transform(TRY_CAST(amounts AS JSON[]), lambda a:
                CAST(json_extract_string(a, '$.amount') AS HUGEINT))), 0) AS VARCHAR)
        ELSE CAST(amounts AS VARCHAR)
        END""",
    # An amount in minor units less a list of amounts (a credit note line net of its discounts), as
    # text; whichever part is unreadable is returned as it is, for stripe_major to reject.
    """CREATE OR REPLACE TEMP MACRO stripe_net(amount, amounts) AS CASE
        WHEN NOT regexp_full_match(trim(CAST(amount AS VARCHAR)), '-?[0-9]{1,18}')
            THEN CAST(amount AS VARCHAR)
        WHEN NOT regexp_full_match(coalesce(stripe_total(amounts), '0'), '-?[0-9]{1,38}')
            THEN stripe_total(amounts)
        ELSE CAST(CAST(trim(CAST(amount AS VARCHAR)) AS HUGEINT)
            - CAST(coalesce(stripe_total(amounts), '0') AS HUGEINT) AS VARCHAR)
        END""",
)

TIMESTAMP = "stripe_ts({})"
DATE = "CAST(stripe_ts({}) AS DATE)"

# Statuses: Stripe's invoice statuses onto the canonical set (uncollectible: billed, unpaid).
INVOICE_STATUS = "CASE lower(trim({})) WHEN 'uncollectible' THEN 'open' ELSE lower(trim({})) END"


def _invoice_status(expr: str) -> str:
    return INVOICE_STATUS.format(expr, expr)


def _line_price(line: str) -> str:
    """The price id of an invoice line item (JSON expression), in every API version."""
    return (
        f"coalesce(stripe_ref(json_extract({line}, '$.pricing.price_details.price')),"
        f" json_extract_string({line}, '$.price.id'), json_extract_string({line}, '$.plan.id'))"
    )


def _get(json: str, path: str) -> str:
    """SQL: the text at a JSON path of a JSON (or JSON text) expression."""
    return f"json_extract_string({json}, '{path}')"


def _line_columns(line: str, invoice_id: str, fallback_currency: str = "") -> dict[str, str | Lookup]:
    """billing_invoice_lines columns of a Stripe invoice line item held in the JSON expression `line`."""
    currency = _get(line, "$.currency")
    if fallback_currency:
        currency = f"coalesce({currency}, {fallback_currency})"
    price = _line_price(line)
    return {
        # Before API 2019-12-03 `id` could repeat across invoices; `unique_id` held the il_ id.
        "invoice_line_id": f"coalesce({_get(line, '$.unique_id')}, {_get(line, '$.id')})",
        "invoice_id": invoice_id,
        "line_type": Lookup("line_type", price),
        "contract_id": _get(line, "$.metadata.contract_id"),
        "contract_line_id": _get(line, "$.metadata.contract_line_id"),
        "item_code": Lookup("price", price),
        **dict(
            zip(("reference_id", "reference_matched_by"), line_reference(line, DEFAULT_EVIDENCE), strict=True)
        ),
        # parent.subscription_item_details from API 2025-03-31.basil on, subscription_item before.
        "subscription_item_id": (
            f"coalesce({_get(line, '$.parent.subscription_item_details.subscription_item')},"
            f" {_get(line, '$.subscription_item')})"
        ),
        "period_start": _get(line, "$.period.start"),
        "period_end": _get(line, "$.period.end"),
        "quantity": _get(line, "$.quantity"),
        "amount": f"stripe_major({_get(line, '$.amount')}, {currency})",
        "currency": f"upper(trim({currency}))",
        "discount_amount": (
            f"stripe_major(stripe_total(json_extract({line}, '$.discount_amounts')), {currency})"
        ),
        "is_proration": _line_proration(line),
    }


def _line_proration(line: str) -> str:
    """Whether an invoice line item is a proration: under `parent` from API 2025-03-31.basil on (a
    subscription item's or an invoice item's line), the line's own `proration` before."""
    return (
        f"coalesce({_get(line, '$.parent.subscription_item_details.proration')},"
        f" {_get(line, '$.parent.invoice_item_details.proration')}, {_get(line, '$.proration')})"
    )


# Where a line names what it bills when entitlements.yml says nothing (evidence.invoice_line_reference).
DEFAULT_EVIDENCE: tuple[tuple[str, str], ...] = (("metadata_key", "reference_id"),)


def metadata_field(key: str) -> tuple[str, tuple[str, ...]]:
    """A Dashboard CSV's column for a metadata key: the field name line_reference reads, and the
    header names the Dashboard writes it under."""
    return f"meta_{key}", (f"{key} (metadata)", f"Metadata {key}")


def line_reference(line: str, strategies: tuple[tuple[str, str], ...], csv: bool = False) -> tuple[str, str]:
    """SQL of (reference_id, reference_matched_by) of an invoice line: the first strategy that finds
    a reference (entitlements.yml evidence.invoice_line_reference). `line` is the line's JSON; a
    Dashboard CSV line has flat columns instead (meta_<key>, description)."""
    found = []
    for kind, argument in strategies:
        if kind == "metadata_key":
            column = metadata_field(argument)[0]
            expr = f"nullif(trim(\"{column}\"), '')" if csv else _get(line, f"$.metadata.{argument}")
            label = f"metadata_key:{argument}"
        else:
            description = '"description"' if csv else _get(line, "$.description")
            pattern = "'" + argument + "'"  # validated: no quote (entitlements/config.py)
            expr = f"nullif(regexp_extract({description}, {pattern}, 1), '')"
            label = "description_pattern"
        found.append((expr, label))
    reference = "coalesce(" + ", ".join(e for e, _ in found) + ")"
    matched_by = "CASE " + " ".join(f"WHEN {e} IS NOT NULL THEN '{label}'" for e, label in found) + " END"
    return reference, matched_by


def line_json(shape: Shape) -> str:
    """The JSON expression of one line in an invoice line shape (the CSV shape has none)."""
    return "il.line" if shape.explode else LINE_ITEM_JSON


LINE_PARSE = {"period_start": DATE, "period_end": DATE}
API_FORMATS = ("json", "jsonl", "parquet")
LIST = "data"  # a list response {"object": "list", "data": [...], "has_more": ...}

CUSTOMERS = LAYOUTS_BY_TABLE["billing_customers"]
SUBSCRIPTIONS = LAYOUTS_BY_TABLE["billing_subscriptions"]
INVOICES = LAYOUTS_BY_TABLE["billing_invoices"]
INVOICE_LINES = LAYOUTS_BY_TABLE["billing_invoice_lines"]
CREDIT_NOTE_LINES = LAYOUTS_BY_TABLE["billing_credit_note_lines"]

# ------------------------------------------------------------------------------------------ API

API_CUSTOMERS = Shape(
    name="stripe.customers",
    family="stripe",
    layout=CUSTOMERS,
    names=("customers*",),
    formats=API_FORMATS,
    signature=("id", "created"),
    fields=dict.fromkeys(("id", "name", "email", "currency", "created"), "VARCHAR"),
    columns={
        "customer_ref": '"id"',
        "customer_id": Lookup("customer", '"id"'),
        "name": '"name"',
        "email": '"email"',
        "currency": 'upper(trim("currency"))',
        "created_at": '"created"',
    },
    parse={"created_at": TIMESTAMP},
    records_key=LIST,
    setup=MACROS,
    description="Stripe Customer objects (GET /v1/customers)",
)


def _item_or_subscription(field: str) -> str:
    return f"coalesce({_get('si.item', '$.' + field)}, src.{field})"


ITEM_PRICE = f"coalesce({_get('si.item', '$.price.id')}, {_get('si.item', '$.plan.id')})"

_START = "TRY_CAST(src.start_date AS BIGINT)"
_CREATED = f"TRY_CAST({_get('si.item', '$.created')} AS BIGINT)"
_STARTED = f"CAST(greatest(coalesce({_START}, {_CREATED}), coalesce({_CREATED}, {_START})) AS VARCHAR)"

# One row per subscription item. A subscription with no items gives one row that is rejected
# (no subscription_item_id) rather than vanishing; so does an unreadable record.
API_SUBSCRIPTIONS = Shape(
    name="stripe.subscriptions",
    family="stripe",
    layout=SUBSCRIPTIONS,
    names=("subscriptions*",),
    formats=API_FORMATS,
    signature=("id", "customer", "items"),
    fields={
        "id": "VARCHAR",
        "customer": "VARCHAR",
        "status": "VARCHAR",
        "items": "JSON",
        "current_period_start": "VARCHAR",
        "current_period_end": "VARCHAR",
        "cancel_at_period_end": "VARCHAR",
        "created": "VARCHAR",
        "currency": "VARCHAR",
        "start_date": "VARCHAR",
        "ended_at": "VARCHAR",
        "cancel_at": "VARCHAR",
        "metadata": "JSON",
    },
    columns={
        "subscription_item_id": _get("si.item", "$.id"),
        "subscription_id": 'src."id"',
        "customer_id": Lookup("customer", 'stripe_ref(src."customer")'),
        "price_id": ITEM_PRICE,
        "item_code": Lookup("price", ITEM_PRICE),
        "quantity": _get("si.item", "$.quantity"),
        "status": 'lower(trim(src."status"))',
        # Item-level periods from API 2025-03-31.basil, subscription-level before.
        "current_period_start": _item_or_subscription("current_period_start"),
        "current_period_end": _item_or_subscription("current_period_end"),
        "cancel_at_period_end": "src.cancel_at_period_end",
        "created_at": f"coalesce({_get('si.item', '$.created')}, src.created)",
        "contract_line_id": (
            f"coalesce({_get('si.item', '$.metadata.contract_line_id')},"
            f" {_get('src.metadata', '$.contract_line_id')})"
        ),
        "currency": f"upper(trim(coalesce(src.currency, {_get('si.item', '$.price.currency')})))",
        # The item grants from the later of the subscription's start and the item's creation (an
        # item added mid-term) until the subscription ended, or is set to end.
        "started_at": _STARTED,
        "ended_at": "src.ended_at",
        "cancel_at": "src.cancel_at",
    },
    parse={
        "current_period_start": TIMESTAMP,
        "current_period_end": TIMESTAMP,
        "created_at": TIMESTAMP,
        "started_at": TIMESTAMP,
        "ended_at": TIMESTAMP,
        "cancel_at": TIMESTAMP,
    },
    records_key=LIST,
    explode=(
        ", unnest(CASE WHEN src._problem IS NULL"
        " AND len(CAST(json_extract(src.\"items\", '$.data') AS JSON[])) > 0"
        " THEN CAST(json_extract(src.\"items\", '$.data') AS JSON[]) ELSE [NULL::JSON] END) AS si(item)"
    ),
    setup=MACROS,
    description="Stripe Subscription objects (GET /v1/subscriptions), one row per item",
)

_INVOICE_FIELDS = {
    "id": "VARCHAR",
    "customer": "VARCHAR",
    "currency": "VARCHAR",
    "status": "VARCHAR",
    "created": "VARCHAR",
    "effective_at": "VARCHAR",
    "status_transitions": "JSON",
}

API_INVOICES = Shape(
    name="stripe.invoices",
    family="stripe",
    layout=INVOICES,
    names=("invoices*",),
    formats=API_FORMATS,
    signature=("id", "customer", "currency", "status", "created"),
    fields=_INVOICE_FIELDS,
    columns={
        "invoice_id": '"id"',
        "customer_id": Lookup("customer", 'stripe_ref("customer")'),
        "invoice_date": f"coalesce(effective_at, {_get('status_transitions', '$.finalized_at')}, created)",
        "currency": 'upper(trim("currency"))',
        "status": _invoice_status('"status"'),
    },
    parse={"invoice_date": DATE},
    records_key=LIST,
    setup=MACROS,
    description="Stripe Invoice objects (GET /v1/invoices): the invoice header",
)

# The same invoices file, its embedded lines (lines.data) exploded into billing_invoice_lines.
# An invoice without a `lines` list gives no rows here (its lines come as their own file).
API_INVOICE_LINES_NESTED = Shape(
    name="stripe.invoices.lines",
    family="stripe",
    layout=INVOICE_LINES,
    names=("invoices*",),
    formats=API_FORMATS,
    signature=("id", "lines"),
    fields={"id": "VARCHAR", "currency": "VARCHAR", "lines": "JSON"},
    columns=_line_columns("il.line", 'src."id"', fallback_currency='src."currency"'),
    parse=LINE_PARSE,
    records_key=LIST,
    explode=(
        ", unnest(CASE WHEN src._problem IS NULL THEN CAST(json_extract(src.\"lines\", '$.data') AS JSON[])"
        " ELSE [NULL::JSON] END) AS il(line)"
    ),
    setup=MACROS,
    description="Stripe Invoice objects: their embedded line items (lines.data)",
)

_LINE_ITEM_FIELDS = (
    "id", "unique_id", "invoice", "amount", "currency", "period", "quantity",
    "price", "plan", "pricing", "metadata", "description", "parent", "subscription_item",
    "discount_amounts", "proration",
)  # fmt: skip
_LINE_ITEM_JSON_FIELDS = ("period", "price", "plan", "pricing", "metadata", "parent", "discount_amounts")
LINE_ITEM_JSON = "json_object(" + ", ".join(f"'{name}', src.\"{name}\"" for name in _LINE_ITEM_FIELDS) + ")"

# Line items as their own file (GET /v1/invoices/:id/lines). Each record is packed back into one
# JSON object so the same expressions as for embedded lines apply.
API_INVOICE_LINE_ITEMS = Shape(
    name="stripe.invoice_line_items",
    family="stripe",
    layout=INVOICE_LINES,
    names=("invoice_line_items*", "invoice_lines*", "line_items*"),
    formats=API_FORMATS,
    signature=("id", "invoice", "amount", "currency", "period"),
    fields={name: "JSON" if name in _LINE_ITEM_JSON_FIELDS else "VARCHAR" for name in _LINE_ITEM_FIELDS},
    columns=_line_columns(LINE_ITEM_JSON, 'stripe_ref(src."invoice")'),
    parse=LINE_PARSE,
    records_key=LIST,
    setup=MACROS,
    description="Stripe invoice line item objects (GET /v1/invoices/:id/lines)",
)

_CREDIT_NOTE_LINES = "CAST(json_extract(src.\"lines\", '$.data') AS JSON[])"

# Credit notes (GET /v1/credit_notes), one row per line of lines.data. A line carries no currency:
# the credit note's applies. A credit note with no lines gives one row that is rejected (no
# credit_note_line_id) rather than vanishing; so does an unreadable record.
API_CREDIT_NOTES = Shape(
    name="stripe.credit_notes",
    family="stripe",
    layout=CREDIT_NOTE_LINES,
    names=("credit_notes*",),
    formats=API_FORMATS,
    signature=("id", "invoice", "currency", "status", "lines"),
    fields={
        "id": "VARCHAR",
        "invoice": "VARCHAR",
        "currency": "VARCHAR",
        "status": "VARCHAR",
        "reason": "VARCHAR",
        "created": "VARCHAR",
        "effective_at": "VARCHAR",
        "lines": "JSON",
    },
    columns={
        "credit_note_line_id": _get("cn.line", "$.id"),
        "credit_note_id": 'src."id"',
        "invoice_id": 'stripe_ref(src."invoice")',
        # Set for type invoice_line_item; a custom_line_item credits no line of the invoice.
        "invoice_line_id": _get("cn.line", "$.invoice_line_item"),
        # effective_at (added to the object in 2023; absent from older records) is the date the credit
        # takes effect, the one printed on it; created otherwise.
        "credited_on": "coalesce(src.effective_at, src.created)",
        "status": 'lower(trim(src."status"))',
        "reason": "src.reason",
        # The line's amount is gross of its discounts (Stripe: "excluding tax and discounts").
        "amount": (
            f"stripe_major(stripe_net({_get('cn.line', '$.amount')},"
            " json_extract(cn.line, '$.discount_amounts')), src.currency)"
        ),
        "currency": "upper(trim(src.currency))",
    },
    parse={"credited_on": DATE},
    records_key=LIST,
    explode=(
        f", unnest(CASE WHEN src._problem IS NULL AND len({_CREDIT_NOTE_LINES}) > 0"
        f" THEN {_CREDIT_NOTE_LINES} ELSE [NULL::JSON] END) AS cn(line)"
    ),
    setup=MACROS,
    description="Stripe Credit Note objects (GET /v1/credit_notes), one row per line",
)

# ------------------------------------------------------------------------------- Dashboard CSV
# Dashboard exports name columns for people ("Customer ID", "Created (UTC)"), vary them between
# exports and over time, write amounts in major units ("49.00") and times as UTC text, and put
# each metadata key in a column "<key> (metadata)". Fields are named as in the API; the aliases
# are the header names they may appear under (docs/ingest.md lists them).

CSV_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("ID", "Id"),
    "customer": ("Customer ID", "Customer", "customer_id"),
    "name": ("Name", "Customer Name"),
    "email": ("Email", "Customer Email"),
    "currency": ("Currency",),
    "status": ("Status",),
    "created": ("Created (UTC)", "Date (UTC)", "Created", "Date", "created_at"),
    "effective_at": ("Effective At (UTC)", "Effective At"),
    "finalized_at": ("Finalized At (UTC)", "Finalized At"),
    "invoice": ("Invoice ID", "Invoice", "invoice_id"),
    "amount": ("Amount",),
    "quantity": ("Quantity", "Qty"),
    "period_start": ("Period Start (UTC)", "Line Item Period Start (UTC)", "Period Start"),
    "period_end": ("Period End (UTC)", "Line Item Period End (UTC)", "Period End"),
    "price": ("Price ID", "Price", "Plan ID", "Plan", "price_id", "plan_id"),
    "contract_id": ("contract_id (metadata)", "Metadata contract_id"),
    "contract_line_id": ("contract_line_id (metadata)", "Metadata contract_line_id"),
    # Unconfirmed: no Stripe page found lists the line items export's headers. These are the
    # Dashboard's Title Case of the API field names, and this project's column names.
    "proration": ("Proration", "is_proration"),
    "discount_amount": ("Discount Amount", "Discount Amounts"),
}


def _csv_fields(*names: str) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    return dict.fromkeys(names, "VARCHAR"), {n: CSV_ALIASES[n] for n in names if n in CSV_ALIASES}


def _major(expr: str) -> str:
    """A Dashboard amount (major units, decimal point) as text; empty stays NULL."""
    return f"nullif(trim({expr}), '')"


_fields, _aliases = _csv_fields("id", "name", "email", "currency", "created")
CSV_CUSTOMERS = Shape(
    name="stripe_csv.customers",
    family="stripe_csv",
    layout=CUSTOMERS,
    names=("customers*", "unified_customers*"),
    formats=("csv",),
    signature=("id", "created"),
    fields=_fields,
    aliases=_aliases,
    columns={
        "customer_ref": '"id"',
        "customer_id": Lookup("customer", '"id"'),
        "name": '"name"',
        "email": '"email"',
        "currency": 'upper(trim("currency"))',
        "created_at": '"created"',
    },
    parse={"created_at": TIMESTAMP},
    setup=MACROS,
    description="Stripe Dashboard customers export (Customers > Export)",
)

_fields, _aliases = _csv_fields(
    "id", "customer", "currency", "status", "created", "effective_at", "finalized_at"
)  # fmt: skip
CSV_INVOICES = Shape(
    name="stripe_csv.invoices",
    family="stripe_csv",
    layout=INVOICES,
    names=("invoices*",),
    formats=("csv",),
    signature=("id", "customer", "currency", "status", "created"),
    fields=_fields,
    aliases=_aliases,
    columns={
        "invoice_id": '"id"',
        "customer_id": Lookup("customer", '"customer"'),
        "invoice_date": "coalesce(nullif(trim(effective_at), ''), nullif(trim(finalized_at), ''), created)",
        "currency": 'upper(trim("currency"))',
        "status": _invoice_status('"status"'),
    },
    parse={"invoice_date": DATE},
    setup=MACROS,
    description="Stripe Dashboard invoices export (Invoices > Export)",
)

_fields, _aliases = _csv_fields(
    "id", "invoice", "amount", "currency", "quantity", "period_start", "period_end", "price",
    "contract_id", "contract_line_id", "proration", "discount_amount",
)  # fmt: skip
_REFERENCE, _REFERENCE_HEADERS = metadata_field("reference_id")
CSV_INVOICE_LINE_ITEMS = Shape(
    name="stripe_csv.invoice_line_items",
    family="stripe_csv",
    layout=INVOICE_LINES,
    names=("invoice_line_items*", "invoice_lines*", "line_items*"),
    formats=("csv",),
    signature=("id", "invoice", "amount", "currency", "price"),
    fields={**_fields, _REFERENCE: "VARCHAR"},
    aliases={
        **_aliases,
        "id": ("Line Item ID", "Invoice Line Item ID", "ID", "line_item_id"),
        _REFERENCE: (*_REFERENCE_HEADERS, "reference_id"),
    },
    columns={
        "invoice_line_id": '"id"',
        "invoice_id": '"invoice"',
        "line_type": Lookup("line_type", '"price"'),
        "contract_id": '"contract_id"',
        "contract_line_id": '"contract_line_id"',
        "item_code": Lookup("price", '"price"'),
        **dict(
            zip(
                ("reference_id", "reference_matched_by"),
                line_reference("", DEFAULT_EVIDENCE, csv=True),
                strict=True,
            )
        ),
        "period_start": '"period_start"',
        "period_end": '"period_end"',
        "quantity": '"quantity"',
        "amount": _major('"amount"'),
        "currency": 'upper(trim("currency"))',
        "discount_amount": _major('"discount_amount"'),
        "is_proration": '"proration"',
    },
    parse=LINE_PARSE,
    setup=MACROS,
    description="Stripe Dashboard invoice line items export",
)

SHAPES: tuple[Shape, ...] = (
    API_CUSTOMERS,
    API_SUBSCRIPTIONS,
    API_INVOICES,
    API_INVOICE_LINES_NESTED,
    API_INVOICE_LINE_ITEMS,
    API_CREDIT_NOTES,
    CSV_CUSTOMERS,
    CSV_INVOICES,
    CSV_INVOICE_LINE_ITEMS,
)
