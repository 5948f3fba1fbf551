"""Which CRM account a customer id names, for every command that takes one (check, check-batch,
statement, as-of): the account's own id; a billing or metering id that resolves to it
(marts.dim_customer_identities); or the 15-character form of a Salesforce account id.
"""

from __future__ import annotations

import duckdb

# Every other id of an account and the account it names. The 15-character form is checked with the
# ingest's sf_id18 macro (registered on the connection's temp catalog by _with_macros).
ALIASES = """
    select source_id, customer_id from marts.dim_customer_identities
    where customer_id is not null and source_id <> customer_id
    union
    select left(customer_id, 15), customer_id from marts.dim_customers
    where length(customer_id) = 18 and sf_id18(left(customer_id, 15)) = customer_id
"""


def _with_macros(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    from entitlements.ingest.adapters.salesforce import MACROS  # only when an id is not an account's

    for statement in MACROS:
        con.execute(statement)
    return con


def account_aliases(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Every other id of an account -> the account id."""
    return dict(_with_macros(con).execute(ALIASES).fetchall())


def resolve_account(con: duckdb.DuckDBPyConnection, customer_id: str) -> str | None:
    """The account id customer_id names (itself when it is one), None when it names no account."""
    if con.execute("select 1 from marts.dim_customers where customer_id = ?", [customer_id]).fetchall():
        return customer_id
    found = (
        _with_macros(con)
        .execute(f"select customer_id from ({ALIASES}) as aliases where source_id = ?", [customer_id])
        .fetchall()
    )
    return found[0][0] if found else None


def full_record_id(
    con: duckdb.DuckDBPyConnection, table: str, column: str, record_id: str | None
) -> str | None:
    """An asset or site id as the marts hold it: a 15-character Salesforce id copied from the user
    interface names the record whose 18-character id it starts (marts.<table>.<column>); any other
    id is returned as given."""
    if record_id is None or len(record_id) != 15:
        return record_id
    found = (
        _with_macros(con)
        .execute(f"select {column} from marts.{table} where {column} = sf_id18(?)", [record_id])
        .fetchall()
    )
    return found[0][0] if found else record_id
