"""Checking a catalog file (layout crm_catalog) before it lands; docs/catalog.md is the format.

The catalog is a tree of exactly three levels, package -> group -> entitlement, linked by
``parent_code``. A term left empty on an entitlement is inherited from its group, then from its
package (dbt model ``int_catalog_entitlements``). That model inner-joins the three levels, so a
node outside a clean three-level tree would silently drop out of the resolved catalog; the rules
here catch that, and the other mistakes a hand-made catalog tends to have, before anything lands.

Every problem is reported, not only the first, each with the physical CSV line (header = line 1)
so that the file can be fixed in one pass. Values are judged as the ingest reads them
(entitlements/ingest/whole_file.py): empty fields (quoted or not) are NULL, codes are read without surrounding
spaces, other text is compared exactly, numbers are parsed as the landing parses the layout's type.
"""

from __future__ import annotations

from pathlib import Path

from entitlements.ingest.layouts import LAYOUTS_BY_TABLE
from entitlements.ingest.whole_file import FileProblem, Problems, Row, WholeFile, check_values, read_rows

__all__ = ["CATALOG_LAYOUT", "CatalogProblem", "validate_catalog"]

CATALOG_LAYOUT = LAYOUTS_BY_TABLE["crm_catalog"]
# The level a node's parent must have; a package has no parent.
PARENT_LEVEL = {"group": "package", "entitlement": "group"}
THREE_LEVELS = (
    "the catalog has exactly three levels, package -> group -> entitlement;"
    " int_catalog_entitlements resolves no others and leaves such a node out"
)
_CATALOG = WholeFile(
    CATALOG_LAYOUT,
    subject="node_code",
    row_noun="node",
    empty_means={"limit_quantity": "unlimited", "sla_response_hours": "no response-time promise"},
)


class CatalogProblem(FileProblem):
    """One problem in a catalog file; str() names file, line, node and column, then the problem."""

    SUBJECT = "node"

    @property
    def node_code(self) -> str | None:
        return self.subject


class _Node(Row):
    @property
    def code(self) -> str | None:
        return self.values["node_code"]

    @property
    def parent(self) -> str | None:
        return self.values["parent_code"]

    @property
    def level(self) -> str | None:
        return self.values["node_level"]


_Problems = Problems[CatalogProblem]


def validate_catalog(path: Path, *, name: str | None = None) -> list[CatalogProblem]:
    """Every problem in a catalog CSV, in line order; an empty list means the file is valid.

    name: how the file is named in the problems (default: the path as given), e.g. the path
    relative to the export directory.
    """
    path = Path(path)
    problems = _Problems(str(path) if name is None else name, CatalogProblem)
    nodes = read_rows(path, _CATALOG, problems, _Node)
    if nodes is None:  # unreadable, or a header the rules can't be applied to
        return list(problems)
    check_values(nodes, _CATALOG, problems)
    first = _check_duplicates(nodes, problems)
    _check_structure(nodes, first, problems)
    _check_cycles(nodes, first, problems)
    _check_entitlements(nodes, first, problems)
    return problems.in_line_order(CATALOG_LAYOUT)


# --------------------------------------------------------------------------------------- row rules


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
