"""dbt-project-evaluator's rules, judged on dbt's manifest.json (the package itself cannot be installed).

dbt Labs' dbt-project-evaluator (https://github.com/dbt-labs/dbt-project-evaluator) turns dbt's graph into
tables and fails a ``fct_*`` model's ``is_empty`` test (or a coverage threshold) for every rule a project
breaks. `dbt deps` has no network here and the project takes no hub packages, so this module reimplements
the rules in Python over the manifest of one `dbt parse`, following the package's SQL (models/marts/**),
not only its docs: which resource types count, that exposures and metrics never count as children where the
package filters on ``child_is_excluded`` (their ``is_excluded`` is NULL), that a model's type comes from
its prefix first and otherwise from the folder nearest its file, that tests are never part of the DAG, etc.

One parametrized test per rule, named after the package's fact model (the name its exceptions seed uses):

- modeling: fct_direct_join_to_source, fct_marts_or_intermediate_dependent_on_source (downstream models
  dependent on source), fct_duplicate_sources, fct_hard_coded_references (the package's regexes),
  fct_model_fanout (>= 3 leaf children), fct_multiple_sources_joined, fct_rejoining_of_upstream_concepts,
  fct_root_models, fct_source_fanout, fct_staging_dependent_on_marts_or_intermediate,
  fct_staging_dependent_on_staging, fct_unused_sources, fct_too_many_joins (>= 7 parents)
- testing: fct_missing_primary_key_tests, fct_test_coverage (target 100 %), fct_sources_without_freshness
- documentation: fct_undocumented_models, fct_documentation_coverage (target 100 %),
  fct_undocumented_sources, fct_undocumented_source_tables
- structure: fct_model_naming_conventions, fct_model_directories, fct_source_directories,
  fct_test_directories
- performance: fct_chained_views_dependencies (a chain of more than 5 views/ephemerals, duckdb's
  threshold), fct_exposure_parents_materializations
- governance: fct_public_models_without_contract, fct_undocumented_public_models,
  fct_exposures_dependent_on_private_models

The package's default variables are used (model_types base/staging/intermediate/marts/other, prefixes
base_/stg_/int_/fct_+dim_/rpt_, folders base/staging/intermediate/marts), with one override a project
without dbt_utils would set: ``primary_key_test_macros`` also accepts this project's own
``unique_combination`` generic test (dbt_project/macros/generic_tests.sql), the equivalent of
``dbt_utils.unique_combination_of_columns``, and its ``primary_key`` test (unique and not null in
one query).

Not reimplemented, because it cannot apply here:

- ``exclude_packages``: the project installs no packages (tests/test_dbt_project.py forbids packages.yml),
  so every resource in the manifest is this project's and is judged.
- ``exclude_paths_from_project`` and the ``dbt_project_evaluator_exceptions`` seed: replaced by the
  waivers file below; the coverage rules, which the seed cannot waive, take per-model waivers here.
- the package's informational columns no rule tests (``sql_complexity``, ``number_lines``,
  ``test_to_model_ratio``), its on-run-end issue printing and ``max_depth_dag`` (unlimited on duckdb).
- metrics and semantic models: the project defines none (metrics are still handled as DAG resources).

Waivers live in dbt_project/evaluator_waivers.yml: a YAML list of ``{rule, resource, reason}``, ``rule``
being a fact model name above and ``resource`` the name a violation is reported under (the test's
message shows it first): the model, for model rules; ``source.table`` for source-table rules; the source
for fct_undocumented_sources; ``database.schema.identifier`` for fct_duplicate_sources; the in-between
model for fct_rejoining_of_upstream_concepts; the parent for fct_model_fanout; the exposed resource for
the exposure rules. A waiver that matches no current violation fails its rule's test too, so the file
never outlives what it excuses.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT = ROOT / "dbt_project"
WAIVERS_FILE = DBT_PROJECT / "evaluator_waivers.yml"
DBT = Path(sys.executable).parent / "dbt"

# -- the package's variables (its dbt_project.yml), duckdb values where they depend on the target --
FOLDER_NAMES = {"base": "base", "staging": "staging", "intermediate": "intermediate", "marts": "marts"}
PREFIXES = {
    "base": ("base_",),
    "staging": ("stg_",),
    "intermediate": ("int_",),
    "marts": ("fct_", "dim_"),
    "other": ("rpt_",),
}
PREFIX_MODEL_TYPE = {prefix: model_type for model_type, values in PREFIXES.items() for prefix in values}
# Default sets, plus this project's own unique_combination (dbt_utils.unique_combination_of_columns).
PRIMARY_KEY_TEST_MACROS = (
    ("dbt.test_unique", "dbt.test_not_null"),
    ("dbt_utils.test_unique_combination_of_columns",),
    ("entitlements.test_unique_combination",),
    ("entitlements.test_primary_key",),
)
ENFORCED_PRIMARY_KEY_NODE_TYPES = ("model",)
MODELS_FANOUT_THRESHOLD = 3
TOO_MANY_JOINS_THRESHOLD = 7
CHAINED_VIEWS_THRESHOLD = 5
DOCUMENTATION_COVERAGE_TARGET = 100
TEST_COVERAGE_TARGET = 100
COMMENT_CHARS = ("--",)

# Resource types the package gives no model type (int_all_graph_resources).
UNTYPED = ("test", "source", "metric", "exposure", "seed")
NOT_PHYSICAL = ("view", "ephemeral")

# macros/find_all_hard_coded_references.sql, verbose patterns compacted (they hold no literal whitespace).
_NOT_AFTER_DISTINCT = r"(?<!distinct\s)(from|join)\s+"
_OPEN, _CLOSE, _WORD = r"([\[`\"']?)", r"([\]`\"']?)", r"(\w+-?\w*)"
HARD_CODED_REFERENCE_PATTERNS = tuple(
    re.compile(_NOT_AFTER_DISTINCT + pattern, re.IGNORECASE)
    for pattern in (
        r"({{\s*var\s*\(\s*['\"]?)([^)'\"]+)(['\"]?\s*)(\)\s*}})",
        r"({{\s*var\s*\(\s*['\"]?)([^)'\"]+)(['\"]?\s*)(,)(\s*['\"]?)([^)'\"]+)(['\"]?\s*)(\)\s*}})",
        _OPEN + _WORD + _CLOSE + r"(\.)" + _OPEN + _WORD + _CLOSE + r"(?=\s|$)",
        _OPEN
        + _WORD
        + _CLOSE
        + r"(\.)"
        + _OPEN
        + _WORD
        + _CLOSE
        + r"(\.)"
        + _OPEN
        + _WORD
        + _CLOSE
        + r"(?=\s|$)",
        r"([\[`\"'])(\w+-?\w+)([\]`\"'])(?=\s|$)",
    )
)


def like(value: str, pattern: str) -> bool:
    """SQL LIKE (case-sensitive, as on duckdb): % any run, _ any one character."""
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


@dataclass(eq=False)
class Resource:
    """One row of the package's int_all_graph_resources."""

    unique_id: str
    name: str  # the package's resource_name: source.table for sources, name.vN for versioned models
    resource_type: str
    file_path: str
    raw: dict[str, Any] = field(repr=False)

    @property
    def file_name(self) -> str:
        return re.sub(r".*/", "", self.file_path)

    @property
    def directory_path(self) -> str:
        return self.file_path.replace(self.file_name, "")  # the package's dbt.replace(), every occurrence

    @property
    def is_excluded(self) -> bool | None:
        """No exclusions are configured; like the package, exposures and metrics have none (NULL)."""
        return None if self.resource_type in ("exposure", "metric") else False

    @property
    def prefix(self) -> str | None:
        return None if self.resource_type == "source" else self.raw["name"].split("_")[0] + "_"

    @property
    def model_type_folder(self) -> str | None:
        """The model type of the folder nearest the file (the furthest first match of /<folder>/)."""
        if self.resource_type in UNTYPED:
            return None
        positions = {t: self.directory_path.find(f"/{f}/") + 1 for t, f in FOLDER_NAMES.items()}
        best = max(positions, key=lambda t: positions[t])
        return best if positions[best] > 0 else None

    @property
    def model_type(self) -> str | None:
        if self.resource_type in UNTYPED:
            return None
        return PREFIX_MODEL_TYPE.get(self.prefix or "") or self.model_type_folder or "other"

    @property
    def materialized(self) -> str | None:
        return (self.raw.get("config") or {}).get("materialized")

    @property
    def access(self) -> str | None:
        return self.raw.get("access")

    @property
    def is_public(self) -> bool:
        return self.access == "public"

    @property
    def is_contract_enforced(self) -> bool:
        return bool((self.raw.get("contract") or {}).get("enforced"))

    @property
    def is_described(self) -> bool:
        return bool(self.raw.get("description"))

    @property
    def source_name(self) -> str | None:
        return self.raw.get("source_name") if self.resource_type == "source" else None

    @property
    def is_time_spine(self) -> bool:
        return self.resource_type == "model" and self.raw.get("time_spine") is not None

    @property
    def is_generic_test(self) -> bool:
        return bool(self.raw.get("test_metadata"))

    def uses_test_macro(self, macro: str) -> bool:
        """int_all_graph_resources: macro_dependencies like '%macro.<package>.<test macro>%'."""
        macros = json.dumps((self.raw.get("depends_on") or {}).get("macros", []))
        return self.resource_type == "test" and like(macros, f"%macro.{macro}%")


class Project:
    """The graph the package builds: resources, their direct parents (tests aside), tests' models."""

    def __init__(self, manifest: dict[str, Any]) -> None:
        self.resources: dict[str, Resource] = {}
        for section in ("nodes", "sources", "exposures", "metrics"):
            for unique_id, raw in manifest.get(section, {}).items():
                enabled = (raw.get("config") or {}).get("enabled", True)
                if raw.get("package_name") == "dbt_project_evaluator" or enabled is False:
                    continue
                name = raw["name"]
                if raw["resource_type"] == "source":
                    name = f"{raw['source_name']}.{name}"
                elif raw.get("version") not in (None, ""):
                    name = f"{name}.v{raw['version']}"
                self.resources[unique_id] = Resource(
                    unique_id, name, raw["resource_type"], raw.get("original_file_path", ""), raw
                )
        # int_direct_relationships: only models, snapshots, tests, exposures and metrics have parents;
        # int_all_dag_relationships leaves tests out, and a parent outside the resources never joins.
        self.parents: dict[str, list[str]] = {}
        self.children: dict[str, list[str]] = defaultdict(list)
        for unique_id, resource in self.resources.items():
            if resource.resource_type not in ("model", "snapshot", "exposure", "metric"):
                self.parents[unique_id] = []
                continue
            parents = [p for p in self.depends_on(resource) if p in self.resources]
            self.parents[unique_id] = [p for p in parents if self.resources[p].resource_type != "test"]
            for parent in self.parents[unique_id]:
                self.children[parent].append(unique_id)

    @staticmethod
    def depends_on(resource: Resource) -> list[str]:
        return list(dict.fromkeys((resource.raw.get("depends_on") or {}).get("nodes", [])))

    def of_type(self, *resource_types: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.resource_type in resource_types]

    def get(self, unique_id: str) -> Resource:
        return self.resources[unique_id]

    def direct_parents(self, resource: Resource) -> list[Resource]:
        return [self.resources[p] for p in self.parents[resource.unique_id]]

    def node_children(self, resource: Resource) -> list[Resource]:
        """Direct children where the package filters child_is_excluded = false: no exposures/metrics."""
        children = (self.resources[c] for c in self.children.get(resource.unique_id, []))
        return [c for c in children if c.is_excluded is False]

    def ancestors(self, resource: Resource) -> list[Resource]:
        seen: dict[str, Resource] = {}
        stack = list(self.parents[resource.unique_id])
        while stack:
            unique_id = stack.pop()
            if unique_id not in seen:
                seen[unique_id] = self.resources[unique_id]
                stack.extend(self.parents[unique_id])
        return list(seen.values())

    def primary_test_parent(self, test: Resource) -> Resource | None:
        """get_relationship_values: the attached node, else (singular tests) the last parent."""
        parents = self.depends_on(test)
        attached = test.raw.get("attached_node")
        primary = (
            (attached if attached in parents else None) if attached else (parents[-1] if parents else None)
        )
        return self.resources.get(primary) if primary else None

    def test_summary(self) -> dict[str, tuple[bool, int]]:
        """int_model_test_summary: unique_id -> (is_primary_key_tested, number_of_tests_on_model)."""
        groups: dict[tuple[str, str | None], list[Resource]] = defaultdict(list)
        for test in self.of_type("test"):
            parent = self.primary_test_parent(test)
            if parent is not None:
                groups[(parent.unique_id, test.raw.get("column_name") or None)].append(test)
        tested: dict[str, bool] = defaultdict(bool)
        counts: dict[str, int] = defaultdict(int)
        for (parent_id, column_name), tests in groups.items():
            counts[parent_id] += len(tests)
            methods = [
                sum(any(t.uses_test_macro(m) for m in test_set) for t in tests) >= len(test_set)
                for test_set in PRIMARY_KEY_TEST_MACROS
            ]
            unique_count = sum(t.uses_test_macro("dbt.test_unique") for t in tests)
            column = (self.resources[parent_id].raw.get("columns") or {}).get(column_name or "")
            mixed = column is not None and unique_count + has_not_null_constraint(column) >= 2
            tested[parent_id] |= any(methods) or mixed
        return {
            r.unique_id: (tested[r.unique_id], counts[r.unique_id])
            for r in self.of_type("model", "seed", "source", "snapshot")
        }


