"""Rules defined once: the validity test, the leakage categories, the migration defaults, the
approved-override rule. Each test reads the files (no warehouse) and names where a second
definition crept in; each detector is also shown to catch the hand-written form it forbids.
"""

from __future__ import annotations

import ast
import csv
import json
import re
from pathlib import Path

import pytest
import yaml

from entitlements.warehouse import DBT_PROJECT_DIR, GX_DIR, NOTEBOOKS_DIR, PROJECT_ROOT

pytestmark = pytest.mark.unit

PACKAGE = PROJECT_ROOT / "entitlements"
SEED = DBT_PROJECT_DIR / "seeds" / "leakage_categories.csv"
VALIDITY_MACRO = DBT_PROJECT_DIR / "macros" / "validity.sql"
OVERRIDE_MACRO = DBT_PROJECT_DIR / "macros" / "overrides.sql"
# SQL files of the project that may not be edited by this change yet, each with its reason.
VALIDITY_NOT_YET_CONVERTED: dict[str, str] = {}  # path -> why it still hand-writes the test


def _dbt_sql() -> dict[str, str]:
    """Every SQL file of the dbt project (models, macros, analyses, tests, snapshots), by relative path."""
    skip = {"target", "logs", "dbt_packages"}
    return {
        path.relative_to(DBT_PROJECT_DIR).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(DBT_PROJECT_DIR.rglob("*.sql"))
        if not skip & set(path.relative_to(DBT_PROJECT_DIR).parts)
    }


def _python_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py")) + sorted(NOTEBOOKS_DIR.glob("*.py"))


def _dbt_vars() -> dict:
    return yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]


# --------------------------------------------------------------------------- (a) validity

# An operand: a column, a parameter, a cast or a Jinja call such as {{ as_of_date() }}.
_OPERAND = r"(?:cast\([^()]*\)|\{\{[^{}]*\}\}|\$?[\w.]+)"
_HALF_OPEN = (
    # valid_from <= x and x < valid_to, also with (valid_to is null or x < valid_to)
    re.compile(rf"{_OPERAND} <= (?P<x>{_OPERAND}) and \(?(?:{_OPERAND} is null or )?(?P=x) < {_OPERAND}"),
    # x >= valid_from and x < valid_to
    re.compile(rf"(?P<x>{_OPERAND}) >= {_OPERAND} and \(?(?:{_OPERAND} is null or )?(?P=x) < {_OPERAND}"),
    # (valid_from is null or x >= valid_from) and (valid_to is null or x < valid_to)
    re.compile(
        rf"{_OPERAND} is null or (?P<x>{_OPERAND}) >= {_OPERAND}\) and \({_OPERAND} is null or (?P=x) < "
    ),
)


def hand_written_validity(sql: str) -> list[str]:
    """The half-open validity tests written out by hand in a piece of SQL (comments ignored)."""
    code = re.sub(r"--[^\n]*|\{#.*?#\}", " ", sql, flags=re.S)
    flat = re.sub(r"\s+", " ", code.lower())
    return [m.group(0) for pattern in _HALF_OPEN for m in pattern.finditer(flat)]


@pytest.mark.parametrize(
    "sql",
    [
        "where valid_from <= {{ as_of_date() }} and {{ as_of_date() }} < valid_to",
        "valid_from <= {{ as_of_date() }} and (valid_to is null or {{ as_of_date() }} < valid_to)",
        "and events.occurred_at >= grants.valid_from_at\n    and events.occurred_at < grants.valid_to_at",
        "grants.valid_from <= cast($on as date) and cast($on as date) < grants.valid_to as covers_date",
        "and (prices.valid_from is null or quantities.priced_on >= prices.valid_from)\n"
        "and (prices.valid_to is null or quantities.priced_on < prices.valid_to)",
    ],
)
def test_the_validity_detector_catches_the_hand_written_forms(sql: str) -> None:
    assert hand_written_validity(sql)


def test_the_validity_detector_leaves_overlaps_and_the_macro_call_alone() -> None:
    assert not hand_written_validity(
        "and winner.valid_from < loser.valid_to and winner.valid_to > loser.valid_from"
        " and {{ in_force('grants.valid_from', 'grants.valid_to', as_of_date()) }}"
    )


def test_no_sql_file_hand_writes_the_half_open_validity_test() -> None:
    files = _dbt_sql()
    macro = VALIDITY_MACRO.relative_to(DBT_PROJECT_DIR).as_posix()
    assert "{% macro in_force(" in files[macro]
    written = {
        path: found
        for path, sql in files.items()
        if path != macro and path not in VALIDITY_NOT_YET_CONVERTED and (found := hand_written_validity(sql))
    }
    assert not written, f"use the macro in_force ({macro}) instead: {written}"
    users = [path for path, sql in files.items() if "in_force(" in sql and path != macro]
    assert len(users) >= 14, users  # the models and macros that test validity call it
    for path in VALIDITY_NOT_YET_CONVERTED:
        assert hand_written_validity(files[path]), f"{path} is converted: drop its waiver"


