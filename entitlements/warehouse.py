"""Where things live, and the one way to open the warehouse."""

from __future__ import annotations

from pathlib import Path

import duckdb

# The package is installed editable from the repository, so the dbt project and
# the GX context are found beside it.
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
GX_DIR = PROJECT_ROOT / "expectations" / "gx"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
DEFAULT_WAREHOUSE = Path("data/warehouse.duckdb")
DEFAULT_REPORTS = Path("data/reports")

SCHEMAS = ("raw", "staging", "intermediate", "marts", "audit")


def connect(path: Path | str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file. Readers use read_only=True so they never block or alter a build."""
    path = Path(path)
    if read_only and not path.exists():
        raise FileNotFoundError(f"warehouse {path} does not exist: run `entitlements run` or `ingest` first")
    path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path), read_only=read_only)


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )
