"""dbt-compiled queries stored in the warehouse, run with parameters.

`dbt_project/analyses/*.sql` are compiled by dbt with the same macros as the
marts; the build stores the compiled SQL in audit.compiled_queries, so a reader
holding only the warehouse file (`entitlements check`, `as-of`) runs exactly the
logic of a rebuild, binding its parameters ($as_of, $customer_id, ...) at run time.
"""

from __future__ import annotations

import re
from pathlib import Path

from entitlements import audit
from entitlements.warehouse import connect, duckdb  # DuckDB's engine module (see warehouse)


class MissingQueryError(LookupError):
    """The warehouse was built before this query existed: run `entitlements build` again."""


def store_compiled_queries(warehouse: Path, compiled_dir: Path) -> list[str]:
    """Save every compiled analysis under compiled_dir into audit.compiled_queries (replacing old ones)."""
    queries = {p.stem: p.read_text() for p in sorted(Path(compiled_dir).rglob("*.sql"))}
    con = connect(warehouse)
    try:
        audit.ensure(con, "compiled_queries")
        con.execute("begin transaction")
        for name, sql in queries.items():
            con.execute("delete from audit.compiled_queries where name = ?", [name])
            con.execute(
                "insert into audit.compiled_queries values (?, ?, current_timestamp::timestamp)", [name, sql]
            )
        con.execute("commit")
    finally:
        con.close()
    return list(queries)


def compiled_query(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """The compiled SQL of an analysis, with dbt's database qualifier removed.

    dbt qualifies relations with the database name DuckDB gives the file (its stem);
    dropping it lets the query run on a copy of the warehouse under another name.
    """
    try:  # one query, not a lookup of the table first: `entitlements check` pays every query
        rows = con.execute("select sql from audit.compiled_queries where name = ?", [name]).fetchall()
    except duckdb.CatalogException:  # a warehouse built before the analyses were stored
        rows = []
    if not rows:
        raise MissingQueryError(f"query {name!r} is not in this warehouse: run `entitlements build` again")
    return re.sub(r'"[^"]+"\.("(?:raw|staging|intermediate|marts|audit)"\.)', r"\1", rows[0][0])
