"""The same dbt project on Apache Spark (issue 19, docs/engines.md): a small demo built on DuckDB and
on a local Spark (dbt-spark's session method) from the same landed export, their marts compared row
for row, and the Spark-built marts held to the demo's ground truth.

Tier `spark` (and e2e: it starts a JVM and builds the whole project, a few minutes on two cores):
`pytest -m spark`. Skipped when the `spark` extra (`pip install -e '.[spark]'`) or Java is missing.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from entitlements.demo import generate_demo
from entitlements.transform.spark import mart_folder, spark_dir
from tests.conftest import entitlements, query_rows, read_csv
from tests.test_migration import assert_faults_explained, assert_faults_reported
from tests.test_pipeline import assert_matches_ground_truth

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.xdist_group("spark")]

# The marts the issue names: leakage, renewals and limits.
COMPARED = (
    "fct_revenue_leakage",
    "fct_leakage_kpis",
    "fct_renewal_pipeline",
    "fct_renewal_alerts",
    "fct_allowance_periods",
    "fct_limit_breaches",
    "fct_upsell_candidates",
    "fct_underused_entitlements",
)


@dataclass(frozen=True)
class Engines:
    exports: Path
    duckdb: Path  # built by DuckDB
    spark: Path  # the same landed export, built by Spark (its marts: views over Spark's Parquet)


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Engines:
    pytest.importorskip("pyspark")
    pytest.importorskip("dbt.adapters.spark")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java (17)")
    root = tmp_path_factory.mktemp("spark")
    exports, on_duckdb, on_spark = (
        root / "exports",
        root / "duck" / "warehouse.duckdb",
        root / "spark" / "w.duckdb",
    )
    summary = generate_demo(exports, seed=42, customers=20, usage_events=2000)
    as_of = summary.as_of.isoformat()
    landed = entitlements("ingest", exports, "--warehouse", on_duckdb)
    assert landed.returncode == 0, landed.stdout + landed.stderr
    on_spark.parent.mkdir()
    shutil.copy(on_duckdb, on_spark)  # one landing: the same load ids in both
    for warehouse, engine in ((on_duckdb, "duckdb"), (on_spark, "spark")):
        built = entitlements("build", "--warehouse", warehouse, "--as-of", as_of, "--engine", engine)
        assert built.returncode == 0, f"{engine}: {built.stdout[-6000:]}{built.stderr[-6000:]}"
    return Engines(exports, on_duckdb, on_spark)


def sort_key(row: tuple) -> tuple:
    """Rows in a total order: None last, equal decimals alike whatever their scale."""
    return tuple(
        (value is None, repr(value.normalize()) if isinstance(value, Decimal) else repr(value))
        for value in row
    )


def rows(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[list[str], list[tuple]]:
    cursor = con.execute(f"select * from {relation}")
    return [d[0] for d in cursor.description], sorted(cursor.fetchall(), key=sort_key)


@pytest.mark.parametrize("mart", COMPARED)
def test_spark_builds_the_same_mart_as_duckdb(engines: Engines, mart: str) -> None:
    """Read through DuckDB: the Parquet files Spark wrote against the DuckDB warehouse's table.
    Exact: decimals as decimals (no tolerance), dates, timestamps, nulls."""
    files = mart_folder(spark_dir(engines.spark), "marts", mart) / "*.parquet"
    con = duckdb.connect(str(engines.duckdb), read_only=True)
    try:
        duck_columns, duck_rows = rows(con, f"marts.{mart}")
        spark_columns, spark_rows = rows(con, f"read_parquet('{files}')")
    finally:
        con.close()
    assert spark_columns == duck_columns
    assert duck_rows, f"{mart} is empty on the small demo: nothing compared"
    only_duckdb = [row for row in duck_rows if row not in spark_rows]
    only_spark = [row for row in spark_rows if row not in duck_rows]
    assert (only_duckdb[:5], only_spark[:5]) == ([], [])
    assert spark_rows == duck_rows  # and as many of each


def test_the_spark_built_marts_find_every_planted_leak_to_the_cent(engines: Engines) -> None:
    """The demo's ground truth (test_pipeline's check) on the warehouse whose marts Spark built."""
    assert_matches_ground_truth(engines.exports, engines.spark)


def test_the_duckdb_build_of_the_small_demo_holds_its_ground_truth(engines: Engines) -> None:
    assert_matches_ground_truth(engines.exports, engines.duckdb)


def test_the_warehouse_reads_the_marts_spark_wrote(engines: Engines) -> None:
    """After a Spark build the warehouse's marts are views over Spark's Parquet (the readers, reports
    and `check` included, read them unchanged)."""
    con = duckdb.connect(str(engines.spark), read_only=True)
    try:
        kinds = dict(
            con.execute(
                "select table_name, table_type from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        )
        definition = con.execute(
            "select sql from duckdb_views() where schema_name = 'marts' and view_name = 'fct_revenue_leakage'"
        ).fetchall()
    finally:
        con.close()
    assert set(COMPARED) <= set(kinds)
    assert {kinds[mart] for mart in COMPARED} == {"VIEW"}
    assert "read_parquet" in definition[0][0]


def test_check_answers_alike_from_spark_built_marts(engines: Engines) -> None:
    """`entitlements check` (the analyses compiled for DuckDB, over the Spark-built tables) answers
    as it does on the DuckDB build."""
    con = duckdb.connect(str(engines.duckdb), read_only=True)
    try:
        requests = con.execute(
            "select distinct customer_id, entitlement_code from marts.fct_active_entitlements"
            " order by all limit 3"
        ).fetchall()
    finally:
        con.close()
    assert requests
    for customer, code in requests:
        answers = [
            entitlements("check", "--customer", customer, "--entitlement", code, "--warehouse", warehouse)
            for warehouse in (engines.duckdb, engines.spark)
        ]
        assert answers[0].returncode in (0, 1), answers[0].stdout + answers[0].stderr
        assert [(a.returncode, a.stdout) for a in answers[1:]] == [(answers[0].returncode, answers[0].stdout)]


def test_a_duckdb_build_after_a_spark_build_replaces_its_views(engines: Engines, tmp_path: Path) -> None:
    """Switching back: nothing else changed, yet the engine did, so DuckDB builds everything again
    over the views (and the seeds copied from Spark) a Spark build left, and finds the same leaks."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(engines.spark, copy)  # its views still read the fixture's Spark folder
    as_of = json.loads((engines.exports / "export.json").read_text())["as_of"]
    built = entitlements("build", "--warehouse", copy, "--as-of", as_of)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    assert "the engine" in built.stdout, built.stdout[-2000:]
    con = duckdb.connect(str(copy), read_only=True)
    try:
        kinds = con.execute(
            "select distinct table_type from information_schema.tables where table_schema = 'marts'"
        ).fetchall()
    finally:
        con.close()
    assert kinds == [("BASE TABLE",)]
    assert_matches_ground_truth(engines.exports, copy)