def has_not_null_constraint(column: dict[str, Any]) -> int:
    return int(any(c.get("type") == "not_null" for c in column.get("constraints") or []))


def hard_coded_references(resource: Resource) -> list[str]:
    if resource.resource_type != "model" or resource.raw.get("language") != "sql":
        return []
    sql = resource.raw.get("raw_sql") or resource.raw.get("raw_code") or ""
    sql = re.sub("(" + "|".join(COMMENT_CHARS) + ").*", "", sql)
    found = {
        "".join(match[1:]).strip()
        for pattern in HARD_CODED_REFERENCE_PATTERNS
        for match in pattern.findall(sql)
    }
    return sorted(found)


# -- rules ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    resource: str
    detail: str


@dataclass(frozen=True)
class Rule:
    name: str
    category: str
    hint: str
    check: Callable[[Project], list[Violation]]


RULES: dict[str, Rule] = {}


Check = Callable[[Project], Iterable[Violation]]


def rule(name: str, category: str, hint: str) -> Callable[[Check], Check]:
    """Register a rule under the package's fact model name."""

    def register(check: Check) -> Check:
        RULES[name] = Rule(name, category, hint, lambda project: sorted(set(check(project)), key=_order))
        return check

    return register


def _order(violation: Violation) -> tuple[str, str]:
    return violation.resource, violation.detail