# --------------------------------------------------------------------------- (b) leakage categories

CATEGORY_NAMES = (  # DOMAIN.md, "Revenue leakage: the categories", in the report's order
    "unbilled_service",
    "uncovered_service",
    "over_allowance_service",
    "premium_service_on_standard",
    "unbilled_overage",
    "under_billed",
    "post_expiry_usage",
    "unapproved_override",
)
_CATEGORY = "|".join(CATEGORY_NAMES)
SEED_RELATIONSHIP = {"to": "ref('leakage_categories')", "field": "category"}


def _seed_rows() -> list[dict[str, str]]:
    with SEED.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def sql_category_lists(sql: str) -> list[str]:
    """Two or more category names written as a list ('a', 'b' in SQL or a Jinja list)."""
    return re.findall(rf"""['"](?:{_CATEGORY})['"]\s*,\s*['"](?:{_CATEGORY})['"]""", sql)


def python_category_collections(source: str) -> list[int]:
    """Lines of list, tuple, set or dict literals holding two or more category names."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            items = node.elts
        elif isinstance(node, ast.Dict):
            items = [key for key in node.keys if key is not None]
        else:
            continue
        names = [i.value for i in items if isinstance(i, ast.Constant) and i.value in CATEGORY_NAMES]
        if len(names) >= 2:
            lines.append(node.lineno)
    return lines


def json_category_values(data: object) -> list[str]:
    """Strings of a JSON document that are a category or a leaked_<category> column."""
    if isinstance(data, dict):
        return [v for value in data.values() for v in json_category_values(value)]
    if isinstance(data, list):
        return [v for value in data for v in json_category_values(value)]
    if isinstance(data, str) and re.fullmatch(rf"(?:leaked_)?(?:{_CATEGORY})", data):
        return [data]
    return []


def test_the_category_detectors_catch_a_list() -> None:
    assert sql_category_lists("{{ return(['unbilled_service', 'uncovered_service']) }}")
    assert sql_category_lists("where category in ('under_billed', 'unbilled_overage')")
    assert python_category_collections('ORDER = ("unbilled_service", "under_billed")') == [1]
    assert python_category_collections('COLOURS = {"under_billed": "#000000", "unbilled_overage": "#ffffff"}')
    assert json_category_values({"kwargs": {"value_set": ["under_billed"], "column": "leaked_under_billed"}})
    assert not python_category_collections('Leak("under_billed", line_id)')


def test_the_seed_defines_the_categories_with_order_colour_and_label() -> None:
    rows = _seed_rows()
    assert list(rows[0]) == ["category", "display_order", "colour", "label", "description"]
    assert tuple(r["category"] for r in sorted(rows, key=lambda r: int(r["display_order"]))) == CATEGORY_NAMES
    assert sorted(int(r["display_order"]) for r in rows) == list(range(1, len(rows) + 1))
    assert all(re.fullmatch(r"#[0-9A-Fa-f]{6}", r["colour"]) for r in rows)
    assert len({r["colour"].lower() for r in rows}) == len(rows)
    assert all(r["label"].strip() and "_" not in r["label"] and r["description"].strip() for r in rows)


def test_no_sql_python_or_json_file_lists_the_categories_again() -> None:
    lists = {path: found for path, sql in _dbt_sql().items() if (found := sql_category_lists(sql))}
    assert not lists, f"read the seed leakage_categories (macro leakage_categories): {lists}"
    collections = {
        str(path.relative_to(PROJECT_ROOT)): found
        for path in _python_files()
        if (found := python_category_collections(path.read_text(encoding="utf-8")))
    }
    assert not collections, f"read the seed (entitlements.reports.common.leakage_categories): {collections}"
    suites = {
        str(path.relative_to(PROJECT_ROOT)): found
        for path in sorted((GX_DIR / "expectations").rglob("*.json"))
        if (found := json_category_values(json.loads(path.read_text(encoding="utf-8"))))
    }
    assert not suites, f"the dbt relationships test to the seed owns the categories: {suites}"


def test_the_reports_take_order_and_colour_from_the_seed() -> None:
    from entitlements.reports import leakage

    rows = sorted(_seed_rows(), key=lambda r: int(r["display_order"]))
    order, colours = leakage.LEAKAGE_CATEGORIES, leakage.CATEGORY_COLORS
    assert order == tuple(r["category"] for r in rows)
    assert colours == {r["category"]: r["colour"] for r in rows}
    for path in [*sorted((PACKAGE / "reports").glob("*.py")), *sorted(NOTEBOOKS_DIR.glob("*.py"))]:
        constants = {
            node.value
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        }
        assert not constants & set(CATEGORY_NAMES), f"{path.name} names a category itself"


def test_dbt_reads_the_seed_and_every_category_column_is_tied_to_it() -> None:
    macro = (DBT_PROJECT_DIR / "macros" / "leakage_categories.sql").read_text(encoding="utf-8")
    assert "leakage_categories" in macro and "run_query(" in macro and not sql_category_lists(macro)
    kpis = (DBT_PROJECT_DIR / "models" / "marts" / "leakage" / "fct_leakage_kpis.sql").read_text()
    assert "leakage_categories()" in kpis and "ref('leakage_categories')" in kpis
    tied = {}
    for path in (DBT_PROJECT_DIR / "models").rglob("_*__models.yml"):
        for model in yaml.safe_load(path.read_text(encoding="utf-8")).get("models", []):
            for column in model.get("columns", []):
                if column["name"] not in ("category", "mismatch_category"):
                    continue
                tests = [t for t in column.get("data_tests", []) if isinstance(t, dict)]
                relations = [t["relationships"]["arguments"] for t in tests if "relationships" in t]
                tied[model["name"], column["name"]] = {
                    "to": "ref('leakage_categories')",
                    "field": "category",
                } in (relations)
    assert tied[("fct_revenue_leakage", "category")]
    assert all(tied.values()), [key for key, ok in tied.items() if not ok]
    assert len(tied) >= 6  # fct_revenue_leakage, the four int_leakage_* models, int_billable_records


# --------------------------------------------------------------------------- (c) migration defaults

MIGRATION_DEFAULTS = {  # dbt var -> the CLI option it is the default of
    "migration_max_fault_share": "--max-fault-share",
    "migration_review_value": "--review-value",
    "migration_review_min_contracts": "--review-contracts",
}


def test_the_migration_defaults_are_the_dbt_vars() -> None:
    from entitlements.cli import cli
    from entitlements.runs import migration

    dbt_vars = _dbt_vars()
    assert [dbt_vars[name] for name in MIGRATION_DEFAULTS] == [0.2, 50000, 8]
    in_python = (
        migration.DEFAULT_MAX_FAULT_SHARE,
        migration.DEFAULT_REVIEW_VALUE,
        migration.DEFAULT_REVIEW_MIN_CONTRACTS,
    )
    assert in_python == tuple(dbt_vars[name] for name in MIGRATION_DEFAULTS)
    validate = cli.commands["migrate"].commands["validate"]
    defaults = {option: param.default for param in validate.params for option in param.opts}
    for name, option in MIGRATION_DEFAULTS.items():
        assert defaults[option] == dbt_vars[name], option


_DEFAULT_NAMES = ("DEFAULT_MAX_FAULT_SHARE", "DEFAULT_REVIEW_VALUE", "DEFAULT_REVIEW_MIN_CONTRACTS")


def python_numeric_defaults(source: str) -> list[str]:
    """Numbers written as a migration default: DEFAULT_MAX_FAULT_SHARE = 0.2, or the default of a
    click option named like one of the migration options (default=50000)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name) and t.id in _DEFAULT_NAMES]
            found += [f"{name} = {node.value.value}" for name in names]
        if isinstance(node, ast.Call) and any(
            isinstance(a, ast.Constant) and a.value in MIGRATION_DEFAULTS.values() for a in node.args
        ):
            for keyword in node.keywords:
                if keyword.arg == "default" and isinstance(keyword.value, ast.Constant):
                    found.append(f"{node.args[0].value} default={keyword.value.value}")
    return found


