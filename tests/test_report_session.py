"""Reports rendered in one kernel session, and kept when nothing they are rendered from changed.

Probe notebooks (jupytext text, registered as reports for the test) run through the real renderer:
papermill, one Jupyter kernel, nbconvert. Their warehouse is a DuckDB file whose builds are rows of
audit.pipeline_runs, as `entitlements build` records them, and whose one mart, marts.probe, is what a
probe is declared to read. The real reports' second `entitlements report all` is in
tests/test_report.py; a run after a day of usage, keeping the pages whose marts it left as they were,
in tests/test_pipeline.py. The declaration of what each real report reads (its dbt exposure) is
checked against its notebook here: by the names its code mentions, and by rendering it from a
warehouse holding only those marts.
"""

from __future__ import annotations

import os
import re
import threading
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import nbformat
import pytest
from nbclient.exceptions import DeadKernelError
from papermill.exceptions import PapermillExecutionError

from entitlements import audit
from entitlements.reports import render
from entitlements.reports.render import ReportSession
from entitlements.runs.pipeline import PipelineError, reports_step
from entitlements.warehouse import BACKGROUND_NICENESS, PROJECT_ROOT, IncompleteBuildError

pytestmark = pytest.mark.integration

HEADER = "# %% [markdown]\n# Probe\n\n"
PARAMETERS = (
    '# %% tags=["parameters"]\nwarehouse = None\nout_dir = None\nreport_name = None\nsecret = None\n\n'
)
# Defines a variable (from a parameter) and says which kernel ran it.
DEFINES = "# %%\nimport os\n\nleaked = secret\nprint('pid', os.getpid())\n"
# Fails in its third code cell (parameters, injected parameters, this one) if anything of DEFINES leaks.
CHECKS = (
    "# %%\nimport os\n\n"
    "assert 'leaked' not in globals(), 'a variable of the previous notebook is visible'\n"
    "assert secret is None, f'a parameter of the previous notebook is visible: {secret}'\n"
    "print('pid', os.getpid())\n"
)
FAILS = "# %%\nx = 1\n\n# %%\n1 / 0\n"


def probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, *cells: str) -> Path:
    """A notebook registered as report `name` reading marts.probe (kept while that mart holds the same
    rows, like the pipeline's reports)."""
    source = tmp_path / "notebooks" / f"{name}.py"
    source.parent.mkdir(exist_ok=True)
    source.write_text(HEADER + PARAMETERS + "".join(cells), encoding="utf-8")
    monkeypatch.setitem(render.REPORTS, name, str(source))  # an absolute path wins over NOTEBOOKS_DIR
    monkeypatch.setattr(render, "KEPT_WHEN_UNCHANGED", (*render.KEPT_WHEN_UNCHANGED, name))
    monkeypatch.setitem(render.report_reads(), name, ("marts.probe",))
    return source


def record_build(warehouse: Path, run_id: str, started: datetime, status: str = "ok") -> None:
    """A build's row in audit.pipeline_runs, as the pipeline leaves it."""
    con = duckdb.connect(str(warehouse))
    try:
        audit.ensure(con, "pipeline_runs")
        con.execute(
            "insert into audit.pipeline_runs (run_id, step, as_of_date, status, detail, started_at)"
            " values (?, 'build', date '2026-10-31', ?, '', ?)",
            [run_id, status, started],
        )
    finally:
        con.close()


def write_mart(warehouse: Path, sql: str) -> None:
    con = duckdb.connect(str(warehouse))
    try:
        con.execute("create schema if not exists marts")
        con.execute(sql)
    finally:
        con.close()


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    write_mart(path, "create table marts.probe as select * from (values (1, 'a'), (2, 'b')) t(id, label)")
    record_build(path, "build000001", datetime(2026, 11, 1, 6))
    return path


