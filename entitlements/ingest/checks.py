"""The SQL that turns a file's fields into its raw table's typed columns, each row with a reason to reject it.

One query for every shape and both reads (entitlements/ingest/readers.py): the fast read runs it inside the
INSERT and stops at the first row with a reason (DuckDB's error() aborts the statement, and the
file is re-read exactly); the exact read materialises it and splits landed from rejected rows.

A row's reason is the first of, in this order: a structural problem found by the reader; an id the
mapping file lacks; a value that cannot be read as its column's type; a required value missing; a
value outside its column's allowed set (an unknown currency, say); a negative quantity or amount;
an end before its start; a key seen earlier in the same file; a key already landed from another
file. The reason names the column and quotes the value.
"""

from __future__ import annotations

from dataclasses import dataclass

from entitlements.ingest._sql import quote_ident, quote_literal
from entitlements.ingest.currencies import CURRENCIES
from entitlements.ingest.layouts import Layout
from entitlements.ingest.shapes import Lookup, Shape

UNMAPPED = "unmapped"  # reason kind of a row whose id the mapping lacks (quarantinable)
_QUOTED = 80  # characters of a value quoted in a reason


@dataclass(frozen=True)
class Check:
    condition: str  # SQL over the typed relation, true when the row fails
    column: str | None
    reason: str  # SQL giving the message
    kind: str = "invalid"
    column_sql: str | None = None  # SQL giving the column, where it depends on the row


def _text(column: str) -> str:
    return quote_ident(f"{column}:text")


def _source(column: str) -> str:
    return quote_ident(f"{column}:source")


def _quote_value(sql: str) -> str:
    return f"'''' || left(CAST({sql} AS VARCHAR), {_QUOTED}) || ''''"


def checked_sql(shape: Shape, source_sql: str, source_file: str, mapping_name: str) -> str:
    """SELECT of the layout's typed columns, _extra, _line, _raw, _reason, _reason_column and _reason_kind."""
    layout = shape.layout
    keys = key_columns(layout)
    texts, lookups = [], []
    for column in layout.columns:
        expr = shape.text_expr(column.name)
        if isinstance(expr, Lookup):
            texts.append(f"nullif(trim(CAST({expr.source} AS VARCHAR)), '') AS {_source(column.name)}")
            alias = quote_ident(f"map:{column.name}")
            lookups.append(
                f"LEFT JOIN _mapping AS {alias} ON {alias}.kind = {quote_literal(expr.kind)}"
                f" AND {alias}.source_id = rec.{_source(column.name)}"
            )
        else:
            value = "NULL" if expr is None else f"CAST({expr} AS VARCHAR)"
            # Ids, codes and every typed (non-text) value are read without surrounding spaces,
            # trimmed here once rather than in each parse and check.
            if expr is not None and (column.name in keys or column.type.upper() != "VARCHAR"):
                value = _trimmed(value)
            texts.append(f"nullif({value}, '') AS {_text(column.name)}")
    mapped = [
        f"{quote_ident(f'map:{c.name}')}.target_id AS {_text(c.name)}"
        for c in layout.columns
        if isinstance(shape.text_expr(c.name), Lookup)
    ]
    typed = [
        f"{shape.parse_template(c.name, c.type).replace('{}', _text(c.name))} AS {quote_ident(c.name)}"
        for c in layout.columns
    ]
    checks = _checks(shape, mapping_name)
    # Which check a row fails first, evaluated once; its reason, column and kind follow from it.
    failed = "CASE " + " ".join(f"WHEN {c.condition} THEN {i}" for i, c in enumerate(checks)) + " END"
    reason = "CASE _check " + " ".join(f"WHEN {i} THEN {c.reason}" for i, c in enumerate(checks)) + " END"
    column = (
        "CASE _check "
        + " ".join(f"WHEN {i} THEN {c.column_sql or _literal(c.column)}" for i, c in enumerate(checks))
        + " END"
    )
    kind = (
        "CASE _check "
        + " ".join(f"WHEN {i} THEN {quote_literal(c.kind)}" for i, c in enumerate(checks))
        + " END"
    )
    key_cols = ", ".join(quote_ident(k) for k in layout.primary_key)
    windows, joins = "", ""
    if layout.unique_key:
        windows = (
            f", count(*) OVER (PARTITION BY {key_cols}) AS _key_count,"
            f" row_number() OVER (PARTITION BY {key_cols} ORDER BY _line) AS _key_rank,"
            f" min(_line) OVER (PARTITION BY {key_cols}) AS _key_first_line"
        )
        on = " AND ".join(f"landed.{quote_ident(k)} = typed.{quote_ident(k)}" for k in layout.primary_key)
        # raw holds the rows of current loads only (entitlements/ingest/land.py): a superseded load's
        # rows are in raw_superseded, a reverted one's are gone.
        joins = (
            f" LEFT JOIN (SELECT {key_cols}, min(_source_file) AS _landed_file"
            f" FROM raw.{quote_ident(layout.table)}"
            f" WHERE _source_file <> {quote_literal(source_file)} GROUP BY ALL) AS landed ON {on}"
        )
    return f"""
        WITH src AS ({source_sql}),
        rec AS (SELECT {", ".join(texts)}, _extra, _line, _raw, _problem, _problem_column
            FROM src{shape.explode or ""}),
        looked AS (SELECT rec.*{"".join(", " + m for m in mapped)} FROM rec {" ".join(lookups)}),
        typed AS (SELECT looked.*, {", ".join(typed)}{windows} FROM looked),
        checked AS (SELECT typed.*, {"landed._landed_file" if joins else "NULL AS _landed_file"}
            FROM typed{joins}),
        numbered AS (SELECT checked.*, {failed} AS _check FROM checked)
        SELECT {", ".join(quote_ident(c.name) for c in layout.columns)}, _extra, _line, _raw,
            {reason} AS _reason, {column} AS _reason_column, {kind} AS _reason_kind
        FROM numbered"""


