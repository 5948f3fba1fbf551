"""Landing source-system exports in the DuckDB warehouse (schema raw)."""