def _names(resources: Iterable[Resource]) -> str:
    return ", ".join(sorted({r.name for r in resources}))


@rule("fct_direct_join_to_source", "modeling", "read the source through its staging model only")
def direct_join_to_source(project: Project) -> Iterable[Violation]:
    for child in project.of_type("model"):
        parents = project.direct_parents(child)
        sources = [p for p in parents if p.resource_type == "source"]
        models = [p for p in parents if p.resource_type == "model"]
        if sources and models:
            yield Violation(child.name, f"joins source(s) {_names(sources)} with model(s) {_names(models)}")


@rule(
    "fct_marts_or_intermediate_dependent_on_source",
    "modeling",
    "add/ref the staging model of that source instead of source()",
)
def marts_or_intermediate_dependent_on_source(project: Project) -> Iterable[Violation]:
    for child in project.resources.values():
        if child.is_excluded is False and child.model_type in ("marts", "intermediate"):
            sources = [p for p in project.direct_parents(child) if p.resource_type == "source"]
            if sources:
                yield Violation(child.name, f"{child.model_type} model reads source(s) {_names(sources)}")


@rule("fct_duplicate_sources", "modeling", "keep one source definition per warehouse relation")
def duplicate_sources(project: Project) -> Iterable[Violation]:
    locations: dict[str, list[Resource]] = defaultdict(list)
    for source in project.of_type("source"):
        raw = source.raw
        parts = [raw.get("schema"), raw.get("identifier")]
        if raw.get("database") is not None:
            parts.insert(0, raw["database"])
        locations[".".join(str(p) for p in parts)].append(source)
    for location, sources in locations.items():
        if len(sources) > 1:
            yield Violation(location, f"declared by several sources: {_names(sources)}")


@rule("fct_hard_coded_references", "modeling", "use ref() for models and source() for raw tables")
def hard_coded_references_rule(project: Project) -> Iterable[Violation]:
    for model in project.of_type("model"):
        references = hard_coded_references(model)
        if references:
            yield Violation(model.name, f"hard coded reference(s): {', '.join(references)}")