# An id or code may not hold a control character (NUL, tab, a line break...): "A1" and "A1<NUL>" would
# land as two keys that print alike. Legacy layouts land text exactly as written: the migration's
# extract step checks them.
_CONTROL = r"[\x00-\x1f\x7f]"
_KEY_SUFFIXES = ("_id", "_ref", "_code", "_no")
# Dates outside this window are typos or placeholders (a BC date, year 0024), not contract dates.
EARLIEST_DATE, LATEST_DATE = "1900-01-01", "9999-12-31"


def key_columns(layout: Layout) -> tuple[str, ...]:
    """Text columns holding ids or codes: trimmed on landing, control characters rejected."""
    if layout.system == "legacy":
        return ()
    return tuple(
        c.name
        for c in layout.columns
        if c.type.upper() == "VARCHAR" and (c.name in layout.primary_key or c.name.endswith(_KEY_SUFFIXES))
    )


def _trimmed(sql: str) -> str:
    """trim(), only where there is something to trim: trim() copies every string, which costs more
    than reading a usage file's ids and timestamps."""
    return f"(CASE WHEN starts_with({sql}, ' ') OR ends_with({sql}, ' ') THEN trim({sql}) ELSE {sql} END)"


def _literal(value: str | None) -> str:
    return "NULL" if value is None else quote_literal(value)


