"""The legacy contract system's extract files, for `entitlements migrate` (docs/migration.md).

Delimited text files (the demo's are pipe-delimited) with upper-case headers, landed as the text
they hold in the legacy_* raw tables (entitlements/ingest/layouts.py). A file is recognised by its name and by
having every column of its layout: the legacy format is fixed, so a missing column is a damaged
extract, refused with the column named. Read only with ``--format legacy``, which
`entitlements migrate validate` passes.
"""

from __future__ import annotations

from entitlements.ingest._sql import quote_ident
from entitlements.ingest.layouts import LEGACY_LAYOUTS, Layout
from entitlements.ingest.shapes import Shape

FILE_NAMES = {
    "legacy_customers": "CUSTMAST",
    "legacy_contracts": "CONTRACTS",
    "legacy_crosswalk": "XREF",
    "legacy_product_map": "PRODMAP",
    "legacy_control_totals": "CONTROL",
}


def _shape(layout: Layout) -> Shape:
    name = FILE_NAMES[layout.table]
    headers = {c.name: c.name.upper() for c in layout.columns}
    return Shape(
        name=f"legacy.{name}",
        family="legacy",
        layout=layout,
        names=(f"{name}*",),
        formats=("csv",),
        signature=tuple(headers.values()),
        fields=dict.fromkeys(headers.values(), "VARCHAR"),
        columns={column: quote_ident(header) for column, header in headers.items()},
        description=f"the legacy system's {name} extract file",
    )


SHAPES: tuple[Shape, ...] = tuple(_shape(layout) for layout in LEGACY_LAYOUTS)