def test_the_migration_defaults_are_written_nowhere_else_in_python() -> None:
    assert python_numeric_defaults("DEFAULT_REVIEW_VALUE = 50000")
    assert python_numeric_defaults('click.option("--review-contracts", type=int, default=8)')
    written = {
        str(path.relative_to(PROJECT_ROOT)): found
        for path in _python_files()
        if (found := python_numeric_defaults(path.read_text(encoding="utf-8")))
    }
    assert not written, f"read dbt_project.yml's vars (entitlements.runs.migration): {written}"


def test_the_docs_quote_the_migration_defaults_as_defined() -> None:
    dbt_vars = _dbt_vars()
    quoted = 0
    for path in [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for name, option in MIGRATION_DEFAULTS.items():
            for value in re.findall(rf"\[{re.escape(option)} ([\d.]+)\]", text):
                assert float(value) == dbt_vars[name], f"{path.name}: [{option} {value}]"
                quoted += 1
    assert quoted >= 6  # the usage lines of README.md and docs/migration.md


# --------------------------------------------------------------------------- (d) approved overrides

_APPROVED = re.compile(r"approved_by\s+is\s+not\s+null", re.I)


def test_the_approved_override_rule_is_written_only_in_its_macro() -> None:
    files = _dbt_sql()
    macro = OVERRIDE_MACRO.relative_to(DBT_PROJECT_DIR).as_posix()
    assert "{% macro approved_overrides(" in files[macro] and _APPROVED.search(files[macro])
    written = [path for path, sql in files.items() if path != macro and _APPROVED.search(sql)]
    assert not written, f"use the macro approved_overrides ({macro}): {written}"
    users = sorted(
        Path(path).name for path, sql in files.items() if "approved_overrides(" in sql and path != macro
    )
    assert users == [
        "active_entitlements.sql",
        "int_allowance_periods.sql",
        "int_service_deliveries_attributed.sql",
    ]
