"""Entitlement analytics: exports to checked marts."""

import sys

# jsonschema (which dbt and Great Expectations import) imports rfc3987_syntax whenever it is
# installed (Jupyter's jupyter-events brings it), and that builds a grammar at import: about 1 s of
# every command's and every dbt process's start. It only checks the JSON Schema "iri" formats,
# which nothing here validates; a None entry makes the import fail, and jsonschema goes without.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[assignment]