def _checks(shape: Shape, mapping_name: str) -> list[Check]:
    layout: Layout = shape.layout
    # A structural problem (entitlements/ingest/readers.py) names the file's column where there is one.
    checks = [Check("_problem IS NOT NULL", None, "_problem", column_sql="_problem_column")]
    for c in layout.columns:
        expr = shape.text_expr(c.name)
        if isinstance(expr, Lookup):
            checks.append(
                Check(
                    f"{_source(c.name)} IS NOT NULL AND {_text(c.name)} IS NULL",
                    c.name,
                    f"'unmapped {expr.kind} id ' || {_quote_value(_source(c.name))}"
                    f" || ': add a row \"{expr.kind},' || {_source(c.name)}"
                    f" || ',<{c.name}>\" to ' || {quote_literal(mapping_name)}",
                    UNMAPPED,
                )
            )
    for c in layout.columns:
        checks.append(
            Check(
                f"{_text(c.name)} IS NOT NULL AND {quote_ident(c.name)} IS NULL",
                c.name,
                f"'cannot read ' || {_quote_value(_text(c.name))} || ' as {c.type}{_hint(c.type)}'",
            )
        )
    keys = key_columns(layout)
    if keys:
        # One regular expression over the row's ids together (a usage file has millions of rows);
        # only a failing row looks for the id at fault.
        bad = [(f"regexp_matches({_text(k)}, '{_CONTROL}')", k) for k in keys]
        checks.append(
            Check(
                f"regexp_matches(concat_ws('', {', '.join(_text(k) for k in keys)}), '{_CONTROL}')",
                None,
                "'an id or code with a control character: ' || "
                + _quote_value("CASE " + " ".join(f"WHEN {b} THEN {_text(k)}" for b, k in bad) + " END")
                + " || ' (NUL, tab or line break): ids must be plain text'",
                column_sql="CASE " + " ".join(f"WHEN {b} THEN {quote_literal(k)}" for b, k in bad) + " END",
            )
        )
    for c in layout.columns:
        if c.name in keys:
            continue
        if c.type.upper().startswith("DECIMAL") and c.name not in shape.parse:
            scale = c.type.split(",")[-1].rstrip(") ")
            text = _text(c.name)
            # The exact comparison costs a second cast: only for text that may hold more decimals.
            suspect = (
                f"(length({text}) - instr({text}, '.') > {scale} AND instr({text}, '.') > 0"
                f" OR contains(lower({text}), 'e'))"
            )
            checks.append(
                Check(
                    f"{suspect} AND {quote_ident(c.name)} <> TRY_CAST({text} AS DECIMAL(38, 18))",
                    c.name,
                    f"{_quote_value(_text(c.name))} || ' has more decimals than {c.name} holds ({scale}):"
                    " send the exact value (nothing is rounded)'",
                )
            )
        elif c.type.upper() in ("DATE", "TIMESTAMP"):
            checks.append(
                Check(
                    f"CAST({quote_ident(c.name)} AS DATE) NOT BETWEEN DATE '{EARLIEST_DATE}'"
                    f" AND DATE '{LATEST_DATE}'",
                    c.name,
                    f"'date ' || {_quote_value(quote_ident(c.name))} || ' is outside {EARLIEST_DATE}"
                    f" to {LATEST_DATE}: not a plausible date'",
                )
            )
    for c in layout.columns:
        if c.required:
            checks.append(Check(f"{quote_ident(c.name)} IS NULL", c.name, "'required value is missing'"))
    for name, allowed in layout.enums.items():
        values = ", ".join(quote_literal(v) for v in allowed)
        if allowed == CURRENCIES:  # ~160 codes: name the standard, not the list
            reason = (
                f"'unknown currency ' || {_quote_value(quote_ident(name))}"
                " || ': not an ISO 4217 currency code (docs/currencies.md)'"
            )
        else:
            reason = f"{_quote_value(quote_ident(name))} || ' is not one of: {', '.join(allowed)}'"
        checks.append(Check(f"{quote_ident(name)} NOT IN ({values})", name, reason))
    for name in layout.non_negative:
        checks.append(
            Check(
                f"{quote_ident(name)} < 0",
                name,
                "'negative value ' || coalesce("
                f"{_quote_value(_text(name))}, CAST({quote_ident(name)} AS VARCHAR))",
            )
        )
    for start, end in layout.date_ranges:
        checks.append(
            Check(
                f"{quote_ident(end)} < {quote_ident(start)}",
                end,
                f"'{end} ' || CAST({quote_ident(end)} AS VARCHAR) || ' is before {start} '"
                f" || CAST({quote_ident(start)} AS VARCHAR)",
            )
        )
    if layout.unique_key:
        key = " || ', ' || ".join(f"CAST({quote_ident(k)} AS VARCHAR)" for k in layout.primary_key)
        names = ", ".join(layout.primary_key)
        checks.append(
            Check(
                "_key_rank > 1",
                layout.primary_key[0],
                f"'duplicate {names} ' || {key} || ' within the file: first on line '"
                " || coalesce(CAST(_key_first_line AS VARCHAR), '?')",
            )
        )
        checks.append(
            Check(
                "_landed_file IS NOT NULL",
                layout.primary_key[0],
                f"'{names} ' || {key} || ' is already landed from ' || _landed_file"
                " || ': an id belongs in one file (send a correction under the same file name)'",
            )
        )
    return checks


def _hint(type_: str) -> str:
    type_ = type_.upper()
    if type_ == "DATE":
        return " (expected YYYY-MM-DD)"
    if type_ == "TIMESTAMP":
        return " (expected an ISO 8601 date and time)"
    if type_.startswith("DECIMAL") or type_ in ("INTEGER", "BIGINT"):
        return " (expected a number)"  # the forms accepted: docs/ingest.md
    if type_ == "BOOLEAN":
        return " (expected true or false)"
    return ""
