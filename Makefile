# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export GX_ANALYTICS_ENABLED := false
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: venv demo test test-fast test-spark lint bench lab clean browser

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	$(BIN)/python -m ipykernel install --sys-prefix --name entitlements --display-name "entitlements (.venv)" >/dev/null
	touch $(STAMP)

# Headless Chromium for the report tests (Debian package; needs root or sudo).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

demo: venv
	$(BIN)/entitlements demo --out data/exports
	$(BIN)/entitlements run data/exports --warehouse data/warehouse.duckdb
	$(BIN)/entitlements migrate validate data/exports/legacy --warehouse data/warehouse.duckdb
	$(BIN)/entitlements docs --warehouse data/warehouse.duckdb

# Three workers on this 2-core machine: a test often waits on a child process (dbt, a kernel, a
# killed run), and two workers left the CPU 17 % idle. Tests sharing an expensive session fixture
# carry an xdist_group so one worker builds it; the demo warehouse is built once for all of them
# (tests/conftest.py).
PYTEST := $(BIN)/python -m pytest -n 3 --dist loadgroup --durations=20

test: venv browser
	$(PYTEST)

# Unit and integration tiers only: no full runs of their own, no browser.
test-fast: venv
	$(PYTEST) -m "not e2e"

# The Spark tier alone (docs/engines.md): a small demo built on DuckDB and on a local Spark (the
# spark extra, which .venv has, and Java 17), a few minutes. `make test` runs it with the rest.
test-spark: venv
	$(PYTEST) -m spark

# sqlfluff's dbt templater compiles the project, which opens a warehouse: use a scratch one.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	ENTITLEMENTS_WAREHOUSE=$(CURDIR)/$(VENV)/sqlfluff.duckdb $(BIN)/sqlfluff lint dbt_project/models

# Scales tiny, 1M, 10M side by side (data/reports/bench.csv, bench.html), each run three times
# (medians: this machine is noisy); more with BENCH_ARGS, e.g. make bench BENCH_ARGS="--huge
# --repeat 1" (adds 100M, its export cached in data/bench/; one run each, 8 minutes a full run).
bench: venv
	$(BIN)/python -m entitlements.bench --repeat 3 $(BENCH_ARGS)

# JupyterLab on notebooks/ with the project's kernel ("entitlements (.venv)"); the notebooks are
# jupytext py:percent files: open one with "Open With > Notebook". Build a warehouse first (make demo).
lab: venv
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf data/exports data/warehouse.duckdb data/warehouse.spark data/reports dbt_project/target dbt_project/logs
