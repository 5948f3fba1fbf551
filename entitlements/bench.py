"""`make bench`: end-to-end runs at several scales, side by side, written to a CSV and a plot.

For each scale (usage events; default tiny, 1M and 10M; --huge adds 100M):

- generate the export (timed apart: not part of the run). Up to --demo-max-events (10M) it is
  entitlements.demo's export; generate_demo holds every event in memory (about 450 MiB at 1M, ~250
  bytes an event), so above that the demo is generated with 100k events and its usage files are
  rewritten by DuckDB straight from range(), streaming, with the same customers, meters, months
  and monthly totals (no redelivered duplicates). That export is kept in --cache-dir and reused.
- a full run, a no-change rerun, and an add-a-day rerun (one more usage file of events dated on
  the as-of date, 1/365 of the scale's events), each `entitlements run` stage by stage with the
  pipeline's own step functions, in one child process per run: seconds and peak memory per stage,
  the run's total, the warehouse's size.
- DuckDB's bare read of the same export into a fresh database file (the ingest's yardstick), the
  ingest of the export alone into a fresh warehouse, as the bare read runs (the ratio judged: in a
  run, dbt's child starts beside the ingest and takes CPU from it), and the entitlement checks:
  latency of --checks single checks on a warm checker, the wall time of `entitlements check` as a
  command (20 calls), throughput of a --batch check-batch.

Then the one-file ingest bench: one usage file of --usage-file events (default 10M, about 1.6 GB
of JSON lines), landed by the ingest and read by DuckDB alone (with the types it detects, and with
the layout's types: the same table the ingest makes, exact decimals; the ratio judged), alternately,
twice each (medians), and read by pandas and inserted into DuckDB once.

Machines are noisy, so the ingest is judged as a ratio to the bare read measured in the same run,
and --repeat N runs each scale's bare read, ingest alone and full run N times alternately, then the no-change
run N times and the add-a-day run N times (each from the warehouse and reports the no-change run
left): every stage is judged on its median (`make bench` runs three).
Memory: peak_mib is the largest process's peak RSS (getrusage: the run's Python process, or its
largest waited-for child such as dbt); self_mib and children_mib are the two. Each stage's
self_mib is its own (the peak is reset between stages, Linux /proc/self/clear_refs); its
children_mib is shown only when a child of that stage set a new peak for the run.

    python -m entitlements.bench                          # tiny, 1M, 10M and the 10M-event file
    python -m entitlements.bench --events tiny 100k --usage-file 0
    python -m entitlements.bench --events tiny --repeat 5 --usage-file 0   # medians of five
    python -m entitlements.bench --huge                   # adds 100M (its export is cached)
    python -m entitlements.bench --events 100k --usage-file 0 --spark   # DuckDB vs Spark builds
    python -m entitlements.bench --render a/bench.csv b/bench.csv   # two runs' rows, side by side

Output: the table on stdout (progress on stderr); <out>/bench.csv, one row per scale x run x stage
(run: generate, bare read, full, no-change, add-a-day, serve, engines, usage file; stage: a step
of the run or its total) with seconds, peak_mib, self_mib, children_mib, warehouse_mib, the issue's
target and verdict, a note, run_at and commit; and <out>/bench.html (plotly, its JavaScript
embedded: readable with no network).
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from queue import Empty
from typing import Any

from entitlements.runs.pipeline import STAGES as PIPELINE_STAGES

MIB = 1024  # ru_maxrss is in KiB on Linux
DEFAULT_SCALES = ("tiny", "1M", "10M")
HUGE_SCALE = "100M"
TINY_CUSTOMERS, TINY_EVENTS = 10, 1_000
DEMO_CUSTOMERS = 60
DEMO_MAX_EVENTS = 10_000_000  # above it, generate_demo would need ~2.5 GB+ of memory: stream instead
SEED_EVENTS = 100_000  # the demo behind a streamed export: its usage gives the periods and totals
STREAM_VERSION = 1  # bump when write_usage_streamed changes: cached exports are then regenerated
USAGE_FILE_EVENTS = 10_000_000
ROUNDS = 2
PANDAS_CHUNK = 500_000  # rows per pandas chunk: bounded memory, as a careful pandas loader would do
CHECKS, WARMUP_CHECKS, BATCH = 2_000, 200, 10_000
DAYS_PER_YEAR = 365
ISO = "'%Y-%m-%dT%H:%M:%SZ'"

# The targets. Keys: scale label; values: (total seconds, peak MiB or None).
RUN_TARGETS: dict[str, tuple[float, float | None]] = {
    "tiny": (10, None),
    "10M": (90, 2048),
    "100M": (15 * 60, 4096),
}
ADD_A_DAY_TARGET = ("10M", 0.10)  # add-a-day rerun on 10M under 10 % of its full run
INGEST_RATIO_TARGET = 1.3
# Judged from this many usage events up: below, the ratio measures the fixed cost per file (the
# tiny export's 40 files land in 0.7 s, its bare read takes 0.14 s), not reading.
INGEST_RATIO_FROM_EVENTS = 1_000_000
CHECK_P95_TARGET_MS = 5.0  # a warm check
CHECK_CLI_TARGET_MS = 150.0  # `entitlements check` as a command, median wall time
BATCH_TARGET = 5_000  # check-batch, checks a second
CLI_CHECKS, CLI_WARMUP = 20, 2
# --spark: the same full build on DuckDB and on a local Spark at each of these masters (executor cores).
ENGINE_BUILDS: tuple[tuple[str, str | None], ...] = (
    ("duckdb", None),
    ("spark", "local[1]"),
    ("spark", "local[2]"),
)

# The stages of `entitlements run`: startup, run_pipeline's own (on_stage), the CLI's summary.
STAGES = ("startup", *PIPELINE_STAGES, "summary")
RUNS = ("full", "no-change", "add-a-day")
CSV_COLUMNS = (
    "run_at",
    "commit",
    "scale",
    "events",
    "run",
    "stage",
    "seconds",
    "peak_mib",
    "self_mib",
    "children_mib",
    "warehouse_mib",
    "target",
    "verdict",
    "note",
)


@dataclass
class Row:
    scale: str
    events: int
    run: str  # generate, bare read, full, no-change, add-a-day, serve, engines, usage file
    stage: str
    seconds: float
    peak_mib: float
    self_mib: float | None = None
    children_mib: float | None = None
    warehouse_mib: float | None = None
    target: str = ""
    verdict: str = ""
    note: str = ""
    run_at: str = ""  # set on every row when the bench ends
    commit: str = ""


@dataclass(frozen=True)
class Scale:
    label: str
    events: int
    customers: int


def parse_scale(text: str) -> Scale:
    """tiny, or a count of usage events: 100000, 100k, 1M, 2.5M."""
    if text.lower() == "tiny":
        return Scale("tiny", TINY_EVENTS, TINY_CUSTOMERS)
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmM]?)", text.replace("_", "").replace(",", ""))
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a scale is tiny or a count of events (100k, 1M, 10000000)"
        )
    events = int(float(match[1]) * {"": 1, "k": 1_000, "m": 1_000_000}[match[2].lower()])
    if events < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: at least one event")
    return Scale(label_of(events), events, DEMO_CUSTOMERS)


def label_of(events: int) -> str:
    for unit, suffix in ((1_000_000, "M"), (1_000, "k")):
        if events % unit == 0:
            return f"{events // unit}{suffix}"
    return f"{events:,}"


# --- child processes: one per measured thing, so its peak memory is its own ---


def _child(queue: Any, fn: Callable[..., Any], args: tuple) -> None:
    started = time.perf_counter()
    value = fn(*args)
    elapsed = time.perf_counter() - started
    queue.put((elapsed, max(_self_mib(), _children_mib()), value))


def measure(fn: Callable[..., Any], *args: Any) -> tuple[float, float, Any]:
    """(seconds, peak MiB, return value) of fn(*args) run in a fresh process."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, fn, args))
    proc.start()
    while True:  # a child that dies never puts its result: poll rather than block forever
        try:
            result = queue.get(timeout=1)
            break
        except Empty:
            if not proc.is_alive():
                raise RuntimeError(f"{fn.__name__} failed with exit code {proc.exitcode}") from None
    proc.join()
    return result