@rule(
    "fct_model_fanout",
    "modeling",
    f"{MODELS_FANOUT_THRESHOLD}+ leaf children: move shared logic upstream or to the BI layer",
)
def model_fanout(project: Project) -> Iterable[Violation]:
    for parent in project.resources.values():
        if parent.is_excluded is not False:
            continue
        leaves = [
            c
            for c in project.node_children(parent)
            if c.resource_type == "model" and not project.node_children(c)
        ]
        if len({c.name for c in leaves}) >= MODELS_FANOUT_THRESHOLD:
            yield Violation(parent.name, f"leaf children: {_names(leaves)}")


@rule("fct_multiple_sources_joined", "modeling", "one staging model per source table, joined downstream")
def multiple_sources_joined(project: Project) -> Iterable[Violation]:
    for child in project.resources.values():
        if child.is_excluded is False:
            sources = {p.name for p in project.direct_parents(child) if p.resource_type == "source"}
            if len(sources) > 1:
                yield Violation(child.name, f"reads sources {', '.join(sorted(sources))}")


@rule(
    "fct_rejoining_of_upstream_concepts",
    "modeling",
    "fold the in-between model into its only child as a CTE",
)
def rejoining_of_upstream_concepts(project: Project) -> Iterable[Violation]:
    for between in project.resources.values():
        children = project.node_children(between)
        if between.is_excluded is not False or len(children) != 1:
            continue
        child = children[0]
        for parent in project.direct_parents(between):
            if parent.unique_id in project.parents[child.unique_id]:
                yield Violation(
                    between.name,
                    f"{parent.name} -> {between.name} -> {child.name}, and {parent.name} -> {child.name} "
                    f"directly; {between.name} has no other child",
                )


@rule("fct_root_models", "modeling", "select through ref()/source() so the model has lineage")
def root_models(project: Project) -> Iterable[Violation]:
    for model in project.of_type("model"):
        if not model.is_time_spine and not project.parents[model.unique_id]:
            yield Violation(model.name, "has no parent (no ref() or source())")


@rule("fct_source_fanout", "modeling", "let one staging model read the source; others ref it")
def source_fanout(project: Project) -> Iterable[Violation]:
    for source in project.of_type("source"):
        models = [c for c in project.node_children(source) if c.resource_type == "model"]
        if len(models) > 1:
            yield Violation(source.name, f"read directly by models {_names(models)}")


@rule(
    "fct_staging_dependent_on_marts_or_intermediate",
    "modeling",
    "staging reads sources only: rename the model or point it at a source()",
)
def staging_dependent_on_marts_or_intermediate(project: Project) -> Iterable[Violation]:
    for child in project.of_type("model"):
        if child.model_type == "staging":
            parents = [
                p
                for p in project.direct_parents(child)
                if p.resource_type == "model" and p.model_type in ("marts", "intermediate")
            ]
            if parents:
                yield Violation(child.name, f"staging model refs {_names(parents)}")


@rule(
    "fct_staging_dependent_on_staging",
    "modeling",
    "make the child an intermediate model (int_, intermediate/) or read the source",
)
def staging_dependent_on_staging(project: Project) -> Iterable[Violation]:
    for child in project.of_type("model", "snapshot"):
        if child.model_type == "staging":
            parents = [
                p
                for p in project.direct_parents(child)
                if p.resource_type in ("model", "snapshot") and p.model_type == "staging"
            ]
            if parents:
                yield Violation(child.name, f"staging model refs staging {_names(parents)}")


@rule("fct_unused_sources", "modeling", "remove the unused table from its sources .yml")
def unused_sources(project: Project) -> Iterable[Violation]:
    for source in project.of_type("source"):
        if not project.node_children(source):
            yield Violation(source.name, "no model or snapshot selects from it")


@rule(
    "fct_too_many_joins",
    "modeling",
    f"{TOO_MANY_JOINS_THRESHOLD}+ direct parents: split the joins into intermediate models",
)
def too_many_joins(project: Project) -> Iterable[Violation]:
    for model in project.of_type("model"):
        parents = {p.name for p in project.direct_parents(model)}
        if len(parents) >= TOO_MANY_JOINS_THRESHOLD:
            yield Violation(model.name, f"{len(parents)} direct parents: {', '.join(sorted(parents))}")


