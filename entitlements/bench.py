"""`make bench`: wall time and peak memory per pipeline stage, at one or more scales.

Machines here are noisy, so ingest speed is reported as a ratio against DuckDB's
bare read of the same files measured in the same run, never as an absolute
target. Each stage runs in a fresh child process so its peak memory (max RSS,
including the processes it starts, such as dbt) is its own.

    python -m entitlements.bench                 # default scale and 1M usage events
    python -m entitlements.bench --events 10000000
    python -m entitlements.bench --events --usage-file 10000000   # only the one-file ingest bench

The one-file ingest bench (issue 5's target): one usage file of N events (default 10M, about
1.6 GB of JSON lines), landed by `ingest_exports` and read by DuckDB alone into a table of a fresh
database file, alternately, twice each; the medians give the ratio. Targets: the ingest at most
1.5x the bare read, and under 2 GB of peak memory.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from queue import Empty
from typing import Any

DEFAULT_SCALES = (100_000, 1_000_000)
USAGE_FILE_EVENTS = 10_000_000
INGEST_RATIO_TARGET, INGEST_PEAK_MIB_TARGET = 1.5, 2048
ROUNDS = 2
CHECKS, WARMUP_CHECKS = 10_000, 200
CHECK_P95_TARGET_MS = 20.0


def _child(queue: Any, fn: Callable[..., Any], args: tuple) -> None:
    started = time.perf_counter()
    value = fn(*args)
    elapsed = time.perf_counter() - started
    peak_kib = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    queue.put((elapsed, peak_kib / 1024, value))


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


def generate(out: Path, events: int) -> int:
    from entitlements.demo import generate_demo

    return generate_demo(out, seed=42, usage_events=events).usage_events


def ingest(warehouse: Path, exports: Path) -> int:
    from entitlements.ingest.land import ingest_exports

    return sum(f.rows for f in ingest_exports(warehouse, exports, progress=False))


def bare_read(exports: Path) -> int:
    """DuckDB reading the same files into memory with the same types, nothing else."""
    import duckdb

    from entitlements.ingest.layouts import EXPORT_LAYOUTS

    con = duckdb.connect()
    rows = 0
    for layout in EXPORT_LAYOUTS:
        files = sorted(exports.glob(layout.pattern))
        if not files:
            continue
        names = "[" + ", ".join(f"'{f.as_posix()}'" for f in files) + "]"
        columns = "{" + ", ".join(f"'{c.name}': '{c.type}'" for c in layout.columns) + "}"
        reader = (
            f"read_csv({names}, header = true, columns = {columns})"
            if layout.file_format == "csv"
            else f"read_json({names}, format = 'newline_delimited', columns = {columns})"
        )
        con.execute(f"create or replace temp table t as select * from {reader}")
        rows += con.execute("select count(*) from t").fetchone()[0]
    return rows


def write_usage_file(path: Path, events: int) -> int:
    """A canonical usage file of `events` events, the same every time (no randomness)."""
    import duckdb

    from entitlements.ingest._sql import quote_literal

    path.parent.mkdir(parents=True, exist_ok=True)
    iso = "'%Y-%m-%dT%H:%M:%SZ'"
    with duckdb.connect() as con:
        con.execute(
            f"""COPY (
                SELECT 'evt-' || lpad(CAST(i AS VARCHAR), 10, '0') AS event_id,
                    'C' || lpad(CAST(i % 5000 AS VARCHAR), 5, '0') AS customer_id,
                    CASE WHEN i % 3 = 0 THEN 'API_CALLS' ELSE 'STORAGE_GB' END AS meter_code,
                    CAST(i % 97 AS DECIMAL(18, 4)) AS quantity,
                    strftime(TIMESTAMP '2025-01-01' + to_seconds(i % 31536000), {iso}) AS occurred_at,
                    strftime(TIMESTAMP '2025-01-01' + to_seconds(i % 31536000 + 90), {iso}) AS sent_at
                FROM range({int(events)}) AS r(i)
            ) TO {quote_literal(path.as_posix())} (FORMAT json)"""
        )
    return events


def bare_read_file(path: Path, database: Path) -> int:
    """DuckDB alone: the file into a table of a fresh database file, types as DuckDB detects them."""
    import duckdb

    from entitlements.ingest._sql import quote_literal

    with duckdb.connect(str(database)) as con:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"CREATE TABLE events AS SELECT * FROM read_json({quote_literal(path.as_posix())})")
        con.execute("CHECKPOINT")
        return con.execute("SELECT count(*) FROM events").fetchone()[0]


def landing_checks(warehouse: Path) -> int:
    from entitlements.quality.gates import validate_landing

    return len(validate_landing(warehouse, None, run_id=uuid.uuid4().hex[:12]).results)


def dbt_build(warehouse: Path, as_of: date) -> bool:
    from entitlements.transform.dbt_runner import run_dbt

    return run_dbt("build", warehouse, as_of).ok


def bench(events: int, workdir: Path) -> list[tuple[str, float, float, str]]:
    exports, warehouse = workdir / f"exports_{events}", workdir / f"warehouse_{events}.duckdb"
    rows: list[tuple[str, float, float, str]] = []
    secs, mib, n = measure(generate, exports, events)
    rows.append(("generate", secs, mib, f"{n:,} usage events"))
    bare_secs, bare_mib, bare_rows = measure(bare_read, exports)
    rows.append(("duckdb bare read", bare_secs, bare_mib, f"{bare_rows / bare_secs:,.0f} rows/s"))
    secs, mib, landed = measure(ingest, warehouse, exports)
    rows.append(("ingest", secs, mib, f"{landed / secs:,.0f} rows/s, {secs / bare_secs:.2f}x the bare read"))
    secs, mib, checks = measure(landing_checks, warehouse)
    rows.append(("landing checks", secs, mib, f"{checks} expectations"))
    secs, mib, ok = measure(dbt_build, warehouse, date(2026, 10, 31))
    rows.append(("dbt build", secs, mib, "ok" if ok else "FAILED"))
    return rows


def check_latency(warehouse: Path, as_of: date, checks: int = CHECKS) -> tuple[float, float, int, int]:
    """(p50 ms, p95 ms, checks, entitled) of random checks through one warm EntitlementChecker.

    Requests are drawn uniformly from every known customer x entitlement code and a day
    in the two years up to the as-of date, so about half are not entitled and every
    branch (covered, expired, never granted) is timed. The bench's dbt build stage runs
    `dbt build` alone, so the analyses are compiled and stored first, as `build_step` does.
    """
    import random
    import statistics
    from datetime import timedelta

    import duckdb

    from entitlements.serve.check import EntitlementChecker
    from entitlements.serve.queries import store_compiled_queries
    from entitlements.transform.dbt_runner import run_dbt, target_dir

    compiled = run_dbt("compile", warehouse, as_of, "--select", "path:analyses")
    if not compiled.ok:
        raise RuntimeError(compiled.output[-2000:])
    store_compiled_queries(warehouse, target_dir(warehouse) / "compiled" / "entitlements" / "analyses")
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
    requests = [
        (rng.choice(customers), rng.choice(codes), as_of - timedelta(days=rng.randrange(730)))
        for _ in range(checks + WARMUP_CHECKS)
    ]
    timings: list[float] = []
    entitled = 0
    with EntitlementChecker(warehouse) as checker:
        for n, (customer_id, code, on) in enumerate(requests):
            started = time.perf_counter()
            answer = checker.check(customer_id, code, on)
            elapsed = (time.perf_counter() - started) * 1000
            if n >= WARMUP_CHECKS:
                timings.append(elapsed)
                entitled += answer.entitled
    cuts = statistics.quantiles(timings, n=100)
    return cuts[49], cuts[94], len(timings), entitled


def bench_usage_file(events: int, workdir: Path) -> list[tuple[str, float, float, str]]:
    """One big usage file: ingest vs DuckDB's bare read, alternately, ROUNDS times each."""
    import shutil
    import statistics

    exports = workdir / "usage_file"
    secs, mib, _ = measure(write_usage_file, exports / "usage" / "events.jsonl", events)
    rows = [
        (
            "generate",
            secs,
            mib,
            f"{events:,} events, {(exports / 'usage' / 'events.jsonl').stat().st_size / 2**30:.2f} GiB",
        )
    ]
    bare, landed = [], []
    for round_ in range(ROUNDS):
        database, warehouse = workdir / f"bare_{round_}.duckdb", workdir / f"ingest_{round_}.duckdb"
        bare.append(measure(bare_read_file, exports / "usage" / "events.jsonl", database)[:2])
        landed.append(measure(ingest, warehouse, exports)[:2])
        database.unlink()
        shutil.rmtree(warehouse.parent / "gx", ignore_errors=True)
        warehouse.unlink()
    bare_secs = statistics.median(s for s, _ in bare)
    ingest_secs = statistics.median(s for s, _ in landed)
    ingest_mib = max(m for _, m in landed)
    ratio = ingest_secs / bare_secs
    rows.append(("duckdb bare read", bare_secs, max(m for _, m in bare), f"{events / bare_secs:,.0f} rows/s"))
    verdict = (
        f"{'meets' if ratio <= INGEST_RATIO_TARGET else 'MISSES'} <= {INGEST_RATIO_TARGET}x,"
        f" {'meets' if ingest_mib < INGEST_PEAK_MIB_TARGET else 'MISSES'} < {INGEST_PEAK_MIB_TARGET} MiB"
    )
    rows.append(
        (
            "ingest",
            ingest_secs,
            ingest_mib,
            f"{events / ingest_secs:,.0f} rows/s, {ratio:.2f}x the bare read; {verdict}",
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--events",
        type=int,
        nargs="*",
        default=list(DEFAULT_SCALES),
        help="usage-event scales to run (default: 100000 1000000)",
    )
    parser.add_argument(
        "--usage-file",
        type=int,
        default=USAGE_FILE_EVENTS,
        help="events in the one-file ingest bench (0 skips it; default: 10000000)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="entitlements-bench-") as tmp:
        if args.usage_file:
            print(
                f"\none usage file: {args.usage_file:,} events,"
                f" ingest vs DuckDB's bare read (median of {ROUNDS})"
            )
            print(f"  {'stage':<18} {'seconds':>9} {'peak MiB':>9}  notes")
            for stage, secs, mib, note in bench_usage_file(args.usage_file, Path(tmp)):
                print(f"  {stage:<18} {secs:>9.2f} {mib:>9.0f}  {note}")
        for events in args.events:
            print(f"\nscale: {events:,} usage events")
            print(f"  {'stage':<18} {'seconds':>9} {'peak MiB':>9}  notes")
            for stage, secs, mib, note in bench(events, Path(tmp)):
                print(f"  {stage:<18} {secs:>9.2f} {mib:>9.0f}  {note}")
            warehouse = Path(tmp) / f"warehouse_{events}.duckdb"
            secs, mib, (p50, p95, n, entitled) = measure(check_latency, warehouse, date(2026, 10, 31))
            verdict = "meets" if p95 < CHECK_P95_TARGET_MS else "MISSES"
            print(
                f"  {'check latency':<18} {secs:>9.2f} {mib:>9.0f}  p50 {p50:.1f} ms, p95 {p95:.1f} ms"
                f" over {n:,} checks ({entitled:,} entitled), {verdict} p95 < {CHECK_P95_TARGET_MS:.0f} ms"
                " target; seconds include compiling the analyses"
            )


if __name__ == "__main__":
    main()
