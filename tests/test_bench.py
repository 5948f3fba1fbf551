"""`make bench` (entitlements.bench): its pieces on small inputs, and one whole bench at the tiny scale.

No timings are asserted: the machine is shared; the bench reports its verdicts, the tests check that
every number it promises is there.
"""

from __future__ import annotations

import csv
import inspect
import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from entitlements import bench
from entitlements.runs import pipeline

pytestmark = pytest.mark.unit


def test_the_stages_are_those_run_pipeline_names() -> None:
    """The bench times a run through run_pipeline's on_stage (told by its stage()), so
    pipeline.STAGES must be what it names, in its order."""
    run_stages = re.findall(r'\bstage\("([^"]+)"\)', inspect.getsource(pipeline.run_pipeline))
    assert tuple(run_stages) == pipeline.STAGES


@pytest.mark.parametrize(
    ("text", "label", "events"),
    [
        ("tiny", "tiny", bench.TINY_EVENTS),
        ("100k", "100k", 100_000),
        ("1M", "1M", 1_000_000),
        ("10000000", "10M", 10_000_000),
        ("2.5M", "2500k", 2_500_000),
        ("1234", "1,234", 1234),
    ],
)
def test_scales_are_named_as_counts_or_tiny(text: str, label: str, events: int) -> None:
    scale = bench.parse_scale(text)
    assert (scale.label, scale.events) == (label, events)


def test_a_scale_that_is_not_a_count_is_refused() -> None:
    with pytest.raises(Exception, match="a scale is tiny or a count"):
        bench.parse_scale("lots")


