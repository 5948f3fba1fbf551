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
from entitlements.ingest.shapes import SPACE, Lookup, Shape, default_parse

UNMAPPED = "unmapped"  # reason kind of a row whose id the mapping lacks (quarantinable)
_QUOTED = 80  # characters of a value quoted in a reason


@dataclass(frozen=True)
class Check:
    condition: str  # SQL over the typed relation, true when the row fails
    column: str | None
    reason: str  # SQL giving the message
    kind: str = "invalid"
    column_sql: str | None = None  # SQL giving the column, where it depends on the row
    control: bool = False  # the ids' control-character check (valid_rows_sql may leave it out)
    # Whether a row's failing it matters only for its reason: another check fails too (a required
    # column's unreadable value is NULL), or the fast read cannot fail it (a structural problem: its
    # reader refuses the file instead). valid_rows_sql leaves it out.
    reason_only: bool = False


def _text(column: str) -> str:
    return quote_ident(f"{column}:text")


def _source(column: str) -> str:
    return quote_ident(f"{column}:source")


def _quote_value(sql: str) -> str:
    return f"'''' || left(CAST({sql} AS VARCHAR), {_QUOTED}) || ''''"


def checked_sql(
    shape: Shape, source_sql: str, source_file: str, mapping_name: str, *, seen: str | None = None
) -> str:
    """SELECT of the layout's typed columns, _extra, _line, _raw, _reason, _reason_column and _reason_kind.

    seen: for a file checked in chunks (the exact read), the table of the keys of its earlier chunks
    (the key columns and _first_line): a key seen there is a duplicate too, first on that line. The
    SELECT then adds _new_key, true on the first row of each key not seen before (to add to it).
    """
    checks = _checks(shape, mapping_name, seen=seen is not None)
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
    new_key = ", _key_rank = 1 AND _seen_line IS NULL AS _new_key" if seen and shape.layout.unique_key else ""
    typed = _typed_sql(shape, source_sql, source_file, seen)  # the file's name: quoted inside
    return f"""{typed},
        numbered AS (SELECT checked.*, {failed} AS _check FROM checked)
        SELECT {", ".join(quote_ident(c.name) for c in shape.layout.columns)}, _extra, _line, _raw,
            {reason} AS _reason, {column} AS _reason_column, {kind} AS _reason_kind{new_key}
        FROM numbered"""


def valid_rows_sql(
    shape: Shape,
    source_sql: str,
    source_file: str,
    mapping_name: str,
    *,
    control_chars: bool = True,
    absent: frozenset[str] = frozenset(),
) -> str:
    """The fast read's SELECT: the layout's typed columns and _extra, the statement aborting (error())
    at the first row any check fails, so the file is read again exactly. The same checks as
    checked_sql, but no reason is worked out for a row that has none: a usage file has millions.

    For a caller that proves it otherwise: control_chars=False leaves out the ids' control-character
    check (control_chars_condition); absent, characters (shapes.SPACE, shapes.SLASH) no value of the
    file holds, the tests for them on the fields read as they are: no trimming without a space.
    """
    checks = [
        c
        for c in _checks(shape, mapping_name, seen=False)
        if not c.reason_only and (control_chars or not c.control)
    ]
    failing = " OR ".join(f"({c.condition})" for c in checks) or "false"
    typed = _typed_sql(shape, source_sql, source_file, None, absent=absent)
    return f"""{typed}
        SELECT {", ".join(quote_ident(c.name) for c in shape.layout.columns)}, _extra
        FROM checked
        WHERE CASE WHEN {failing} THEN error('a row fails a check: read the file exactly') ELSE true END"""


def control_chars_condition(shape: Shape) -> str | None:
    """The ids' control-character check over the columns as landed in raw, when they land as read (no
    parse of their own); None otherwise, or when the layout has no ids to check."""
    keys = key_columns(shape.layout)
    if not keys or any(not _as_read(shape, k, "VARCHAR") for k in keys):
        return None
    return f"regexp_matches(concat_ws('', {', '.join(quote_ident(k) for k in keys)}), '{_CONTROL}')"


def _as_read(shape: Shape, column: str, type_: str) -> bool:
    """Whether the column's value is its text unchanged (a text column without a parse of its own)."""
    return type_.upper() == "VARCHAR" and shape.parse_template(column, type_) == default_parse("VARCHAR")


def _typed(shape: Shape, column: str, type_: str, absent: frozenset[str]) -> str:
    """The column's typed value from its text: the text itself for text (no cast to copy it)."""
    if _as_read(shape, column, type_):
        return _text(column)
    return shape.parse_template(column, type_, absent).replace("{}", _text(column))