@rule(
    "fct_missing_primary_key_tests",
    "testing",
    "test the grain: unique + not_null on one column, or unique_combination on the key columns",
)
def missing_primary_key_tests(project: Project) -> Iterable[Violation]:
    unique_columns: dict[str, set[str]] = defaultdict(set)
    for test in project.of_type("test"):
        parent = project.primary_test_parent(test)
        if parent is not None and test.uses_test_macro("dbt.test_unique"):
            unique_columns[parent.unique_id].add(test.raw.get("column_name") or "?")
    for unique_id, (is_tested, count) in project.test_summary().items():
        resource = project.get(unique_id)
        if resource.resource_type in ENFORCED_PRIMARY_KEY_NODE_TYPES and not is_tested:
            unique = sorted(unique_columns[unique_id])
            partial = f"; unique on {', '.join(unique)} lacks not_null" if unique else ""
            yield Violation(resource.name, f"no primary key test ({count} test(s) on it{partial})")


@rule("fct_test_coverage", "testing", "add at least one data test to the model")
def untested_models(project: Project) -> Iterable[Violation]:
    summary = {u: s for u, s in project.test_summary().items() if project.get(u).resource_type == "model"}
    untested = [project.get(u) for u, (_, count) in summary.items() if count == 0]
    coverage = round(100.0 * (len(summary) - len(untested)) / len(summary), 2) if summary else 100.0
    if coverage < TEST_COVERAGE_TARGET:
        for model in untested:
            yield Violation(
                model.name, f"untested ({coverage}% of models tested, target {TEST_COVERAGE_TARGET}%)"
            )


@rule(
    "fct_sources_without_freshness",
    "testing",
    "give the source (or table) a freshness warn_after/error_after",
)
def sources_without_freshness(project: Project) -> Iterable[Violation]:
    def has_freshness(freshness: dict[str, Any] | None) -> bool:
        return freshness is not None and any(
            (freshness.get(key) or {}).get("count") for key in ("warn_after", "error_after")
        )

    for source in project.of_type("source"):
        config = source.raw.get("config") or {}
        if not (has_freshness(config.get("freshness")) or has_freshness(source.raw.get("freshness"))):
            yield Violation(source.name, "no freshness threshold")


@rule("fct_undocumented_models", "documentation", "add a model-level description in its .yml")
def undocumented_models(project: Project) -> Iterable[Violation]:
    for model in project.of_type("model"):
        if not model.is_described:
            yield Violation(model.name, f"{model.model_type} model has no description")


@rule("fct_documentation_coverage", "documentation", "add a model-level description in its .yml")
def documentation_coverage(project: Project) -> Iterable[Violation]:
    models = project.of_type("model")
    undocumented = [m for m in models if not m.is_described]
    coverage = round(100.0 * (len(models) - len(undocumented)) / len(models), 2) if models else 100.0
    if coverage < DOCUMENTATION_COVERAGE_TARGET:
        for model in undocumented:
            yield Violation(
                model.name, f"undocumented ({coverage}% documented, target {DOCUMENTATION_COVERAGE_TARGET}%)"
            )


@rule("fct_undocumented_sources", "documentation", "add a description to the source in its sources .yml")
def undocumented_sources(project: Project) -> Iterable[Violation]:
    for source in project.of_type("source"):
        if not source.raw.get("source_description"):
            yield Violation(source.source_name or source.name, "source has no description")


@rule("fct_undocumented_source_tables", "documentation", "add a description to the table in its sources .yml")
def undocumented_source_tables(project: Project) -> Iterable[Violation]:
    for source in project.of_type("source"):
        if not source.is_described:
            yield Violation(source.name, "source table has no description")


@rule("fct_model_naming_conventions", "structure", "rename the model with its type's prefix")
def model_naming_conventions(project: Project) -> Iterable[Violation]:
    for model in project.of_type("model"):
        model_type = model.model_type or "other"
        if not model.is_time_spine and model.prefix not in PREFIXES.get(model_type, ()):
            expected = "/".join(PREFIXES.get(model_type, ())) or "none configured"
            yield Violation(
                model.name, f"prefix {model.prefix} on a {model_type} model (expected {expected})"
            )


