"""The dbt project's structure: sources declared from the layouts, no hub packages, telemetry off."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from entitlements.transform import dbt_runner
from entitlements.transform.dbt_sources import MODELS, sources_yaml
from entitlements.warehouse import DBT_PROJECT_DIR

pytestmark = pytest.mark.unit

# Intermediate models and marts live in one folder per area, each with one _<area>__models.yml
# holding its models' docs, columns, data tests and unit tests.
AREAS = {
    "intermediate": {"entitlements", "services", "usage", "billing", "leakage", "migration"},
    "marts": {"entitlements", "leakage", "limits", "renewals", "migration"},
}
LAYER_FILES = {"intermediate": set(), "marts": {"_marts__exposures.yml"}}


def test_source_declarations_match_the_export_layouts() -> None:
    for system in ("crm", "billing", "usage", "legacy"):
        committed = (MODELS / system / f"_{system}__sources.yml").read_text()
        assert committed == sources_yaml(system), (
            f"run python -m entitlements.transform.dbt_sources ({system} drifted)"
        )


def test_no_hub_packages_and_no_telemetry() -> None:
    assert not (DBT_PROJECT_DIR / "packages.yml").exists()
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    assert project["flags"]["send_anonymous_usage_stats"] is False


# Waivers of the primary-key rule, each with its reason.
_AS_LANDED = "the legacy export as it landed: repeated keys are kept for the migration's extract checks"
NO_PRIMARY_KEY = {
    "stg_usage__events": "one row per delivery: event ids repeat by design until de-duplicated",
    "stg_legacy__customers": _AS_LANDED,
    "stg_legacy__contract_segments": _AS_LANDED,
    "stg_legacy__crosswalk": _AS_LANDED,
    "stg_legacy__product_map": _AS_LANDED,
    "stg_legacy__control_totals": _AS_LANDED,
    "int_migration__legacy_segments": "every extracted row, judged: duplicate rows are what it counts",
    "int_migration__mapped_segments": "a lookup fan-out multiplies rows; the map step's check stops it",
}


def test_every_model_is_documented_with_a_primary_key_test() -> None:
    documented = {}
    # Any _<dir>__<topic>.yml may document models (staging: _crm__models.yml; an area: _leakage__models.yml).
    for path in (DBT_PROJECT_DIR / "models").rglob("_*__*.yml"):
        for model in yaml.safe_load(path.read_text()).get("models", []):
            documented[model["name"]] = model
    for sql in (DBT_PROJECT_DIR / "models").rglob("*.sql"):
        model = documented.get(sql.stem)
        assert model and model.get("description"), f"{sql.stem} is not documented"
        if sql.stem in NO_PRIMARY_KEY:
            continue
        tests = [t for c in model.get("columns", []) for t in c.get("data_tests", [])]
        tests += model.get("data_tests", [])
        names = {t if isinstance(t, str) else next(iter(t)) for t in tests}  # a name, or {name: its args}
        assert names & {"unique", "primary_key", "unique_combination"}, f"{sql.stem} has no primary-key test"


def test_models_live_in_their_area_folder_beside_one_yaml_file() -> None:
    for layer, areas in AREAS.items():
        root = DBT_PROJECT_DIR / "models" / layer
        assert not list(root.glob("*.sql")), f"{layer}: every model is in an area folder"
        assert {p.name for p in root.iterdir() if p.is_dir()} == areas
        assert {p.name for p in root.glob("*.yml")} == LAYER_FILES[layer]
        for area in areas:
            folder = root / area
            assert [p.name for p in folder.glob("*.yml")] == [f"_{area}__models.yml"], folder
            assert not [p for p in folder.iterdir() if p.is_dir()], f"{folder}: one level of areas"
            documented = yaml.safe_load((folder / f"_{area}__models.yml").read_text())
            models = {model["name"] for model in documented["models"]}
            assert models == {p.stem for p in folder.glob("*.sql")}, f"{folder}: documents its own models"
            tested = {test["model"] for test in documented.get("unit_tests", [])}
            assert tested <= models, f"{folder}: unit tests of other areas' models {sorted(tested - models)}"


@pytest.mark.integration
def test_dbt_and_the_cli_open_the_warehouse_with_one_memory_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limit a user sets reaches the CLI's connections (warehouse.connect) and dbt's (profiles.yml,
    given when the database opens: set per cursor, DuckDB refuses a temp directory it has spilled to)."""
    from entitlements.transform.dbt_runner import run_dbt
    from entitlements.warehouse import connect

    monkeypatch.setenv("ENTITLEMENTS_MEMORY_LIMIT", "300MB")
    warehouse = tmp_path / "w.duckdb"
    query = (
        "select current_setting('memory_limit') as memory_limit, current_setting('temp_directory') as temp"
    )
    con = connect(warehouse)
    try:
        assert con.execute(query).fetchall() == [("286.1 MiB", f"{warehouse}.tmp")]
    finally:
        con.close()
    shown = run_dbt("show", warehouse, None, "--inline", query, "--output", "json")
    assert shown.ok, shown.output[-3000:]
    assert '"memory_limit": "286.1 MiB"' in shown.output
    assert f'"temp": "{warehouse.name}.tmp"' in shown.output  # relative to the warehouse's folder


def test_the_dbt_log_rotates_past_its_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "logs" / "dbt.log"
    dbt_runner._append_log(log, "dbt build (exit 0)", "first\n")
    dbt_runner._append_log(log, "dbt compile (exit 1)", "second")
    first = log.read_text()
    assert first.count("=====") == 4 and first.endswith("dbt compile (exit 1) =====\nsecond\n")
    assert first.index("first") < first.index("second")
    monkeypatch.setattr(dbt_runner, "LOG_MAX_BYTES", len(first) - 1)
    dbt_runner._append_log(log, "dbt build (exit 0)", "third")
    assert log.with_name("dbt.log.1").read_text() == first
    assert log.read_text().endswith("dbt build (exit 0) =====\nthird\n") and "first" not in log.read_text()