def printed_pids(executed: Path) -> set[str]:
    nb = nbformat.read(executed, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    return {line.split()[1] for line in text.splitlines() if line.startswith("pid ")}


def code_cell_numbers(executed: Path) -> list[int]:
    return [c.execution_count for c in nbformat.read(executed, as_version=4).cells if c.cell_type == "code"]


def test_notebooks_share_one_kernel_but_not_their_variables(tmp_path, monkeypatch, warehouse):
    probe(tmp_path, monkeypatch, "probe_defines", DEFINES)
    probe(tmp_path, monkeypatch, "probe_checks", CHECKS)
    out = tmp_path / "out"
    with ReportSession() as session:
        session.render("probe_defines", warehouse, out, {"secret": "only for the first"})
        session.render("probe_checks", warehouse, out)  # raises if CHECKS' asserts fail

    pids = printed_pids(out / "probe_defines.ipynb") | printed_pids(out / "probe_checks.ipynb")
    assert len(pids) == 1, f"one kernel for both notebooks, not {pids}"
    # Cells numbered as on a kernel of its own: the number an error names is the notebook's.
    assert code_cell_numbers(out / "probe_checks.ipynb") == [1, 2, 3]
    assert (out / "probe_checks.html").read_text(encoding="utf-8").count("pid ") == 1


def test_the_checks_see_a_leak_when_there_is_one(tmp_path, monkeypatch, warehouse):
    """The probe is not vacuous: run in the namespace CHECKS guards, the leak is caught."""
    probe(tmp_path, monkeypatch, "probe_both", DEFINES, CHECKS)
    with ReportSession() as session, pytest.raises(PapermillExecutionError) as failed:
        session.render("probe_both", warehouse, tmp_path / "out", {"secret": "x"})
    assert "a variable of the previous notebook is visible" in failed.value.evalue


def test_a_failing_cell_is_named_by_its_own_number_after_another_notebook(tmp_path, monkeypatch, warehouse):
    probe(tmp_path, monkeypatch, "probe_defines", DEFINES)
    probe(tmp_path, monkeypatch, "probe_fails", FAILS)
    out = tmp_path / "out"
    with pytest.raises(PipelineError) as failed:
        reports_step(warehouse, out, ["probe_defines", "probe_fails"], {})
    message = str(failed.value)
    assert "report probe_fails failed in cell 4: ZeroDivisionError: division by zero" in message
    assert f"the executed notebook is {out / 'probe_fails.ipynb'}" in message
    assert (out / "probe_defines.html").is_file() and (out / "probe_fails.ipynb").is_file()
    assert not (out / "probe_fails.html").exists()


def test_an_unchanged_report_is_kept_and_any_change_renders_it_again(
    tmp_path, monkeypatch, warehouse, capsys
):
    source = probe(tmp_path, monkeypatch, "probe_kept", DEFINES)
    out = tmp_path / "out"
    page = out / "probe_kept.html"

    def run_step(parameters: dict | None = None) -> tuple[bool, str]:
        """The pipeline's report step: did it render the page, and what did it say?"""
        before = page.stat().st_mtime_ns if page.exists() else None
        assert reports_step(warehouse, out, ["probe_kept"], parameters or {"secret": "s"}) == [page]
        return page.stat().st_mtime_ns != before, capsys.readouterr().out

    assert run_step() == (True, "")
    first = page.read_bytes()
    assert render.recorded_build(page) == "build000001"

    rendered, said = run_step()  # nothing changed
    assert not rendered and page.read_bytes() == first
    assert said == "report probe_kept: its marts unchanged since build build000001, kept\n"

    with ReportSession() as session:  # one kernel for the changes below

        def renders(parameters: dict | None = None) -> bool:
            before = page.stat().st_mtime_ns
            done = session.render("probe_kept", warehouse, out, parameters or {"secret": "s"})
            assert done.kept == (page.stat().st_mtime_ns == before)
            return not done.kept

        assert renders({"secret": "another"}), "other parameters"
        assert renders(), "back to the first parameters"
        source.write_text(source.read_text() + "# %%\nprint('one more cell')\n", encoding="utf-8")
        assert renders(), "a changed notebook"
        assert not renders()
        record_build(warehouse, "build000002", datetime(2026, 11, 2, 6))
        write_mart(warehouse, "create table marts.other as select 1 as id")  # not read by the probe
        assert not renders(), "a new build that left the probe's mart as it was"
        assert render.recorded_build(page) == "build000001", "the page shows build000001's marts"
        record_build(warehouse, "build000003", datetime(2026, 11, 3, 6))
        write_mart(warehouse, "update marts.probe set label = 'c' where id = 2")
        assert renders(), "a new build that changed the probe's mart"
        assert render.recorded_build(page) == "build000003"
        assert not renders()
    with ReportSession(force=True) as session:
        assert not session.render("probe_kept", warehouse, out, {"secret": "s"}).kept, "forced"
    assert run_step() == (False, "report probe_kept: its marts unchanged since build build000003, kept\n")


def test_a_page_that_records_nothing_or_another_report_is_rendered(tmp_path, monkeypatch, warehouse):
    probe(tmp_path, monkeypatch, "probe_a", DEFINES)
    probe(tmp_path, monkeypatch, "probe_b", DEFINES)
    out = tmp_path / "out"
    with ReportSession() as session:
        session.render("probe_a", warehouse, out)
        (out / "probe_b.html").write_bytes((out / "probe_a.html").read_bytes())  # same build and code
        assert not session.render("probe_b", warehouse, out).kept
        (out / "probe_a.html").write_text("<html><head></head></html>", encoding="utf-8")
        assert not session.render("probe_a", warehouse, out).kept
        assert session.render("probe_a", warehouse, out).kept


def test_a_warehouse_without_a_build_record_is_always_rendered(tmp_path, monkeypatch):
    probe(tmp_path, monkeypatch, "probe_nobuild", DEFINES)
    warehouse = tmp_path / "bare.duckdb"
    duckdb.connect(str(warehouse)).close()
    with ReportSession() as session:
        assert not session.render("probe_nobuild", warehouse, tmp_path).kept
        assert not session.render("probe_nobuild", warehouse, tmp_path).kept


def test_a_build_under_way_is_refused_before_any_kernel_starts(tmp_path, monkeypatch, warehouse):
    probe(tmp_path, monkeypatch, "probe_refused", DEFINES)
    record_build(warehouse, "build000003", datetime(2026, 11, 1, 6) + timedelta(hours=1), "running")
    with ReportSession() as session, pytest.raises(IncompleteBuildError, match="run build000003"):
        session.render("probe_refused", warehouse, tmp_path)
    assert not (tmp_path / "probe_refused.ipynb").exists(), "refused before the notebook ran"


def test_a_notebook_that_kills_the_kernel_is_an_error_and_the_kernel_is_gone(
    tmp_path, monkeypatch, warehouse
):
    probe(tmp_path, monkeypatch, "probe_exits", "# %%\nimport os\n\nos._exit(3)\n")
    session = ReportSession()
    with session, pytest.raises(DeadKernelError):
        session.render("probe_exits", warehouse, tmp_path)
    assert session._km is None and session._kc is None


def test_the_kernel_starts_at_background_priority_so_a_build_keeps_its_cores():
    caller = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    session = ReportSession()
    with session:
        session.start()
        session._started()
        assert session._km is not None
        kernel = session._km.provisioner.process.pid
        assert os.getpriority(os.PRIO_PROCESS, kernel) >= BACKGROUND_NICENESS
    # only the session's thread and its kernel were lowered, not the caller
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == caller


def test_collecting_nothing_pauses_the_collector_and_freezes_what_it_loaded():
    import gc

    from entitlements.warehouse import collecting_nothing

    assert gc.isenabled()
    kept = [[] for _ in range(1000)]  # tracked containers, alive when the block ends
    frozen_before = gc.get_freeze_count()
    with pytest.raises(ZeroDivisionError), collecting_nothing():
        assert not gc.isenabled()
        loaded = [{"n": n} for n in range(1000)]
        1 / 0  # noqa: B018 (an error inside still restores the collector)
    assert gc.isenabled(), "enabled again, as it was"
    assert gc.get_freeze_count() >= frozen_before + len(kept) + len(loaded)
    gc.disable()
    try:
        with collecting_nothing():
            pass
        assert not gc.isenabled(), "left disabled, as it was"
    finally:
        gc.enable()


def test_the_report_kernel_freezes_what_its_warm_up_loaded(tmp_path, monkeypatch, warehouse):
    """Its reset between two notebooks is a full collection: with pandas and plotly frozen it walks
    only what the notebooks made."""
    probe(
        tmp_path, monkeypatch, "probe_frozen", "# %%\nimport gc\n\nprint('frozen', gc.get_freeze_count())\n"
    )
    out = tmp_path / "out"
    with ReportSession() as session:
        session.render("probe_frozen", warehouse, out)
    nb = nbformat.read(out / "probe_frozen.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    frozen = int(re.search(r"frozen (\d+)", text).group(1))
    assert frozen > 100_000, f"the warm-up's pandas and plotly objects are frozen, not {frozen}"


# --------------------------------------------------------------------------- what a page vouches for


def fingerprint(sql: str, relations: tuple[str, ...] = ("marts.m",)) -> str:
    """The fingerprint of marts.m as `sql` (statements run on a fresh in-memory database) leaves it."""
    con = duckdb.connect()
    try:
        con.execute("create schema marts")
        con.execute(sql)
        return render.marts_fingerprint(con, relations)
    finally:
        con.close()


def test_the_marts_fingerprint_changes_with_the_content_and_only_with_it():
    values = "(1, 'a', 2.50), (2, null, 1.00)"
    rows = f"create table marts.m as select * from (values {values}) t(id, label, amount)"
    same = fingerprint(rows)
    assert fingerprint(rows + "; create table marts.other as select 1") == same, "another relation"
    assert fingerprint(rows.replace(values, "(2, null, 1.00), (1, 'a', 2.50)")) == same, "another order"
    changed = {
        "a value": rows.replace("2.50", "2.51"),
        "a null": rows.replace("'a'", "null"),
        "a row more": rows.replace("(2, null, 1.00)", "(2, null, 1.00), (3, 'c', 0.00)"),
        "a row repeated": rows.replace("(2, null, 1.00)", "(2, null, 1.00), (2, null, 1.00)"),
        "a column renamed": rows.replace("amount)", "total)"),
        "a type": rows.replace("2.50", "2.50::decimal(18, 2)").replace("1.00)", "1.00::decimal(18, 2))"),
        "no rows": rows + "; delete from marts.m",
    }
    for what, sql in changed.items():
        assert fingerprint(sql) != same, what
    absent = fingerprint("select 1", ("marts.absent",))
    assert absent != fingerprint("create table marts.absent (id int)", ("marts.absent",)), "absent, empty"


# The relations a notebook or its report module names in its code or prose: schema.table.
RELATION = re.compile(r"\b(?:raw|raw_superseded|staging|intermediate|marts|audit)\.[a-z_][a-z0-9_]*\b")
REPORTS_PACKAGE = PROJECT_ROOT / "entitlements" / "reports"


@pytest.mark.parametrize("name", render.KEPT_WHEN_UNCHANGED)
def test_a_kept_report_names_no_relation_its_exposure_does_not_declare(name):
    """Every relation the notebook and the report modules it imports mention, on any code path."""
    notebook = render.notebook_path(name).read_text(encoding="utf-8")
    imported = re.findall(r"^from entitlements\.reports import (.+)$", notebook, flags=re.M)
    modules = [m.strip() for line in imported for m in line.split(",")]
    assert modules, f"{name}: its notebook imports no report module"
    texts = [notebook, *((REPORTS_PACKAGE / f"{m}.py").read_text(encoding="utf-8") for m in modules)]
    named = {relation for text in texts for relation in RELATION.findall(text)}
    declared = set(render.report_reads()[name])
    assert named <= declared, f"{name} reads {sorted(named - declared)}, not in {render.EXPOSURES}"
    assert declared <= named, f"{name}'s exposure declares {sorted(declared - named)}, which it never reads"


@pytest.mark.e2e  # three real reports rendered
def test_each_kept_report_renders_from_the_marts_its_exposure_declares_alone(demo_warehouse, as_of, tmp_path):
    """What the notebook actually queries: on a warehouse holding only the declared marts (and the
    build record every reader checks), a report reading anything else fails naming it."""
    with ReportSession() as session:
        for name in render.KEPT_WHEN_UNCHANGED:
            only = tmp_path / f"{name}.duckdb"
            con = duckdb.connect(str(only))
            try:
                con.execute(f"attach '{demo_warehouse}' as demo (read_only)")
                for relation in (*render.report_reads()[name], "audit.pipeline_runs"):
                    con.execute(f"create schema if not exists {relation.split('.')[0]}")
                    con.execute(f"create table {relation} as from demo.{relation}")
            finally:
                con.close()
            done = session.render(name, only, tmp_path / "out", {"as_of": as_of.isoformat()})
            assert not done.kept and done.path.stat().st_size > 0
