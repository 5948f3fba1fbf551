"""The run summary printed after `entitlements run`: read from the marts, per currency."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from entitlements.warehouse import connect

SECTIONS = {
    "Revenue leakage by category": """
        select category, currency, count(*) as leaks, sum(amount) as amount
        from marts.fct_revenue_leakage group by category, currency order by category, currency
    """,
    "Renewal pipeline by window": """
        select renewal_window, currency, count(*) as contracts, sum(annual_value) as annual_value
        from marts.fct_renewal_pipeline group by renewal_window, currency
        order by case renewal_window when '0-30' then 1 when '31-60' then 2 when '61-90' then 3
                 when '90+' then 4 when 'renewed' then 5 else 6 end, currency
    """,
    "Limit breaches by threshold": """
        select threshold_crossed, count(*) as periods, count(distinct customer_id) as customers,
               sum(overage_quantity) as overage_quantity
        from marts.fct_limit_breaches group by threshold_crossed order by threshold_crossed
    """,
}


def summary_tables(warehouse: Path) -> dict[str, list[tuple]]:
    """Each section as rows, the first row holding the column names."""
    con = connect(warehouse, read_only=True)
    try:
        tables = {}
        for title, sql in SECTIONS.items():
            cursor = con.execute(sql)
            tables[title] = [tuple(d[0] for d in cursor.description), *cursor.fetchall()]
        return tables
    finally:
        con.close()


def print_summary(warehouse: Path, echo: Callable[[str], None] = print) -> None:
    for title, rows in summary_tables(warehouse).items():
        header, body = rows[0], rows[1:]
        echo(f"\n{title}")
        widths = [max(len(str(v)) for v in col) for col in zip(header, *body, strict=True)]
        for row in (header, *body):
            echo("  " + "  ".join(str(v).rjust(w) for v, w in zip(row, widths, strict=True)))
