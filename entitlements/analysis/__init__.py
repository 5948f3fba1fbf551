"""Helpers of the notebooks and reports, one module per report; notebooks stay thin and call them.

common     the read-only open, queries, parameters, tables (shown and written as CSV), offline plotly
leakage    notebooks/leakage_explorer.py      where revenue leaks (analysts)
renewals   notebooks/renewals.py              what renews when, and the value at risk (finance)
usage      notebooks/usage_and_limits.py      thresholds crossed, utilisation, underuse (analysts)
migration  notebooks/migration_validation.py  did the legacy contracts arrive intact (migration teams)
"""