@rule("fct_model_directories", "structure", "move the file as suggested")
def model_directories(project: Project) -> Iterable[Violation]:
    staging = FOLDER_NAMES["staging"]
    for model in project.of_type("model"):
        if model.model_type != "staging":
            continue
        for source in project.ancestors(model):
            if source.resource_type == "source" and not like(model.directory_path, f"%{source.source_name}%"):
                yield Violation(
                    model.name,
                    f"staging model of source {source.source_name} in {model.directory_path}: move to "
                    f"models/{staging}/{source.source_name}/{model.file_name}",
                )
    for resource in project.resources.values():
        model_type, folder_type = resource.model_type, resource.model_type_folder
        if resource.is_excluded is False and model_type and folder_type and model_type != folder_type:
            folder = FOLDER_NAMES.get(model_type)
            target = f"models/.../{folder}/.../{resource.file_name}" if folder else "a folder of its type"
            yield Violation(
                resource.name,
                f"{model_type} model nested closest to a {folder_type} folder ({resource.directory_path}): "
                f"move to {target}",
            )


@rule("fct_source_directories", "structure", "define the source in a .yml under models/staging/<source>/")
def source_directories(project: Project) -> Iterable[Violation]:
    staging = FOLDER_NAMES["staging"]
    for source in project.of_type("source"):
        if not like(source.directory_path, f"%{source.source_name}%"):
            yield Violation(
                source.name,
                f"defined in {source.file_path}: "
                f"move to models/{staging}/{source.source_name}/{source.file_name}",
            )


@rule("fct_test_directories", "structure", "declare a model's tests in a .yml beside the model")
def misplaced_tests(project: Project) -> Iterable[Violation]:
    misplaced: dict[tuple[str, str, str], int] = defaultdict(int)
    for test in project.of_type("test"):
        model = project.primary_test_parent(test)
        is_model_test = test.is_generic_test and model is not None and model.resource_type == "model"
        if is_model_test and model.directory_path != test.directory_path:
            misplaced[(model.name, test.directory_path, model.directory_path)] += 1
    for (model, test_directory, model_directory), count in misplaced.items():
        yield Violation(model, f"{count} test(s) declared in {test_directory}, model in {model_directory}")


@rule(
    "fct_chained_views_dependencies",
    "performance",
    "materialize a model of the chain as table/incremental",
)
def chained_views_dependencies(project: Project) -> Iterable[Violation]:
    chains: dict[str, list[str]] = {}

    def chain(resource: Resource) -> list[str]:
        """The longest run of views/ephemerals ending at resource (inclusive), upstream first."""
        if resource.unique_id not in chains:
            chains[resource.unique_id] = []
            if resource.materialized in NOT_PHYSICAL:
                longest = max((chain(p) for p in project.direct_parents(resource)), key=len, default=[])
                chains[resource.unique_id] = [*longest, resource.name]
        return chains[resource.unique_id]

    for model in project.of_type("model"):
        longest = max((chain(p) for p in project.direct_parents(model)), key=len, default=[])
        if len(longest) > CHAINED_VIEWS_THRESHOLD:
            yield Violation(
                model.name,
                f"depends on a chain of {len(longest)} views/ephemerals: {' -> '.join(longest)}",
            )


@rule(
    "fct_exposure_parents_materializations",
    "performance",
    "expose models materialized as table/incremental, never sources",
)
def exposure_parents_materializations(project: Project) -> Iterable[Violation]:
    exposed: dict[Resource, list[Resource]] = defaultdict(list)
    for exposure in project.of_type("exposure"):
        for parent in project.direct_parents(exposure):
            is_view = parent.resource_type == "model" and parent.materialized in NOT_PHYSICAL
            if is_view or parent.resource_type == "source":
                exposed[parent].append(exposure)
    for parent, exposures in exposed.items():
        what = parent.materialized if parent.resource_type == "model" else "source"
        yield Violation(parent.name, f"{what} behind exposure(s) {_names(exposures)}")


@rule("fct_public_models_without_contract", "governance", "enforce a contract on the public model")
def public_models_without_contract(project: Project) -> Iterable[Violation]:
    for resource in project.resources.values():
        if resource.is_excluded is False and resource.is_public and not resource.is_contract_enforced:
            yield Violation(resource.name, "public model without an enforced contract")


@rule(
    "fct_undocumented_public_models",
    "governance",
    "describe the public model and every one of its columns",
)
def undocumented_public_models(project: Project) -> Iterable[Violation]:
    for resource in project.resources.values():
        if resource.is_excluded is not False or not resource.is_public:
            continue
        columns = list((resource.raw.get("columns") or {}).values())
        described = sum(bool(c.get("description")) for c in columns)
        if not resource.is_described or described < len(columns) or not columns:
            yield Violation(
                resource.name,
                f"public model: description {'set' if resource.is_described else 'missing'}, "
                f"{described}/{len(columns)} columns described",
            )