def _self_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MIB


def _children_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / MIB


def _reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM, which ru_maxrss reads), so the next stage's is its own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# --- generating the exports ---


def quiet_duckdb(database: Path | str = ":memory:") -> Any:
    """A DuckDB connection without DuckDB's progress bar: it prints to stdout, into the bench's table."""
    import duckdb

    con = duckdb.connect(str(database))
    con.execute("SET enable_progress_bar = false")
    return con


def generate(out: Path, events: int, customers: int) -> int:
    from entitlements.demo import generate_demo

    return generate_demo(out, seed=42, customers=customers, usage_events=events).usage_events


def generate_streamed(out: Path, events: int, customers: int) -> int:
    """The demo export with SEED_EVENTS usage events, whose usage files are then rewritten at scale."""
    from entitlements.demo import generate_demo

    summary = generate_demo(out, seed=42, customers=customers, usage_events=SEED_EVENTS)
    written = write_usage_streamed(out / "usage", events, summary.as_of)
    meta = out / "export.json"
    meta.write_text(
        json.dumps(
            json.loads(meta.read_text())
            | {"usage_events": written, "usage_writer": f"entitlements.bench streamed v{STREAM_VERSION}"},
            indent=2,
        )
    )
    return written


def _epoch(day: date) -> int:
    return int(
        (
            datetime(day.year, day.month, day.day, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
        ).total_seconds()
    )


def write_usage_streamed(usage_dir: Path, events: int, as_of: date) -> int:
    """Replace usage_dir's files by `events` events with the same (customer, meter, month) periods, in
    the same proportions, and the same quantity per period, one file per month.

    Each month's events come from range(n) joined to a small table of slots (a period repeated as
    many times as it had events), so DuckDB streams them to the file: memory stays bounded at any
    count. Event i of a month takes slot i % S; the quantity of a period is split exactly over its
    events; times are spread over the month by a multiplicative hash, deterministic.
    """
    from entitlements.ingest._sql import quote_literal

    files = sorted(usage_dir.glob("*.jsonl"))
    con = quiet_duckdb()
    try:
        con.execute("SET memory_limit = '1GB'")  # the COPYs stream: this bounds what they may buffer
        con.execute("SET preserve_insertion_order = false")
        names = "[" + ", ".join(quote_literal(f.as_posix()) for f in files) + "]"
        con.execute(
            f"""CREATE TABLE periods AS
                SELECT customer_id, meter_code, left(occurred_at, 7) AS month,
                    count(*) AS n, CAST(sum(quantity) AS BIGINT) AS total
                FROM read_json({names}, columns = {{'customer_id': 'VARCHAR', 'meter_code': 'VARCHAR',
                    'quantity': 'BIGINT', 'occurred_at': 'VARCHAR'}})
                GROUP BY ALL"""
        )
        months = con.execute("SELECT month, sum(n) FROM periods GROUP BY month ORDER BY month").fetchall()
        for f in files:
            f.unlink()
        seed_total = sum(int(n) for _, n in months)
        horizon = _epoch(as_of + timedelta(days=1)) - 1  # nothing sent after the as-of date, as the demo
        done = seen = 0
        for month, n_month in months:
            seen += int(n_month)
            count = round(events * seen / seed_total) - done  # cumulative rounding: exactly `events`
            if count <= 0:
                continue
            slots, rounds, rest = int(n_month), count // int(n_month), count % int(n_month)
            con.execute(
                f"""CREATE OR REPLACE TABLE slots AS
                WITH s AS (SELECT customer_id, meter_code, n, total, unnest(range(n)) AS r
                           FROM periods WHERE month = ?),
                numbered AS (SELECT *, row_number() OVER (ORDER BY customer_id, meter_code, r) - 1 AS slot
                             FROM s)
                SELECT *, n * {rounds} + count(*) FILTER (WHERE slot < {rest})
                    OVER (PARTITION BY customer_id, meter_code) AS k
                FROM numbered""",
                [month],
            )
            first = date.fromisoformat(f"{month}-01")
            start = _epoch(first)
            span = min(_epoch((first + timedelta(days=32)).replace(day=1)), horizon + 1) - start
            moment = f"{start} + (i * 2654435761) % {span}"
            target = quote_literal((usage_dir / f"usage_{month}.jsonl").as_posix())
            con.execute(
                f"""COPY (
                    SELECT 'evt-' || lpad(CAST({done} + i AS VARCHAR), 10, '0') AS event_id,
                        s.customer_id, s.meter_code,
                        s.total // s.k + CASE WHEN (i // {slots}) * s.n + s.r < s.total % s.k
                            THEN 1 ELSE 0 END AS quantity,
                        strftime(make_timestamp(({moment}) * 1000000), {ISO}) AS occurred_at,
                        strftime(make_timestamp(least({moment} + i % 7200, {horizon}) * 1000000), {ISO})
                            AS sent_at
                    FROM range({count}) AS t(i) JOIN slots AS s ON s.slot = i % {slots}
                ) TO {target} (FORMAT json)"""
            )
            done += count
        return done
    finally:
        con.close()


def cached_export(cache_dir: Path, scale: Scale) -> tuple[Path, bool]:
    """(folder, whether it is already complete) of a streamed export in the cache."""
    folder = cache_dir / f"exports_{scale.events}_{scale.customers}c_v{STREAM_VERSION}"
    marker = folder / ".bench-complete"
    return folder, marker.exists()


def export_view(source: Path, view: Path) -> Path:
    """A folder of links to the export's files, its own usage folder real: the add-a-day file goes
    there, never into the (possibly cached) source."""
    view.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.name == "usage":
            (view / "usage").mkdir()
            for f in entry.iterdir():
                (view / "usage" / f.name).symlink_to(f.resolve())
        else:
            (view / entry.name).symlink_to(entry.resolve())
    return view


def write_day_file(export_dir: Path, as_of: date, events: int) -> int:
    """One more usage file: events on the as-of date for the customers and meters of its month, each
    with the mean quantity of that pair in that month, round robin; deterministic."""
    from entitlements.ingest._sql import quote_literal

    usage = export_dir / "usage"
    files = sorted(usage.glob(f"usage_{as_of:%Y-%m}*.jsonl")) or sorted(usage.glob("*.jsonl"))
    names = "[" + ", ".join(quote_literal(f.as_posix()) for f in files) + "]"
    count = max(1, round(events / DAYS_PER_YEAR))
    start = _epoch(as_of)
    with quiet_duckdb() as con:
        con.execute("SET memory_limit = '1GB'")
        con.execute(
            f"""CREATE TABLE pairs AS
            SELECT row_number() OVER (ORDER BY customer_id, meter_code) - 1 AS p, customer_id, meter_code, q
            FROM (SELECT customer_id, meter_code, greatest(1, round(avg(quantity)))::BIGINT AS q
                  FROM read_json({names}, columns = {{'customer_id': 'VARCHAR', 'meter_code': 'VARCHAR',
                      'quantity': 'DOUBLE'}})
                  GROUP BY ALL)"""
        )
        pairs = con.execute("SELECT count(*) FROM pairs").fetchall()[0][0]
        target = quote_literal((usage / f"usage_{as_of.isoformat()}_day.jsonl").as_posix())
        moment = f"{start} + (i * 79000) // {count}"  # spread over the day, sent within it
        con.execute(
            f"""COPY (
                SELECT 'evt-day-{as_of:%Y%m%d}-' || lpad(CAST(i AS VARCHAR), 10, '0') AS event_id,
                    customer_id, meter_code, q AS quantity,
                    strftime(make_timestamp(({moment}) * 1000000), {ISO}) AS occurred_at,
                    strftime(make_timestamp(({moment} + 600) * 1000000), {ISO}) AS sent_at
                FROM range({count}) AS t(i) JOIN pairs ON p = i % {pairs}
                ORDER BY i
            ) TO {target} (FORMAT json)"""
        )
    return count


# --- the measured work (each runs in its own child process) ---


def pipeline_run(export_dir: Path, warehouse: Path, reports_dir: Path, started: float) -> list[dict]:
    """`entitlements run EXPORT_DIR` as the CLI runs it (run_pipeline, then the summary), timed per
    stage through run_pipeline's on_stage: per stage (stage, seconds, self MiB, children MiB or
    None, note). A stage the run skips (mart checks of an unchanged build) has no row."""
    from entitlements.runs import pipeline
    from entitlements.runs.summary import print_summary

    rows = [_stage_row("startup", time.time() - started, _self_mib(), 0.0, 0.0, "interpreter and imports")]
    exact = _reset_peak()  # each stage resets it again: every stage's self_mib is its own
    sys.stdout = sys.stderr  # what the run prints is progress: the bench's stdout is its table
    as_of = pipeline.export_as_of(export_dir)
    if as_of is None:
        raise RuntimeError(f"{export_dir}: no export.json with an as-of date")
    current: dict[str, Any] = {}
    said: list[str] = []

    def close() -> None:
        if current:
            note = "; ".join(line for line in said if not line.startswith("ingest: landing"))[-300:]
            seconds = time.perf_counter() - current["began"]
            rows.append(
                _stage_row(current["name"], seconds, _self_mib(), current["children"], _children_mib(), note)
            )
            said.clear()

    def on_stage(name: str) -> None:
        close()
        _reset_peak()
        current.update(name=name, began=time.perf_counter(), children=_children_mib())

    pipeline.run_pipeline(
        export_dir, warehouse, reports_dir, as_of, progress=False, echo=said.append, on_stage=on_stage
    )
    on_stage("summary")
    print_summary(warehouse, echo=lambda _: None)
    close()
    peak_self = max(r["self_mib"] for r in rows) if exact else _self_mib()
    children = _children_mib()
    rows.append(
        _stage_row(
            "total",
            time.time() - started,
            peak_self,
            0.0,
            children,
            "" if exact else "per-stage self_mib is the peak so far (no /proc/self/clear_refs)",
        )
    )
    return rows


def _stage_row(stage: str, seconds: float, self_mib: float, before: float, after: float, note: str) -> dict:
    children = after if after > before else None  # a child of this stage set the run's peak
    return {"stage": stage, "seconds": seconds, "self_mib": self_mib, "children_mib": children, "note": note}


def ingest(warehouse: Path, exports: Path) -> int:
    from entitlements.ingest.land import ingest_exports

    return sum(f.rows for f in ingest_exports(warehouse, exports, progress=False))


def bare_read(exports: Path, database: Path) -> int:
    """DuckDB reading the export's files into tables of a fresh database file with the layouts' types
    (of the columns each file has: optional ones may be absent), nothing else."""
    from entitlements.ingest._sql import quote_literal
    from entitlements.ingest.layouts import EXPORT_LAYOUTS

    rows = 0
    with quiet_duckdb(database) as con:
        for n, layout in enumerate(EXPORT_LAYOUTS):
            for i, path in enumerate(sorted(exports.glob(layout.pattern))):
                if layout.file_format == "csv":
                    with path.open(encoding="utf-8-sig") as handle:
                        header = handle.readline().strip().split(",")
                    types = ", ".join(f"'{c.name}': '{c.type}'" for c in layout.columns if c.name in header)
                    reader = f"read_csv({quote_literal(path.as_posix())}, header = true, types = {{{types}}})"
                else:
                    columns = ", ".join(f"'{c.name}': '{c.type}'" for c in layout.columns)
                    reader = f"read_json({quote_literal(path.as_posix())}, columns = {{{columns}}})"
                into = f"CREATE TABLE t{n} AS" if i == 0 else f"INSERT INTO t{n} BY NAME"
                rows += con.execute(f"{into} SELECT * FROM {reader}").fetchall()[0][0]  # the rows written
        con.execute("CHECKPOINT")
    return rows


def write_usage_file(path: Path, events: int) -> int:
    """A canonical usage file of `events` events, the same every time (no randomness)."""
    from entitlements.ingest._sql import quote_literal

    path.parent.mkdir(parents=True, exist_ok=True)
    with quiet_duckdb() as con:
        con.execute(
            f"""COPY (
                SELECT 'evt-' || lpad(CAST(i AS VARCHAR), 10, '0') AS event_id,
                    'C' || lpad(CAST(i % 5000 AS VARCHAR), 5, '0') AS customer_id,
                    CASE WHEN i % 3 = 0 THEN 'API_CALLS' ELSE 'STORAGE_GB' END AS meter_code,
                    CAST(i % 97 AS DECIMAL(18, 4)) AS quantity,
                    strftime(TIMESTAMP '2025-01-01' + to_seconds(i % 31536000), {ISO}) AS occurred_at,
                    strftime(TIMESTAMP '2025-01-01' + to_seconds(i % 31536000 + 90), {ISO}) AS sent_at
                FROM range({int(events)}) AS r(i)
            ) TO {quote_literal(path.as_posix())} (FORMAT json)"""
        )
    return events


def bare_read_file(path: Path, database: Path) -> int:
    """DuckDB alone: the file into a table of a fresh database file, types as DuckDB detects them."""
    from entitlements.ingest._sql import quote_literal

    with quiet_duckdb(database) as con:
        con.execute(f"CREATE TABLE events AS SELECT * FROM read_json({quote_literal(path.as_posix())})")
        con.execute("CHECKPOINT")
        return con.execute("SELECT count(*) FROM events").fetchall()[0][0]


def pandas_read_file(path: Path, database: Path) -> int:
    """pandas reading the file in chunks and inserting each into a table of a fresh DuckDB file."""
    import pandas as pd

    with (
        quiet_duckdb(database) as con,
        pd.read_json(path, lines=True, chunksize=PANDAS_CHUNK) as reader,
    ):
        for n, chunk in enumerate(reader):
            con.register("chunk", chunk)
            con.execute(
                ("CREATE TABLE events AS" if n == 0 else "INSERT INTO events") + " SELECT * FROM chunk"
            )
            con.unregister("chunk")
        con.execute("CHECKPOINT")
        return con.execute("SELECT count(*) FROM events").fetchall()[0][0]


def entitlements_command() -> str:
    """The `entitlements` console script of this interpreter's environment."""
    return str(Path(sys.executable).with_name("entitlements"))


def engine_label(engine: str, master: str | None) -> str:
    return f"build {engine}" + (f" {master}" if master else "")


def engine_build(warehouse: Path, as_of: date, engine: str, master: str | None) -> str:
    """`entitlements build --full-refresh --engine ENGINE` on a warehouse (Spark at `master`): what it
    said last. A Spark build exports the raw layer to Parquet, starts a JVM and builds every model."""
    env = os.environ | ({"ENTITLEMENTS_SPARK_MASTER": master} if master else {})
    argv = [entitlements_command(), "build", "--warehouse", str(warehouse), "--as-of", as_of.isoformat()]
    done = subprocess.run(
        [*argv, "--full-refresh", "--engine", engine], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        said = done.stdout[-2000:] + done.stderr[-2000:]
        raise RuntimeError(f"build on {engine_label(engine, master)} exited {done.returncode}: {said}")
    return done.stdout.strip().splitlines()[-1]


def check_serving(warehouse: Path, as_of: date, checks: int, batch: int, workdir: Path) -> dict[str, Any]:
    """Latency of single checks through one warm EntitlementChecker, and check-batch throughput.

    Requests are drawn uniformly from every known customer x entitlement code and a day in the two
    years up to the as-of date, so about half are not entitled and every branch (covered, expired,
    never granted) is timed. The analyses the checker runs were stored by the run's build step.
    """
    import duckdb

    from entitlements.serve import check as serve

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        customers = [r[0] for r in con.execute("select customer_id from marts.dim_customers").fetchall()]
        codes = [
            r[0]
            for r in con.execute(
                "select distinct entitlement_code from marts.dim_entitlement_catalog"
            ).fetchall()
        ]
    finally:
        con.close()
    rng = random.Random(42)

    def draw(n: int) -> list[tuple[str, str, date]]:
        return [
            (rng.choice(customers), rng.choice(codes), as_of - timedelta(days=rng.randrange(730)))
            for _ in range(n)
        ]

    result: dict[str, Any] = {}
    if checks:
        timings: list[float] = []
        entitled = 0
        began = time.perf_counter()
        with serve.EntitlementChecker(warehouse) as checker:
            opened = time.perf_counter() - began  # opening may load (warm) what the checks read
            for n, (customer_id, code, on) in enumerate(draw(checks + WARMUP_CHECKS)):
                started = time.perf_counter()
                answer = checker.check(customer_id, code, on)
                if n >= WARMUP_CHECKS:
                    timings.append((time.perf_counter() - started) * 1000)
                    entitled += answer.entitled
        cuts = statistics.quantiles(timings, n=100)
        result |= {
            "latency_seconds": time.perf_counter() - began,
            "opened": opened,
            "p50": cuts[49],
            "p95": cuts[94],
            "checks": len(timings),
            "entitled": entitled,
        }
    if checks:
        # `entitlements check` as a user types it: a process each (interpreter, imports, opening the
        # warehouse read-only, one query), so what counts is its start. Warm-ups fill the OS cache.
        command = entitlements_command()
        walls: list[float] = []
        for n, (customer_id, code, on) in enumerate(draw(CLI_CHECKS + CLI_WARMUP)):
            argv = [command, "check", "--customer", customer_id, "--entitlement", code]
            started = time.perf_counter()
            done = subprocess.run(
                [*argv, "--on", on.isoformat(), "--warehouse", str(warehouse)], capture_output=True
            )
            wall = (time.perf_counter() - started) * 1000
            if done.returncode not in (0, 1):  # 0 entitled, 1 not: anything else is no answer
                raise RuntimeError(f"entitlements check exited {done.returncode}: {done.stderr.decode()}")
            if n >= CLI_WARMUP:
                walls.append(wall)
        cli_cuts = statistics.quantiles(walls, n=20)
        result |= {"cli_seconds": sum(walls) / 1000, "cli_p50": statistics.median(walls)}
        result |= {"cli_p95": cli_cuts[18], "cli_checks": len(walls)}
    # The hook for batch checking: serve.check_batch(warehouse, requests CSV, answers CSV) -> summary.
    # When serve offers no batch function the bench says so rather than timing a stand-in.
    batch_fn = getattr(serve, "check_batch", None)
    if batch and batch_fn is not None:
        requests, answers = workdir / "batch_requests.csv", workdir / "batch_answers.csv"
        with requests.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["customer_id", "entitlement_code", "on"])
            writer.writerows((c, e, on.isoformat()) for c, e, on in draw(batch))
        began = time.perf_counter()
        summary = batch_fn(warehouse, requests, answers)
        result |= {"batch_seconds": time.perf_counter() - began, "batch_requests": summary.requests}
    elif batch:
        result["batch_missing"] = True
    return result


# --- one scale ---


def bench_scale(
    scale: Scale,
    workdir: Path,
    cache_dir: Path,
    demo_max_events: int,
    checks: int,
    batch: int,
    echo: Callable[[str], None],
    engines: bool = False,
    repeat: int = 1,
) -> list[Row]:
    """Generate, bare read, full run, no-change rerun, add-a-day rerun, checks, and (engines) the
    full build on DuckDB and on Spark from the same landed warehouse: the scale's rows. repeat:
    the bare read and each run that many times (add-a-day each time from the warehouse and reports
    the no-change run left), each stage's seconds the median, its memory the largest."""
    from entitlements.runs.pipeline import export_as_of

    here = workdir / scale.label
    shutil.rmtree(here, ignore_errors=True)
    here.mkdir(parents=True)
    rows: list[Row] = []
    events = scale.events  # until generated: generate_demo's count differs a little from the asked one

    def add(run: str, stage: str, seconds: float, mib: float, **more: Any) -> None:
        rows.append(Row(scale.label, events, run, stage, seconds, mib, **more))

    if scale.events > demo_max_events:
        source, complete = cached_export(cache_dir, scale)
        if complete:
            events = json.loads((source / "export.json").read_text())["usage_events"]
            add("generate", "generate", 0.0, 0.0, note=f"cached in {source}")
        else:
            echo(f"{scale.label}: generating {scale.events:,} events (streamed by DuckDB) into {source}")
            shutil.rmtree(source, ignore_errors=True)
            secs, mib, events = measure(generate_streamed, source, scale.events, scale.customers)
            (source / ".bench-complete").write_text(json.dumps({"events": events, "version": STREAM_VERSION}))
            note = f"demo of {SEED_EVENTS:,} events, usage rewritten by DuckDB; cached in {source}"
            add("generate", "generate", secs, mib, note=note)
    else:
        source = here / "source"
        echo(f"{scale.label}: generating the demo ({scale.customers} customers, {scale.events:,} events)")
        secs, mib, events = measure(generate, source, scale.events, scale.customers)
        add("generate", "generate", secs, mib, note=f"entitlements.demo, {scale.customers} customers")
    exports = export_view(source, here / "export")
    as_of = export_as_of(exports)
    assert as_of is not None

    warehouse, reports = here / "warehouse" / "warehouse.duckdb", here / "reports"
    bare: list[tuple[float, float]] = []
    alone: list[tuple[float, float]] = []
    measured: dict[str, list[list[dict]]] = {run: [] for run in RUNS}
    for rep in range(repeat):
        # Alternately, so a machine slowing down for a while weighs on both sides of the ratio.
        echo(f"{scale.label}: DuckDB bare read of the export{_of(rep, repeat)}")
        secs, mib, read = measure(bare_read, exports, here / "bare.duckdb")
        (here / "bare.duckdb").unlink()
        bare.append((secs, mib))
        # The ingest as the bare read runs, alone in its process: in a run, dbt's child imports and
        # parses beside it, on the core DuckDB's second thread would use.
        echo(f"{scale.label}: the ingest alone{_of(rep, repeat)}")
        secs, mib, _ = measure(ingest, here / "ingest_alone" / "warehouse.duckdb", exports)
        shutil.rmtree(here / "ingest_alone")
        alone.append((secs, mib))
        shutil.rmtree(warehouse.parent, ignore_errors=True)  # each full run from nothing
        shutil.rmtree(reports, ignore_errors=True)
        echo(f"{scale.label}: full run{_of(rep, repeat)}")
        measured["full"].append(measure(pipeline_run, exports, warehouse, reports, time.time())[2])
    secs = statistics.median(s for s, _ in bare)
    note = f"{read:,} rows, {read / secs:,.0f} rows/s{_medians([s for s, _ in bare])}"
    add("bare read", "duckdb bare read", secs, max(m for _, m in bare), note=note)
    secs = statistics.median(s for s, _ in alone)
    note = f"{read / secs:,.0f} rows/s{_medians([s for s, _ in alone])}"
    add("bare read", "ingest alone", secs, max(m for _, m in alone), note=note)
    size = {"full": _warehouse_size(warehouse)}
    if engines:  # the landed export as the full run left it, for the engines
        landed = here / "engines" / "landed.duckdb"
        landed.parent.mkdir()
        shutil.copy(warehouse, landed)
    for rep in range(repeat):
        echo(f"{scale.label}: no-change run{_of(rep, repeat)}")
        measured["no-change"].append(measure(pipeline_run, exports, warehouse, reports, time.time())[2])
    size["no-change"] = _warehouse_size(warehouse)
    day_events = write_day_file(exports, as_of, events)
    before = here / "before_the_day"  # each add-a-day run from the same warehouse and reports
    if repeat > 1:
        shutil.copytree(warehouse.parent, before / "warehouse", symlinks=True)
        shutil.copytree(reports, before / "reports", symlinks=True)
    for rep in range(repeat):
        if rep:
            for kept, live in ((before / "warehouse", warehouse.parent), (before / "reports", reports)):
                shutil.rmtree(live)
                shutil.copytree(kept, live, symlinks=True)
            os.sync()  # the copy written out now, not by the kernel during the run it would slow
        echo(f"{scale.label}: add-a-day run{_of(rep, repeat)}")
        measured["add-a-day"].append(measure(pipeline_run, exports, warehouse, reports, time.time())[2])
    shutil.rmtree(before, ignore_errors=True)
    size["add-a-day"] = _warehouse_size(warehouse)
    for run in RUNS:
        for s in _median_stages(measured[run]):
            total = s["stage"] == "total"
            note = s["note"]
            if total and run == "add-a-day":
                note = f"{day_events:,} events dated {as_of} in one more usage file{s['medians']}"
            add(
                run,
                s["stage"],
                s["seconds"],
                max(s["self_mib"], s["children_mib"] or 0.0),
                self_mib=s["self_mib"],
                children_mib=s["children_mib"],
                warehouse_mib=size[run] / 2**20 if total else None,
                note=note,
            )

    if checks or batch:
        echo(f"{scale.label}: entitlement checks")
        secs, mib, served = measure(check_serving, warehouse, as_of, checks, batch, here)
        if "p95" in served:
            note = f"p50 {served['p50']:.3g} ms, p95 {served['p95']:.3g} ms over {served['checks']:,} checks"
            note += f" ({served['entitled']:,} entitled), the checker opened in {served['opened']:.2f} s"
            add("serve", "check latency", served["latency_seconds"], mib, note=note)
            ok = served["p95"] < CHECK_P95_TARGET_MS
            judge(rows[-1], f"p95 < {CHECK_P95_TARGET_MS:.0f} ms", ok, f"p95 {served['p95']:.3g} ms")
        if "cli_p50" in served:
            note = f"p50 {served['cli_p50']:.0f} ms, p95 {served['cli_p95']:.0f} ms"
            note += f" over {served['cli_checks']} commands"
            add("serve", "check command", served["cli_seconds"], mib, note=note)
            ok = served["cli_p50"] < CHECK_CLI_TARGET_MS
            judge(
                rows[-1], f"median < {CHECK_CLI_TARGET_MS:.0f} ms", ok, f"median {served['cli_p50']:.0f} ms"
            )
        if "batch_seconds" in served:
            rate = served["batch_requests"] / served["batch_seconds"]
            note = f"{served['batch_requests']:,} requests, {rate:,.0f} checks/s"
            add("serve", "check batch", served["batch_seconds"], mib, note=note)
            judge(rows[-1], f">= {BATCH_TARGET:,} checks/s", rate >= BATCH_TARGET, f"{rate:,.0f} checks/s")
        elif served.get("batch_missing"):
            echo("entitlements.serve.check has no check_batch: batch throughput not measured")
    if engines:
        for engine, master in ENGINE_BUILDS:
            label = engine_label(engine, master)
            echo(f"{scale.label}: {label}")
            copy = here / "engines" / re.sub(r"\W+", "_", label) / "w.duckdb"
            copy.parent.mkdir(parents=True)
            shutil.copy(here / "engines" / "landed.duckdb", copy)
            secs, mib, said = measure(engine_build, copy, as_of, engine, master)
            add("engines", label, secs, mib, note=said)
            shutil.rmtree(copy.parent)
    judge_scale(rows)
    return rows


def _of(rep: int, repeat: int) -> str:
    return f" ({rep + 1} of {repeat})" if repeat > 1 else ""


def _medians(values: list[float]) -> str:
    """A note's ending: the values a median was taken of, when there were several."""
    return f"; median of {' / '.join(f'{v:.2f}' for v in values)} s" if len(values) > 1 else ""


def _warehouse_size(warehouse: Path) -> int:
    return sum(f.stat().st_size for f in warehouse.parent.glob(warehouse.name + "*") if f.suffix != ".lock")


def _median_stages(runs: list[list[dict]]) -> list[dict]:
    """One stage list from repeated runs: each stage's median seconds and largest memory, the
    first run's note. A stage only some runs had (none do: the runs are alike) counts where it ran."""
    merged = []
    for first in runs[0]:
        same = [s for stages in runs for s in stages if s["stage"] == first["stage"]]
        seconds = [s["seconds"] for s in same]
        children = [s["children_mib"] for s in same if s["children_mib"] is not None]
        medians = _medians(seconds)
        merged.append(
            first
            | {
                "seconds": statistics.median(seconds),
                "self_mib": max(s["self_mib"] for s in same),
                "children_mib": max(children) if children else None,
                "note": (first["note"] + medians).lstrip("; "),
                "medians": medians,
            }
        )
    return merged


def find(rows: list[Row], scale: str, run: str, stage: str) -> Row | None:
    return next((r for r in rows if (r.scale, r.run, r.stage) == (scale, run, stage)), None)


def judge(row: Row, target: str, ok: bool, measured: str) -> None:
    row.target, row.verdict = target, f"{'meets' if ok else 'MISSES'} ({measured})"


def judge_scale(rows: list[Row]) -> None:
    """Write the issue's targets and verdicts on the rows they judge, and the reruns' shares."""
    scale = rows[0].scale
    total, ingest_row = find(rows, scale, "full", "total"), find(rows, scale, "full", "ingest")
    bare = find(rows, scale, "bare read", "duckdb bare read")
    if total and scale in RUN_TARGETS:
        seconds, peak = RUN_TARGETS[scale]
        target = f"< {seconds:.0f} s" + (f" and < {peak:.0f} MiB peak" if peak else "")
        ok = total.seconds < seconds and (peak is None or total.peak_mib < peak)
        judge(total, target, ok, f"{total.seconds:.1f} s, {total.peak_mib:,.0f} MiB")
    alone = find(rows, scale, "bare read", "ingest alone")
    if ingest_row and bare:
        ratio = ingest_row.seconds / bare.seconds
        ingest_row.note += f"; {ratio:.2f}x the bare read (beside dbt's start)"
    if alone and bare:  # judged alone, as the bare read runs: the ingest's own cost
        ratio = alone.seconds / bare.seconds
        alone.note = f"{ratio:.2f}x the bare read; {alone.note}".rstrip("; ")
        if alone.events >= INGEST_RATIO_FROM_EVENTS:
            judge(
                alone,
                f"<= {INGEST_RATIO_TARGET}x the bare read",
                ratio <= INGEST_RATIO_TARGET,
                f"{ratio:.2f}x",
            )
    for run in ("no-change", "add-a-day"):
        rerun = find(rows, scale, run, "total")
        if rerun and total:
            share = rerun.seconds / total.seconds
            rerun.note = f"{share:.0%} of the full run; {rerun.note}".rstrip("; ")
            if run == "add-a-day" and scale == ADD_A_DAY_TARGET[0]:
                limit = ADD_A_DAY_TARGET[1]
                judge(rerun, f"< {limit:.0%} of the full run", share < limit, f"{share:.0%}")


# --- the one-file ingest bench ---


def bench_usage_file(events: int, workdir: Path, echo: Callable[[str], None]) -> list[Row]:
    """One big usage file: ingest vs DuckDB's bare read, alternately, ROUNDS times each; pandas once."""
    label, here = f"usage file {label_of(events)}", workdir / "usage_file"
    shutil.rmtree(here, ignore_errors=True)
    path = here / "exports" / "usage" / "events.jsonl"
    echo(f"{label}: writing {events:,} events")
    secs, mib, _ = measure(write_usage_file, path, events)
    rows: list[Row] = []

    def add(stage: str, seconds: float, mib: float, **more: Any) -> None:
        rows.append(Row(label, events, "usage file", stage, seconds, mib, **more))

    add("generate", secs, mib, note=f"{path.stat().st_size / 2**30:.2f} GiB")
    bare, typed, landed = [], [], []
    for round_ in range(ROUNDS):
        echo(f"{label}: round {round_ + 1} of {ROUNDS}")
        database, warehouse = here / f"bare_{round_}.duckdb", here / f"ingest_{round_}" / "warehouse.duckdb"
        bare.append(measure(bare_read_file, path, database)[:2])
        database.unlink()
        typed.append(measure(bare_read, here / "exports", database)[:2])
        database.unlink()
        landed.append(measure(ingest, warehouse, here / "exports")[:2])
        shutil.rmtree(warehouse.parent)
    echo(f"{label}: pandas read + insert")
    database = here / "pandas.duckdb"
    pandas_secs, pandas_mib, _ = measure(pandas_read_file, path, database)
    database.unlink()
    bare_secs, ingest_secs = statistics.median(s for s, _ in bare), statistics.median(s for s, _ in landed)
    typed_secs = statistics.median(s for s, _ in typed)
    ratio, auto_ratio = ingest_secs / typed_secs, ingest_secs / bare_secs
    medians = f"median of {ROUNDS}"
    note = f"{events / bare_secs:,.0f} rows/s, types as DuckDB detects them (quantity a DOUBLE), {medians}"
    add("duckdb bare read", bare_secs, max(m for _, m in bare), note=note)
    note = f"{events / typed_secs:,.0f} rows/s, the layout's types (as the export's bare read), {medians}"
    add("duckdb bare read, declared types", typed_secs, max(m for _, m in typed), note=note)
    # Judged against the read that makes the same table (exact decimals, timestamps); both shown.
    note = f"{events / ingest_secs:,.0f} rows/s, {ratio:.2f}x the bare read with the layout's types"
    note += f" ({auto_ratio:.2f}x the one with detected types), {medians}"
    add("ingest", ingest_secs, max(m for _, m in landed), note=note)
    if events >= INGEST_RATIO_FROM_EVENTS:
        target = f"<= {INGEST_RATIO_TARGET}x the bare read with the layout's types"
        judge(rows[-1], target, ratio <= INGEST_RATIO_TARGET, f"{ratio:.2f}x")
    note = (
        f"{events / pandas_secs:,.0f} rows/s, {pandas_secs / typed_secs:.2f}x the bare read with the layout's"
    )
    note += f" types, chunks of {PANDAS_CHUNK:,}, one run"
    add("pandas read + insert", pandas_secs, pandas_mib, note=note)
    shutil.rmtree(here)
    return rows


# --- output ---


def git_commit() -> str:
    from entitlements.warehouse import PROJECT_ROOT

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    try:
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return git("rev-parse", "--short", "HEAD") + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_csv(rows: list[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(row).items()})


def read_csv(path: Path) -> list[Row]:
    """The rows of a bench.csv: to render again, or with another run's (--render)."""
    types = {f.name: f.type for f in fields(Row)}

    def value(name: str, text: str) -> Any:
        if "float" in str(types[name]):
            return float(text) if text else None
        return int(text) if name == "events" else text

    with path.open(newline="") as handle:
        return [Row(**{k: value(k, v) for k, v in r.items()}) for r in csv.DictReader(handle)]


def table(rows: list[Row], scales: list[str]) -> str:
    """The scales side by side: seconds per stage, reruns, memory, size, checks. A judged cell ends
    in ✓ (meets its target) or ✗ (misses it); the targets are listed below the table."""

    def at(run: str, stage: str, fmt: Callable[[Row], str], mark: str | None = None) -> Callable[[str], str]:
        """mark: show the row's verdict when its target says this ("": any target)."""

        def cell(scale: str) -> str:
            row = find(rows, scale, run, stage)
            if row is None:
                return ""
            judged = mark is not None and row.verdict and mark in row.target
            return fmt(row) + (" " + "✓✗"[row.verdict.startswith("MISSES")] if judged else "")

        return cell

    def ratio(run: str, stage: str, base_run: str, base_stage: str, fmt: str) -> Callable[[str], str]:
        def cell(scale: str) -> str:
            base = find(rows, scale, base_run, base_stage)
            share = at(run, stage, lambda r: fmt.format(r.seconds / base.seconds), mark="")  # type: ignore[union-attr]
            return share(scale) if base else ""

        return cell

    def secs(r: Row) -> str:
        return f"{r.seconds:.1f}"

    def mib(r: Row) -> str:
        return f"{r.peak_mib:,.0f}"

    def size(r: Row) -> str:
        return f"{r.warehouse_mib or 0:,.0f}"

    def p50_p95(r: Row) -> str:
        return "/".join(re.findall(r"p\d\d ([\d.e+-]+) ms", r.note))

    lines: list[tuple[str, Callable[[str], str]] | str] = [
        ("usage events", at("generate", "generate", lambda r: f"{r.events:,}")),
        "seconds",
        ("  generate (not in total)", at("generate", "generate", secs)),
        *((f"  {stage}", at("full", stage, secs)) for stage in STAGES),
        ("  total, full run", at("full", "total", secs, mark="")),
        ("  no-change rerun", at("no-change", "total", secs)),
        ("  add-a-day rerun", at("add-a-day", "total", secs)),
        ("  no-change vs full", ratio("no-change", "total", "full", "total", "{:.0%}")),
        ("  add-a-day vs full", ratio("add-a-day", "total", "full", "total", "{:.0%}")),
        ("  duckdb bare read", at("bare read", "duckdb bare read", secs)),
        ("  ingest alone", at("bare read", "ingest alone", secs)),
        (
            "  ingest alone vs bare read",
            ratio("bare read", "ingest alone", "bare read", "duckdb bare read", "{:.2f}x"),
        ),
        (
            "  ingest in the run vs bare read",
            ratio("full", "ingest", "bare read", "duckdb bare read", "{:.2f}x"),
        ),
        "add-a-day rerun, seconds",  # mostly what any build costs: a tiny export's day shows that floor
        *((f"  {stage}", at("add-a-day", stage, secs)) for stage in STAGES),
        "peak MiB",
        ("  full run (largest process)", at("full", "total", mib, mark="MiB")),
        ("  python run", at("full", "total", lambda r: f"{r.self_mib or 0:,.0f}")),
        ("  children (dbt, kernels)", at("full", "total", lambda r: f"{r.children_mib or 0:,.0f}")),
        *((f"  {stage}", at("full", stage, mib)) for stage in STAGES[1:]),
        ("  add-a-day rerun", at("add-a-day", "total", mib)),
        "warehouse MiB",
        ("  after the full run", at("full", "total", size)),
        ("  after add-a-day", at("add-a-day", "total", size)),
        "checks",
        ("  latency p50/p95 ms", at("serve", "check latency", p50_p95, mark="")),
        ("  command p50/p95 ms", at("serve", "check command", p50_p95, mark="")),
        ("  batch checks/s", at("serve", "check batch", lambda r: r.note.split(", ")[-1].split()[0])),
    ]
    if any(r.run == "engines" for r in rows):
        lines += [
            "full build, seconds (--spark)",
            *(
                (f"  {engine_label(*build)}", at("engines", engine_label(*build), secs))
                for build in ENGINE_BUILDS
            ),
        ]
    filled = [item if isinstance(item, str) else (item[0], [item[1](s) for s in scales]) for item in lines]
    width = max(len(item[0]) for item in filled if not isinstance(item, str))
    cols = [
        3 + max(len(s), *(len(i[1][n]) for i in filled if not isinstance(i, str)))
        for n, s in enumerate(scales)
    ]
    out = [" " * width + "".join(f"{s:>{w}}" for s, w in zip(scales, cols, strict=True))]
    for item in filled:
        if isinstance(item, str):
            out.append(item)
        else:
            out.append(
                f"{item[0]:<{width}}" + "".join(f"{c:>{w}}" for c, w in zip(item[1], cols, strict=True))
            )
    return "\n".join(out)


def usage_file_table(rows: list[Row]) -> str:
    out = [f"  {'stage':<22} {'seconds':>9} {'peak MiB':>9}  notes"]
    out += [f"  {r.stage:<22} {r.seconds:>9.2f} {r.peak_mib:>9.0f}  {r.note}" for r in rows]
    return "\n".join(out)


def verdicts(rows: list[Row]) -> str:
    return "\n".join(f"  {r.scale}, {r.run}, {r.stage}: {r.target}: {r.verdict}" for r in rows if r.target)


def write_plot(rows: list[Row], scales: list[str], path: Path, title: str) -> None:
    """Stage seconds stacked per scale, peak MiB per scale, reruns against the full run, ingest vs reads."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=2,
        cols=2,
        subplot_titles=(
            "full run: seconds per stage (generate excluded)",
            "peak memory of the full run (MiB)",
            "full run, no-change rerun, add-a-day rerun (seconds)",
            "ingest vs DuckDB bare read vs pandas (seconds)",
        ),
    )
    base = [0.0] * len(scales)
    for stage, colour in zip(STAGES, qualitative.Plotly, strict=False):
        values = [getattr(find(rows, s, "full", stage), "seconds", 0.0) for s in scales]
        bar = go.Bar(name=stage, x=scales, y=values, base=base, marker_color=colour, legendgroup="stages")
        fig.add_trace(bar.update(offsetgroup="stages"), row=1, col=1)  # stacked by hand: the rest is grouped
        base = [b + v for b, v in zip(base, values, strict=True)]
    memory = (("python run", "self_mib", "#8c8c8c"), ("children (dbt, kernels)", "children_mib", "#4d4d4d"))
    for name, attr, colour in memory:
        values = [getattr(find(rows, s, "full", "total"), attr, None) for s in scales]
        fig.add_trace(go.Bar(name=name, x=scales, y=values, marker_color=colour, legendgroup="memory"), 1, 2)
    for col, index, name in ((1, 0, "time target"), (2, 1, "peak target")):
        targeted = [s for s in scales if RUN_TARGETS.get(s, (None, None))[index]]
        marker = {"symbol": "line-ew-open", "size": 40, "color": "crimson", "line": {"width": 3}}
        y = [RUN_TARGETS[s][index] for s in targeted]
        fig.add_trace(go.Scatter(name=name, x=targeted, y=y, mode="markers", marker=marker), 1, col)
    for run, colour in zip(RUNS, qualitative.Set2, strict=False):
        found = [find(rows, s, run, "total") for s in scales]
        full = [find(rows, s, "full", "total") for s in scales]
        text = [f"{r.seconds / f.seconds:.0%}" if r and f else "" for r, f in zip(found, full, strict=True)]
        fig.add_trace(
            go.Bar(
                name=run,
                x=scales,
                y=[getattr(r, "seconds", None) for r in found],
                text=text,
                marker_color=colour,
                legendgroup="runs",
            ),
            row=2,
            col=1,
        )
    reads = [
        ("duckdb bare read", "bare read", "duckdb bare read"),
        ("ingest", "bare read", "ingest alone"),
        ("pandas read + insert", "usage file", "pandas read + insert"),
    ]
    file_scales = sorted({r.scale for r in rows if r.run == "usage file"})
    for (name, run, stage), colour in zip(reads, qualitative.Dark2, strict=False):
        x, y = [], []
        for s in scales + file_scales:
            found = find(rows, s, "usage file" if s in file_scales else run, stage)
            if found:
                x.append(s)
                y.append(found.seconds)
        fig.add_trace(go.Bar(name=name, x=x, y=y, marker_color=colour, legendgroup="reads"), row=2, col=2)
    fig.update_layout(barmode="group", title=title, height=900, legend={"groupclick": "toggleitem"})
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs=True, full_html=True)  # embedded: no CDN is reachable


# --- the command ---


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--events",
        type=parse_scale,
        nargs="+",
        default=None,
        metavar="SCALE",
        help="scales: tiny or a count of usage events, e.g. tiny 100k 1M (default: tiny 1M 10M)",
    )
    parser.add_argument(
        "--huge", action="store_true", help=f"add the {HUGE_SCALE} scale (its export is cached)"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path("data/bench"),
        help="where streamed exports are kept and reused (default: data/bench)",
    )
    parser.add_argument(
        "--demo-max-events",
        type=int,
        default=DEMO_MAX_EVENTS,
        help="larger scales are streamed by DuckDB, not generated by entitlements.demo"
        f" (default: {DEMO_MAX_EVENTS:,})",
    )
    parser.add_argument(
        "--usage-file",
        type=int,
        default=USAGE_FILE_EVENTS,
        help=f"events in the one-file ingest bench (0 skips it; default: {USAGE_FILE_EVENTS:,})",
    )
    parser.add_argument(
        "--checks",
        type=int,
        default=CHECKS,
        help=f"single checks timed per scale (0 skips; default: {CHECKS:,})",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=BATCH,
        help=f"requests in the check-batch per scale (0 skips; default: {BATCH:,})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("data/reports"),
        help="folder of bench.csv and bench.html (default: data/reports)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep exports and warehouses here (default: a temporary folder, removed)",
    )
    parser.add_argument(
        "--spark",
        action="store_true",
        help="also the full build on DuckDB and on a local Spark (local[1], local[2]) from each scale's"
        " landed export, side by side (the spark extra and Java 17; minutes even at small scales)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="each scale's bare read and runs N times, alternately; each stage's median (default: 1)",
    )
    parser.add_argument(
        "--render",
        type=Path,
        nargs="+",
        metavar="CSV",
        help="run nothing: print and plot the rows of these bench.csv files (e.g. runs of different scales)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat: at least 1")
    rows = [row for path in args.render for row in read_csv(path)] if args.render else run_bench(args)
    scales = list(dict.fromkeys(r.scale for r in rows if r.run == "generate"))
    csv_path, html_path = args.out / "bench.csv", args.out / "bench.html"
    write_csv(rows, csv_path)
    title = "entitlements bench, " + "; ".join(sorted({f"{r.run_at}, commit {r.commit}" for r in rows}))
    write_plot(rows, scales, html_path, title)
    print(f"\n{title}\n")
    print(table(rows, scales))
    for label in dict.fromkeys(r.scale for r in rows if r.run == "usage file"):
        print(f"\n{label}: ingest vs DuckDB's bare read (median of {ROUNDS}) vs pandas (one run)")
        print(usage_file_table([r for r in rows if r.scale == label]))
    print("\ntargets")
    print(verdicts(rows))
    print(f"\nwritten: {csv_path}, {html_path}")


def run_bench(args: argparse.Namespace) -> list[Row]:
    scales: list[Scale] = list(args.events or map(parse_scale, DEFAULT_SCALES))
    if args.huge:
        scales.append(parse_scale(HUGE_SCALE))
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    run_at, commit = datetime.now(UTC).isoformat(timespec="seconds"), git_commit()

    def echo(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="entitlements-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        for scale in dict.fromkeys(scales):  # a scale named twice runs once
            rows += bench_scale(
                scale,
                workdir,
                args.cache_dir,
                args.demo_max_events,
                args.checks,
                args.batch,
                echo,
                args.spark,
                args.repeat,
            )
            if args.workdir is None:
                shutil.rmtree(workdir / scale.label)  # free the disk before the next, larger scale
        if args.usage_file:
            rows += bench_usage_file(args.usage_file, workdir, echo)
    for row in rows:
        row.run_at, row.commit = run_at, commit
    return rows


if __name__ == "__main__":
    main()