# --------------------------------------------------------------------------- the legacy migration

MIGRATION_MARTS = (
    "fct_migration_reconciliation",
    "fct_migration_differences",
    "fct_migration_parallel_run",
    "fct_migration_review_list",
)


@pytest.fixture(scope="module")
def migrated(engines: Engines) -> Engines:
    """`migrate validate` of the demo's legacy export on each engine: the whole migration, then the
    pilot phase (on Spark twice: validating a phase again must replace its partition, not add to it).
    The warehouses are the module's own, so this runs after the tests above read their marts."""
    legacy = engines.exports / "legacy"
    for warehouse, engine, phases in (
        (engines.duckdb, "duckdb", ("all", "pilot")),
        (engines.spark, "spark", ("all", "pilot", "pilot")),
    ):
        for phase in phases:
            args = ["--phase", phase] if phase != "all" else []
            run = entitlements(
                "migrate",
                "validate",
                legacy,
                "--warehouse",
                warehouse,
                "--engine",
                engine,
                "--no-report",
                *args,
            )
            assert run.returncode == 0, f"{engine} {phase}: {run.stdout[-6000:]}{run.stderr[-6000:]}"
            assert f"phase {phase}: " in run.stdout, run.stdout
    return engines


def migration_rows(warehouse: Path, mart: str) -> tuple[list[str], list[tuple]]:
    """A migration mart's rows but their run id (each engine's runs have their own), columns by name:
    Spark keeps the partition column (phase) last."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        names = sorted(
            name
            for (name,) in con.execute(
                "select column_name from information_schema.columns"
                " where table_schema = 'marts' and table_name = ?",
                [mart],
            ).fetchall()
            if name != "run_id"
        )
        return names, rows(con, f"(select {', '.join(names)} from marts.{mart})")[1]
    finally:
        con.close()


@pytest.mark.parametrize("mart", MIGRATION_MARTS)
def test_spark_builds_the_same_migration_marts_as_duckdb(migrated: Engines, mart: str) -> None:
    """Both phases validated (all, pilot), row for row; on Spark each phase is a partition."""
    duck_columns, duck_rows = migration_rows(migrated.duckdb, mart)
    spark_columns, spark_rows = migration_rows(migrated.spark, mart)
    assert spark_columns == duck_columns
    assert {row[duck_columns.index("phase")] for row in duck_rows} == {"all", "pilot"}, mart
    only_duckdb = [row for row in duck_rows if row not in spark_rows]
    only_spark = [row for row in spark_rows if row not in duck_rows]
    assert (only_duckdb[:5], only_spark[:5]) == ([], [])
    assert spark_rows == duck_rows
    phases = sorted(path.name for path in mart_folder(spark_dir(migrated.spark), "marts", mart).iterdir())
    assert phases == ["phase=all", "phase=pilot"]


def test_the_spark_built_migration_finds_every_planted_fault(migrated: Engines) -> None:
    """The migration's ground truth (test_migration's checks) on the marts Spark built."""
    truth = read_csv(migrated.exports / "ground_truth" / "migration_faults.csv")
    assert truth
    assert_faults_reported(migrated.spark, truth)
    assert_faults_explained(migrated.spark, truth)


def test_validating_a_phase_again_on_spark_replaces_its_rows(migrated: Engines) -> None:
    """The pilot was validated twice on Spark: its rows are the last run's only; the whole migration's
    rows are still those of its own run."""
    runs = query_rows(
        migrated.spark,
        "select phase, run_id from audit.migration_runs where status = 'ok' order by finished_at",
    )
    assert [r["phase"] for r in runs] == ["all", "pilot", "pilot"]
    for mart in MIGRATION_MARTS:
        written = query_rows(
            migrated.spark, f"select phase, run_id, count(*) as n from marts.{mart} group by all order by all"
        )
        expected = {("all", runs[0]["run_id"]), ("pilot", runs[2]["run_id"])}
        assert {(r["phase"], r["run_id"]) for r in written} == expected, mart


def test_a_migration_on_spark_needs_a_new_model_built_on_spark(engines: Engines, tmp_path: Path) -> None:
    """The migration's models compare with the new model in Spark's metastore: a warehouse DuckDB
    built is refused before anything is landed, saying which build to run."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(engines.duckdb, copy)
    before = copy.read_bytes()
    run = entitlements(
        "migrate",
        "validate",
        engines.exports / "legacy",
        "--warehouse",
        copy,
        "--engine",
        "spark",
        "--no-report",
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "built on DuckDB" in run.stderr and "--engine spark" in run.stderr, run.stderr
    assert copy.read_bytes() == before


def test_every_dbt_unit_test_passes_on_spark(migrated: Engines) -> None:
    """The dbt unit tests (fixed rows in, expected rows out) on Spark, as tests/test_dbt_unit_tests.py
    runs them on DuckDB: the models' logic is the same on both engines, not only on the demo's data.
    Last, once the migration's models exist on Spark too (a unit test reads its inputs' column
    types from their relations); one dbt run, one JVM, for all of them."""
    from entitlements.transform.dbt_runner import run_dbt_commands

    result = run_dbt_commands([["test", "--select", "test_type:unit"]], migrated.spark, target="spark")
    unit_tests = [r for r in result.results if r["unique_id"].startswith("unit_test.")]
    assert result.ok, "\n".join(result.error_lines(40))
    assert len(unit_tests) >= 48, f"only {len(unit_tests)} unit tests ran: is the selection right?"
    assert {r["status"] for r in unit_tests} == {"pass"}