@rule(
    "fct_exposures_dependent_on_private_models",
    "governance",
    "make the exposed model public (access: public)",
)
def exposures_dependent_on_private_models(project: Project) -> Iterable[Violation]:
    exposed: dict[Resource, list[Resource]] = defaultdict(list)
    for exposure in project.of_type("exposure"):
        for parent in project.direct_parents(exposure):
            if parent.is_excluded is False and not (parent.resource_type == "model" and parent.is_public):
                exposed[parent].append(exposure)
    for parent, exposures in exposed.items():
        access = parent.access or parent.resource_type
        yield Violation(parent.name, f"{access}, behind exposure(s) {_names(exposures)}")


# -- fixtures and tests --------------------------------------------------------------------------


@dataclass(frozen=True)
class Waiver:
    rule: str
    resource: str
    reason: str


def load_waivers() -> list[Waiver]:
    entries = yaml.safe_load(WAIVERS_FILE.read_text()) or []
    assert isinstance(entries, list), f"{WAIVERS_FILE.name}: a YAML list of {{rule, resource, reason}}"
    waivers = []
    for entry in entries:
        assert isinstance(entry, dict) and set(entry) == {"rule", "resource", "reason"}, (
            f"{WAIVERS_FILE.name}: each waiver has exactly rule, resource and reason: {entry!r}"
        )
        waivers.append(Waiver(str(entry["rule"]), str(entry["resource"]), str(entry["reason"] or "").strip()))
    return waivers


@pytest.fixture(scope="session")
def dbt_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """One `dbt parse` of the project, into a scratch target (nothing written under dbt_project/)."""
    scratch = tmp_path_factory.mktemp("dbt_evaluator")
    env = {
        **os.environ,
        "ENTITLEMENTS_WAREHOUSE": str(scratch / "wh.duckdb"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    command = [
        str(DBT),
        "parse",
        "--project-dir",
        str(DBT_PROJECT),
        "--profiles-dir",
        str(DBT_PROJECT),
        "--target-path",
        str(scratch / "target"),
        "--log-path",
        str(scratch / "logs"),
        "--no-partial-parse",
    ]
    parsed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert parsed.returncode == 0, f"dbt parse failed:\n{parsed.stdout}\n{parsed.stderr}"
    return Project(json.loads((scratch / "target" / "manifest.json").read_text()))


def test_waivers_file_is_well_formed() -> None:
    waivers = load_waivers()
    for waiver in waivers:
        assert waiver.rule in RULES, (
            f"waiver for unknown rule {waiver.rule!r} (known: {', '.join(sorted(RULES))})"
        )
        assert waiver.resource, f"waiver of {waiver.rule} names no resource"
        assert waiver.reason, f"waiver of {waiver.rule} for {waiver.resource} gives no reason"
    keys = [(w.rule, w.resource) for w in waivers]
    assert len(keys) == len(set(keys)), "a rule/resource pair is waived twice"


@pytest.mark.parametrize("rule_name", sorted(RULES))
def test_dbt_project_evaluator_rule(rule_name: str, dbt_project: Project) -> None:
    evaluated = RULES[rule_name]
    waived = {w.resource: w for w in load_waivers() if w.rule == rule_name}
    violations = evaluated.check(dbt_project)
    open_violations = [v for v in violations if v.resource not in waived]
    stale = sorted(set(waived) - {v.resource for v in violations})
    lines = [f"{v.resource} [{rule_name}] {v.detail}; fix: {evaluated.hint}" for v in open_violations]
    stale_note = f"waived in {WAIVERS_FILE.name} but matches no violation: drop the waiver"
    lines += [f"{r} [{rule_name}] {stale_note}" for r in stale]
    if lines:
        pytest.fail(
            f"dbt-project-evaluator {evaluated.category} rule {rule_name}: "
            f"{len(open_violations)} violation(s), {len(stale)} stale waiver(s) "
            f"(waive with a reason in dbt_project/{WAIVERS_FILE.name})\n"
            + "\n".join(f"  - {line}" for line in lines),
            pytrace=False,
        )
