"""Active entitlements on any date, from the warehouse file alone, read-only.

Runs the dbt analysis `active_entitlements_on` (the `active_entitlements` macro the
mart fct_active_entitlements is built with, compiled at build time and stored in
audit.compiled_queries) with the date bound as a parameter: the rows are those a
rebuild with `--as-of` that date would put in the mart.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from entitlements.serve.queries import compiled_query
from entitlements.warehouse import connect_marts


def active_entitlements(warehouse: Path, on: date) -> pd.DataFrame:
    """fct_active_entitlements as of `on`: same columns and dtypes, ordered by entitlement_id."""
    con = connect_marts(warehouse)
    try:
        sql = compiled_query(con, "active_entitlements_on")
        return con.execute(
            f"select * from ({sql}) as active_entitlements order by entitlement_id", {"as_of": on}
        ).df()
    finally:
        con.close()