def _typed_sql(
    shape: Shape,
    source_sql: str,
    source_file: str,
    seen: str | None,
    *,
    absent: frozenset[str] = frozenset(),
) -> str:
    """WITH ... up to ``checked``: every column's text, typed value, and what the key checks need.
    absent: characters no field of the file holds (an expression over fields may still make them)."""
    layout = shape.layout
    keys = key_columns(layout)
    fields = {quote_ident(f) for f in shape.fields}

    def trimmed(sql: str, expr: str) -> str:
        return sql if SPACE in absent and expr in fields else _trimmed(sql)

    texts, lookups = [], []
    for column in layout.columns:
        expr = shape.text_expr(column.name)
        if isinstance(expr, Lookup):
            source = trimmed(f"CAST({expr.source} AS VARCHAR)", expr.source)
            texts.append(f"nullif({source}, '') AS {_source(column.name)}")
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
                value = trimmed(value, expr)
            texts.append(f"nullif({value}, '') AS {_text(column.name)}")
    mapped = [
        (
            f"coalesce({quote_ident(f'map:{c.name}')}.target_id, rec.{_source(c.name)}) AS {_text(c.name)}"
            if expr.keep_unmapped
            else f"{quote_ident(f'map:{c.name}')}.target_id AS {_text(c.name)}"
        )
        for c in layout.columns
        if isinstance(expr := shape.text_expr(c.name), Lookup)
    ]
    typed = [
        f"{_typed(shape, c.name, c.type, absent if shape.text_expr(c.name) in fields else frozenset())}"
        f" AS {quote_ident(c.name)}"
        for c in layout.columns
    ]
    key_cols = ", ".join(quote_ident(k) for k in layout.primary_key)
    windows, joins, joined = "", "", "NULL AS _landed_file, NULL::BIGINT AS _seen_line"
    if layout.unique_key:
        windows = (
            f", row_number() OVER (PARTITION BY {key_cols} ORDER BY _line) AS _key_rank,"
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
        joined = "landed._landed_file, NULL::BIGINT AS _seen_line"
        if seen:
            # A key as the window partitions it: NULL matches NULL (a key column may be empty).
            on = " AND ".join(
                f"seen.{quote_ident(k)} IS NOT DISTINCT FROM typed.{quote_ident(k)}"
                for k in layout.primary_key
            )
            joins += f" LEFT JOIN {seen} AS seen ON {on}"
            joined = "landed._landed_file, seen._first_line AS _seen_line"
    return f"""
        WITH src AS ({source_sql}),
        rec AS (SELECT {", ".join(texts)}, _extra, _line, _raw, _problem, _problem_column
            FROM src{shape.explode or ""}),
        looked AS (SELECT rec.*{"".join(", " + m for m in mapped)} FROM rec {" ".join(lookups)}),
        typed AS (SELECT looked.*, {", ".join(typed)}{windows} FROM looked),
        checked AS (SELECT typed.*, {joined} FROM typed{joins})"""


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
    than reading a usage file's ids and timestamps. One contains() (a byte search) tells more cheaply
    than starts_with() or ends_with() that there is not; trim() of the rest gives the same."""
    return f"(CASE WHEN contains({sql}, ' ') THEN trim({sql}) ELSE {sql} END)"


def _literal(value: str | None) -> str:
    return "NULL" if value is None else quote_literal(value)


def _checks(shape: Shape, mapping_name: str, *, seen: bool) -> list[Check]:
    layout: Layout = shape.layout
    # A structural problem (entitlements/ingest/readers.py) names the file's column where there is one.
    checks = [Check("_problem IS NOT NULL", None, "_problem", column_sql="_problem_column", reason_only=True)]
    for c in layout.columns:
        expr = shape.text_expr(c.name)
        if isinstance(expr, Lookup) and not expr.keep_unmapped:
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
        if _as_read(shape, c.name, c.type):
            continue  # text read as text: nothing it cannot be read as
        checks.append(
            Check(
                f"{_text(c.name)} IS NOT NULL AND {quote_ident(c.name)} IS NULL",
                c.name,
                f"'cannot read ' || {_quote_value(_text(c.name))} || ' as {c.type}{_hint(c.type)}'",
                reason_only=c.required,
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
                control=True,
            )
        )
    for c in layout.columns:
        if c.name in keys:
            continue
        if c.type.upper().startswith("DECIMAL") and c.name not in shape.parse:
            scale = c.type.split(",")[-1].rstrip(") ")
            text = _text(c.name)
            # The exact comparison costs a second cast: only for text that may hold more decimals.
            # strlen() (bytes, kept with the string) first: more decimals than the scale take more
            # characters than that. (Not lower(): it copies every string.)
            suspect = (
                f"(strlen({text}) > {int(scale) + 1} AND instr({text}, '.') > 0"
                f" AND length({text}) - instr({text}, '.') > {scale}"
                f" OR contains({text}, 'e') OR contains({text}, 'E'))"
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
            # A timestamp is compared as it is (a cast to its date would cost a conversion per row):
            # its date is in the window exactly when it is between the window's first and last instant.
            first, last = (
                (f"DATE '{EARLIEST_DATE}'", f"DATE '{LATEST_DATE}'")
                if c.type.upper() == "DATE"
                else (f"TIMESTAMP '{EARLIEST_DATE}'", f"TIMESTAMP '{LATEST_DATE} 23:59:59.999999'")
            )
            checks.append(
                Check(
                    f"{quote_ident(c.name)} NOT BETWEEN {first} AND {last}",
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
        # seen: the file's earlier chunks hold the key's first line (_seen_line), if they hold it.
        first = "coalesce(_seen_line, _key_first_line)" if seen else "_key_first_line"
        checks.append(
            Check(
                "_key_rank > 1 OR _seen_line IS NOT NULL" if seen else "_key_rank > 1",
                layout.primary_key[0],
                f"'duplicate {names} ' || {key} || ' within the file: first on line '"
                f" || coalesce(CAST({first} AS VARCHAR), '?')",
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
