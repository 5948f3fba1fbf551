"""Checking a catalog file (layout crm_catalog) before it lands; docs/catalog.md is the format.

The catalog is a tree of exactly three levels, package -> group -> entitlement, linked by
``parent_code``. A term left empty on an entitlement is inherited from its group, then from its
package (dbt model ``int_catalog_entitlements``). That model inner-joins the three levels, so a
node outside a clean three-level tree would silently drop out of the resolved catalog; the rules
here catch that, and the other mistakes a hand-made catalog tends to have, before anything lands.

Every problem is reported, not only the first, each with the physical CSV line (header = line 1)
so that the file can be fixed in one pass. Values are judged as the ingest reads them: empty
fields (quoted or not) are NULL, text is compared exactly, numbers are cast by DuckDB to the
layout's type.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ingest.layouts import LAYOUTS_BY_TABLE

__all__ = ["CATALOG_LAYOUT", "CatalogProblem", "validate_catalog"]

CATALOG_LAYOUT = LAYOUTS_BY_TABLE["crm_catalog"]
# The level a node's parent must have; a package has no parent.
PARENT_LEVEL = {"group": "package", "entitlement": "group"}
THREE_LEVELS = (
    "the catalog has exactly three levels, package -> group -> entitlement;"
    " int_catalog_entitlements resolves no others and leaves such a node out"
)
_COLUMN_ORDER = {name: i for i, name in enumerate(CATALOG_LAYOUT.column_names)}


@dataclass(frozen=True)
class CatalogProblem:
    """One problem in a catalog file; str() names file, line, node and column, then the problem."""

    file: str
    line: int  # physical line in the CSV, header = line 1
    node_code: str | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = [self.file, f"line {self.line}"]
        if self.node_code is not None:
            where.append(f"node {self.node_code}")
        if self.column is not None:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.message}"


@dataclass(frozen=True)
class _Node:
    line: int
    values: dict[str, str | None]  # every layout column as text; None for empty or absent
    typed: dict[str, object] = field(default_factory=dict)  # non-text columns as DuckDB casts them

    @property
    def code(self) -> str | None:
        return self.values["node_code"]

    @property
    def parent(self) -> str | None:
        return self.values["parent_code"]

    @property
    def level(self) -> str | None:
        return self.values["node_level"]


class _Problems(list[CatalogProblem]):
    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file

    def add(self, line: int, node: str | None, column: str | None, message: str) -> None:
        self.append(CatalogProblem(self.file, line, node, column, message))


def validate_catalog(path: Path, *, name: str | None = None) -> list[CatalogProblem]:
    """Every problem in a catalog CSV, in line order; an empty list means the file is valid.

    name: how the file is named in the problems (default: the path as given), e.g. the path
    relative to the export directory.
    """
    path = Path(path)
    problems = _Problems(str(path) if name is None else name)
    nodes = _read(path, problems)
    if nodes is None:  # unreadable, or a header the rules can't be applied to
        return list(problems)
    _check_values(nodes, problems)
    first = _check_duplicates(nodes, problems)
    _check_structure(nodes, first, problems)
    _check_cycles(nodes, first, problems)
    _check_entitlements(nodes, first, problems)
    return sorted(problems, key=lambda p: (p.line, _COLUMN_ORDER.get(p.column or "", -1)))


# ------------------------------------------------------------------------------------------- reading


def _read(path: Path, problems: _Problems) -> list[_Node] | None:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problems.add(
            line, None, None, f"not UTF-8 text (byte {data[exc.start]:#04x}): save the file as UTF-8"
        )
        return None
    if not text.strip():
        problems.add(1, None, None, "the file is empty (expected a header line, then one node per line)")
        return None
    reader = csv.reader(io.StringIO(text, newline=""))
    nodes: list[_Node] = []
    header: list[str] | None = None
    end_of_previous = 0
    try:
        for fields in reader:
            start, end_of_previous = end_of_previous + 1, reader.line_num
            if not fields:  # a blank line: DuckDB's reader skips it too
                continue
            if header is None:
                header = fields
                if not _check_header(header, start, problems):
                    return None
                continue
            nodes.append(_node(header, fields, start, problems))
    except csv.Error as exc:
        problems.add(reader.line_num, None, None, f"unreadable CSV: {exc}")
        return None
    return nodes


def _check_header(header: list[str], line: int, problems: _Problems) -> bool:
    missing = [c for c in CATALOG_LAYOUT.required_columns if c not in header]
    for column in missing:
        problems.add(
            line,
            None,
            column,
            f"missing required column '{column}' (required: {', '.join(CATALOG_LAYOUT.required_columns)})",
        )
    return not missing


def _node(header: list[str], fields: list[str], line: int, problems: _Problems) -> _Node:
    by_name = dict(zip(header, fields, strict=False))
    values = {c: (by_name.get(c) or None) for c in CATALOG_LAYOUT.column_names}
    if len(fields) != len(header):
        problems.add(
            line,
            values["node_code"],
            None,
            f"{len(fields)} fields where the header has {len(header)}"
            " (a missing or extra comma, or an unquoted comma in a value)",
        )
    return _Node(line, values)


# --------------------------------------------------------------------------------------- row rules


def _check_values(nodes: list[_Node], problems: _Problems) -> None:
    """Required values present, enumerations known, typed values readable, numbers not negative."""
    for column in CATALOG_LAYOUT.required_columns:
        for node in nodes:
            if node.values[column] is None:
                problems.add(node.line, node.code, column, f"{column} is empty: every node needs one")
    for column, allowed in CATALOG_LAYOUT.enums.items():
        for node in nodes:
            value = node.values[column]
            if value is not None and value not in allowed:
                problems.add(node.line, node.code, column, _unknown_value(column, value, allowed))
    typed = [c for c in CATALOG_LAYOUT.columns if c.type.upper() != "VARCHAR"]
    with duckdb.connect() as con:
        for column in typed:
            texts = [node.values[column.name] for node in nodes]
            (cast,) = con.execute(
                f"SELECT [TRY_CAST(x AS {column.type}) FOR x IN $texts::VARCHAR[]]", {"texts": texts}
            ).fetchone()
            for node, text, value in zip(nodes, texts, cast, strict=True):
                node.typed[column.name] = value
                if text is None:
                    continue
                if value is None:
                    problems.add(node.line, node.code, column.name, _not_a(column.type, text))
                elif column.name in CATALOG_LAYOUT.non_negative and value < 0:
                    problems.add(node.line, node.code, column.name, _negative(column.name, text))


def _not_a(type_: str, text: str) -> str:
    if type_.upper().startswith("DECIMAL"):
        return f"{text!r} is not a number ({type_})"
    if type_.upper() == "BOOLEAN":
        return f"{text!r} is not a BOOLEAN (use true or false)"
    return f"{text!r} is not a valid {type_}"


def _unknown_value(column: str, value: str, allowed: tuple[str, ...]) -> str:
    message = f"unknown {column} {value!r} (allowed: {', '.join(allowed)})"
    if value.strip() in allowed:
        message += ": remove the spaces around it"
    elif value.strip().lower() in allowed:
        message += ": values are lower case"
    return message


def _negative(column: str, text: str) -> str:
    empty_means = {"limit_quantity": "unlimited", "sla_response_hours": "no response-time promise"}
    meaning = empty_means.get(column)
    return f"negative {column} {text.strip()}: it must be 0 or more" + (
        f" (leave it empty for {meaning})" if meaning else ""
    )


def _check_duplicates(nodes: list[_Node], problems: _Problems) -> dict[str, _Node]:
    """The first node of each code; later nodes with the same code are reported."""
    first: dict[str, _Node] = {}
    for node in nodes:
        if node.code is None:
            continue
        if node.code in first:
            problems.add(
                node.line,
                node.code,
                "node_code",
                f"duplicate node_code {node.code!r}: line {first[node.code].line} has the same code;"
                " node codes must be unique (children refer to them in parent_code)",
            )
        else:
            first[node.code] = node
    return first


# --------------------------------------------------------------------------------- tree rules


def _check_structure(nodes: list[_Node], first: dict[str, _Node], problems: _Problems) -> None:
    """Parents exist and sit exactly one level up: package -> group -> entitlement."""
    for node in nodes:
        if node.parent is not None and node.parent not in first:
            problems.add(
                node.line,
                node.code,
                "parent_code",
                f"unknown parent {node.parent!r} (no node with that code)",
            )
            continue
        if node.level == "package":
            if node.parent is not None:
                problems.add(
                    node.line,
                    node.code,
                    "parent_code",
                    f"a package cannot have a parent (parent_code is {node.parent!r}):"
                    f" packages are the top level; {THREE_LEVELS}. Leave parent_code empty",
                )
            continue
        expected = PARENT_LEVEL.get(node.level or "")
        if expected is None:  # unknown or empty level: reported already
            continue
        if node.parent is None:
            problems.add(
                node.line,
                node.code,
                "parent_code",
                f"{_a(node.level)} {node.level} needs a parent {expected}, but parent_code is empty;"
                f" {THREE_LEVELS}",
            )
            continue
        parent = first[node.parent]
        if parent.level in CATALOG_LAYOUT.enums["node_level"] and parent.level != expected:
            problems.add(
                node.line,
                node.code,
                "parent_code",
                f"the parent of {_a(node.level)} {node.level} must be {_a(expected)} {expected}, but"
                f" {node.parent!r} (line {parent.line}) is {_a(parent.level)} {parent.level};"
                f" {THREE_LEVELS}",
            )


def _a(word: str | None) -> str:
    return "an" if (word or "x")[0] in "aeiou" else "a"


def _check_cycles(nodes: list[_Node], first: dict[str, _Node], problems: _Problems) -> None:
    """Parent links that loop back: one problem per cycle, naming every node in it."""
    done: set[str] = set()
    for node in nodes:
        path: list[str] = []
        on_path: dict[str, int] = {}
        code = node.code
        while code is not None and code in first and code not in done and code not in on_path:
            on_path[code] = len(path)
            path.append(code)
            code = first[code].parent
        if code is not None and code in on_path:
            _report_cycle(path[on_path[code] :], first, problems)
        done.update(path)


def _report_cycle(cycle: list[str], first: dict[str, _Node], problems: _Problems) -> None:
    start = min(range(len(cycle)), key=lambda i: first[cycle[i]].line)
    cycle = cycle[start:] + cycle[:start]
    head = first[cycle[0]]
    chain = " -> ".join(f"{code!r} (line {first[code].line})" for code in cycle)
    problems.add(
        head.line,
        head.code,
        "parent_code",
        f"parent links form a cycle: {chain} -> {cycle[0]!r}; {len(cycle)} node"
        f"{'s' if len(cycle) > 1 else ''} never reach{'' if len(cycle) > 1 else 'es'} a package."
        " Point one of them at its real parent",
    )


# ------------------------------------------------------------------------ entitlements, resolved


def _ancestors(node: _Node, first: dict[str, _Node]) -> list[_Node]:
    """The node, its parent and its grandparent as far as they exist: what int_catalog_entitlements
    coalesces over (entitlement, group, package)."""
    chain = [node]
    while len(chain) < 3 and chain[-1].parent in first:
        parent = first[chain[-1].parent]
        if any(parent is link for link in chain):  # a cycle
            break
        chain.append(parent)
    return chain


def _inherited(chain: list[_Node], column: str) -> tuple[str | None, _Node | None]:
    for link in chain:
        if link.values[column] is not None:
            return link.values[column], link
    return None, None


def _check_entitlements(nodes: list[_Node], first: dict[str, _Node], problems: _Problems) -> None:
    """Entitlement code; unit and limit period after inheritance; each code once per package.

    Inherited terms are judged only for an entitlement whose chain entitlement -> group -> package
    is complete: otherwise what it inherits depends on how the (reported) broken link is fixed.
    """
    codes_in_package: dict[tuple[str, str], _Node] = {}
    for node in nodes:
        if node.level != "entitlement":
            continue
        code = node.values["entitlement_code"]
        if code is None:
            problems.add(
                node.line,
                node.code,
                "entitlement_code",
                "an entitlement without an entitlement_code: set the code that service deliveries"
                " (service_code), usage (meter_code) and overrides are matched on",
            )
        chain = _ancestors(node, first)
        if [link.level for link in chain] != ["entitlement", "group", "package"]:
            continue
        if _inherited(chain, "unit")[0] is None:
            problems.add(
                node.line,
                node.code,
                "unit",
                f"missing unit: {_nowhere(chain)} (e.g. incidents, visits, calls, GB)",
            )
        limit, limit_from = _inherited(chain, "limit_quantity")
        period, _ = _inherited(chain, "limit_period")
        if limit is not None and limit_from is not None and period is None and _resets(chain):
            origin = "" if limit_from is node else f" (inherited from {limit_from.level} {limit_from.code!r})"
            problems.add(
                node.line,
                node.code,
                "limit_period",
                f"limit_quantity {limit.strip()}{origin} but no limit_period: {_nowhere(chain)}."
                f" Set limit_period ({_either(CATALOG_LAYOUT.enums['limit_period'])}) to say over which"
                " period the limit counts",
            )
        package = chain[2].code
        if code is not None and package is not None:
            if (package, code) in codes_in_package:
                problems.add(
                    node.line,
                    node.code,
                    "entitlement_code",
                    f"entitlement_code {code!r} is already granted by package {package!r}"
                    f" (line {codes_in_package[package, code].line}): a package grants each"
                    " entitlement_code once (int_entitlement_grants keys a grant by contract line and"
                    " entitlement_code)",
                )
            else:
                codes_in_package[package, code] = node


def _resets(chain: list[_Node]) -> bool:
    """Whether the allowance resets each period (optional column resets, inherited; default true).

    One that does not reset counts over the whole term whatever limit_period says.
    """
    if "resets" not in CATALOG_LAYOUT.column_names:
        return True
    _, link = _inherited(chain, "resets")
    return link is None or link.typed.get("resets") is not False


def _nowhere(chain: list[_Node]) -> str:
    """Says that no node of an entitlement's complete chain sets a term."""
    above = " nor ".join(f"its {link.level or 'parent'} {link.code!r}" for link in chain[1:])
    return f"neither the entitlement nor {above} sets one"


def _either(values: tuple[str, ...]) -> str:
    return f"{', '.join(values[:-1])} or {values[-1]}" if len(values) > 1 else values[0]