def _usage(folder: Path, lines: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    by_month: dict[str, list[dict]] = {}
    for line in lines:
        by_month.setdefault(line["occurred_at"][:7], []).append(line)
    for month, rows in by_month.items():
        (folder / f"usage_{month}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _event(n: int, customer: str, meter: str, quantity: int, at: str) -> dict:
    return {
        "event_id": f"evt-{n}",
        "customer_id": customer,
        "meter_code": meter,
        "quantity": quantity,
        "occurred_at": at,
        "sent_at": at,
    }


TEXT = ("event_id", "customer_id", "meter_code", "occurred_at", "sent_at")
COLUMNS = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in TEXT) + ", 'quantity': 'BIGINT'}"


def _query(select: str, files: str, rest: str = "") -> list[tuple]:
    with duckdb.connect() as con:
        return con.execute(
            f"select {select} from read_json('{files}', columns = {COLUMNS}) {rest}"
        ).fetchall()


def test_streamed_usage_keeps_each_periods_total_and_month(tmp_path: Path) -> None:
    usage = tmp_path / "usage"
    _usage(
        usage,
        [
            _event(1, "C1", "API_CALLS", 500, "2026-09-03T10:00:00Z"),
            _event(2, "C1", "API_CALLS", 700, "2026-09-20T10:00:00Z"),
            _event(3, "C2", "STORAGE_GB", 90, "2026-09-05T10:00:00Z"),
            _event(4, "C1", "API_CALLS", 1000, "2026-10-02T10:00:00Z"),
        ],
    )
    assert bench.write_usage_streamed(usage, 1000, date(2026, 10, 15)) == 1000
    files = f"{usage.as_posix()}/*.jsonl"
    assert _query("count(*), count(distinct event_id)", files) == [(1000, 1000)]
    totals = "customer_id, meter_code, occurred_at[:7], sum(quantity)::int"
    assert _query(totals, files, "group by all order by all") == [
        ("C1", "API_CALLS", "2026-09", 1200),
        ("C1", "API_CALLS", "2026-10", 1000),
        ("C2", "STORAGE_GB", "2026-09", 90),
    ]
    # Nothing is sent after the as-of date, and every event stays in its month's file.
    assert _query("max(sent_at) <= '2026-10-15T23:59:59Z'", files) == [(True,)]
    assert sorted(p.name for p in usage.iterdir()) == ["usage_2026-09.jsonl", "usage_2026-10.jsonl"]


def test_the_added_day_is_a_new_file_of_events_on_the_as_of_date(tmp_path: Path) -> None:
    usage = tmp_path / "usage"
    _usage(
        usage,
        [_event(n, f"C{n % 3}", "API_CALLS", 10, f"2026-10-{1 + n % 28:02d}T10:00:00Z") for n in range(60)],
    )
    before = sorted(usage.iterdir())
    assert bench.write_day_file(tmp_path, date(2026, 10, 31), 365 * 40) == 40
    added = sorted(set(usage.iterdir()) - set(before))
    assert [p.name for p in added] == ["usage_2026-10-31_day.jsonl"]
    summary = (
        "count(distinct event_id), count(distinct customer_id), min(occurred_at[:10]), max(sent_at[:10])"
    )
    assert _query(summary, added[0].as_posix()) == [(40, 3, "2026-10-31", "2026-10-31")]


@pytest.mark.e2e
def test_the_bench_at_the_tiny_scale(tmp_path: Path) -> None:
    """One whole bench at the tiny scale, each run twice (--repeat 2): a CSV row per stage of each run
    with its median seconds and peak memory, the add-a-day rerun (each from the warehouse the
    no-change run left), the checks, the one-file read comparison, a self-contained plot."""
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "entitlements.bench",
            "--events",
            "tiny",
            "--checks",
            "50",
            "--batch",
            "50",
            "--usage-file",
            "2000",
            "--out",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--workdir",
            str(tmp_path / "work"),
            "--repeat",
            "2",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with (out / "bench.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == bench.CSV_COLUMNS
    found = {(r["scale"], r["run"], r["stage"]): r for r in rows}
    for run in bench.RUNS:
        # A rerun with nothing new builds nothing, so it checks no mart again.
        skipped = ("mart checks",) if run == "no-change" else ()
        for stage in (*bench.STAGES, "total"):
            row = found.get(("tiny", run, stage))
            assert (row is None) == (stage in skipped), (run, stage)
            # A stage with nothing to do (a kept page) can take under 1 ms, and so can data docs,
            # which only starts GX writing them (they are written while the reports render).
            if row is not None:
                quick = run == "no-change" or stage == "data docs"
                assert float(row["seconds"]) >= 0 if quick else float(row["seconds"]) > 0, row
                assert float(row["peak_mib"]) > 0, row
        assert float(found[("tiny", run, "total")]["warehouse_mib"]) > 0
    assert "dbt build: skipped, nothing changed" in found[("tiny", "no-change", "dbt build")]["note"]
    assert "dbt build: ok (incremental: 1 new" in found[("tiny", "add-a-day", "dbt build")]["note"]
    assert "events dated 2026-10-31 in one more usage file" in found[("tiny", "add-a-day", "total")]["note"]
    assert "of the full run" in found[("tiny", "add-a-day", "total")]["note"]
    medians = re.compile(r"(^|; )median of [\d.]+ / [\d.]+ s$")
    for key in [*(("tiny", run, "total") for run in bench.RUNS), ("tiny", "bare read", "duckdb bare read")]:
        assert medians.search(found[key]["note"]), key
    assert "(2 of 2)" in done.stderr
    # The second add-a-day run started from the warehouse the no-change runs left, as the first did: the
    # warehouse holds one full build, two skipped ones and one incremental build, the day landed once.
    con = duckdb.connect(str(tmp_path / "work" / "tiny" / "warehouse" / "warehouse.duckdb"), read_only=True)
    try:
        builds = con.execute(
            "select step, split_part(detail, ':', 1) from audit.pipeline_runs where step like 'build%'"
            " order by coalesce(started_at, finished_at)"
        ).fetchall()
        days = con.execute(
            "select count(*) from audit.ingest_manifest where source_file like '%_day.jsonl'"
            " and status = 'validated'"
        ).fetchall()
    finally:
        con.close()
    assert [(step, detail.split(" since ")[0]) for step, detail in builds] == [
        ("build", "full build"),
        ("build skipped", "nothing changed"),
        ("build skipped", "nothing changed"),
        ("build", "incremental build"),
    ]
    assert days == [(1,)]
    assert found[("tiny", "full", "total")]["target"] == "< 10 s"
    # The ingest's ratio to the bare read is shown at any scale, judged from 1M events up (at 1,128 it
    # measures the cost per file).
    ingest = found[("tiny", "full", "ingest")]
    assert re.search(r"; [\d.]+x the bare read \(beside dbt's start\)$", ingest["note"]), ingest
    alone = found[("tiny", "bare read", "ingest alone")]
    assert re.match(r"[\d.]+x the bare read; [\d,]+ rows/s; median of", alone["note"]), alone
    assert ingest["target"] == alone["target"] == "" and float(alone["seconds"]) > 0, (ingest, alone)
    command = found[("tiny", "serve", "check command")]
    assert command["target"] == "median < 150 ms" and command["verdict"].startswith(("meets", "MISSES"))
    assert f"over {bench.CLI_CHECKS} commands" in command["note"]
    for key in [
        ("tiny", "generate", "generate"),
        ("tiny", "bare read", "duckdb bare read"),
        ("tiny", "serve", "check latency"),
        ("tiny", "serve", "check command"),
        ("tiny", "serve", "check batch"),
        *(
            ("usage file 2k", "usage file", s)
            for s in (
                "duckdb bare read",
                "duckdb bare read, declared types",
                "ingest",
                "pandas read + insert",
            )
        ),
    ]:
        assert float(found[key]["seconds"]) > 0 and float(found[key]["peak_mib"]) > 0, key
    # The one-file ingest is compared with both bare reads; judged (from 1M events) on the typed one.
    one_file = found[("usage file 2k", "usage file", "ingest")]
    ratios = r"[\d.]+x the bare read with the layout's types \([\d.]+x the one with detected types\)"
    assert re.search(ratios, one_file["note"]) and one_file["target"] == "", one_file
    assert {r["commit"] for r in rows} != {""} and len({r["run_at"] for r in rows}) == 1
    html = (out / "bench.html").read_text()
    assert "plotly.js v" in html and not re.search(r"<script[^>]*src=[\"']?https?:", html)
    assert (
        "total, full run" in done.stdout
        and "add-a-day vs full" in done.stdout
        and "add-a-day rerun, seconds" in done.stdout
        and "targets" in done.stdout
    )
