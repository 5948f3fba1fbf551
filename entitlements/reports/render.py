"""Render analyst notebooks into self-contained HTML reports (plus one CSV per table).

    from entitlements.reports.render import ReportSession, render_report
    render_report("leakage", Path("data/warehouse.duckdb"), Path("data/reports"))
    with ReportSession() as session:  # several reports: one kernel, unchanged pages kept
        for name in PIPELINE_REPORTS:
            session.render(name, Path("data/warehouse.duckdb"), Path("data/reports"))

Reports (REPORTS): leakage (analysts), renewals (finance), usage (usage and limits), migration
(migration teams); each is a notebook in notebooks/ whose queries live in entitlements.reports.

The notebook (jupytext py:percent) is executed by papermill on a kernel of the interpreter running
this code (so a plain `pip install` is enough: no kernel has to be installed first) with the
parameters injected, then exported by nbconvert with code hidden. plotly.js is embedded inline once,
in the page's head, added after nbconvert (_page) rather than sent as a notebook output (4.8 MB
through the kernel's messages, the executed notebook and nbconvert for every page); the page loads
nothing from the network (no require.js, MathJax or mermaid from a CDN).

A session runs its notebooks one after another on one kernel (starting a kernel and importing pandas,
plotly and duckdb is most of a small report's cost), each in a namespace of its own. start() launches
the kernel on a thread; the kernel imports what the reports import and draws a figure of each kind as
it starts (common.warm_up) while this process readies nbconvert, so a run that starts the session
during its build finds all of it ready.

Each page records what it was rendered from: the content of the marts its report reads (declared by
the report's dbt exposure: report_reads; fingerprinted by marts_fingerprint), its parameters and its
code, and the build those marts came from. Without `force` a session keeps a page that records the
same marts, parameters and code, and renders nothing: after a build that changed other marts (a day
of usage leaves the renewals marts as they were) the page stays, recording the older build. A page
rendered again from the same marts is the same bytes: the header shows the marts' fingerprint, not a
run id, and cells, tables and figures carry ids from their position, name or content.

Beside the pages: write_index (index.html: each report's headline figures, links to the Data Docs and
dbt docs) and write_pdf (a report printed by headless Chromium, for mail).
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import logging
import os
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from entitlements.ingest._sql import quote_ident
from entitlements.reports import layout
from entitlements.warehouse import (
    DBT_PROJECT_DIR,
    NOTEBOOKS_DIR,
    PROJECT_ROOT,
    background_priority,
    connect_marts,
    last_build,
)

if TYPE_CHECKING:  # nbconvert, nbclient and papermill take seconds to import: only when a page is rendered
    import duckdb
    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.manager import AsyncKernelManager
    from nbconvert import HTMLExporter
    from nbformat import NotebookNode

KERNEL_NAME = "entitlements"

# report name -> notebook in notebooks/. A new report is one more line here.
REPORTS: dict[str, str] = {
    "leakage": "leakage_explorer.py",
    "renewals": "renewals.py",
    "usage": "usage_and_limits.py",
    "migration": "migration_validation.py",
}
# What `entitlements run` writes; the migration report is `entitlements migrate validate`'s.
PIPELINE_REPORTS: tuple[str, ...] = ("leakage", "renewals", "usage")
TITLES: dict[str, str] = {
    "leakage": "Revenue leakage report",
    "renewals": "Renewals and value at risk",
    "usage": "Usage and limits",
    "migration": "Legacy migration validation",
}
# Reports that read nothing but the marts their dbt exposure names (report_reads): a page is kept while
# those marts hold the same rows. The migration report also reads audit.migration_*, which `migrate
# validate` changes with no build: it is always rendered.
KEPT_WHEN_UNCHANGED: tuple[str, ...] = PIPELINE_REPORTS
# The one declaration of which marts a notebook reads: its exposure's depends_on, for dbt's lineage and
# docs and for keeping its page. tests/test_report_session.py renders each report from these alone.
EXPOSURES = DBT_PROJECT_DIR / "models" / "marts" / "_marts__exposures.yml"
# Files besides the notebook and this package that shape a page: the leakage categories' order, colours
# and labels (common.leakage_categories). A change to them may leave every mart as it was.
PAGE_INPUT_FILES: tuple[Path, ...] = (
    DBT_PROJECT_DIR / "seeds" / "leakage_categories.csv",
    *layout.ASSET_FILES,  # the page's CSS and table component
)
# What draws the page: plotly's version is the plotly.js embedded, nbconvert's the template.
PAGE_LIBRARIES = ("plotly", "pandas", "nbconvert")

# Set in the kernel's environment: common.OfflineHtmlRenderer then leaves plotly.js out of the
# notebook's outputs, and _page adds it to the page's head, once, if the page has a figure.
PLOTLYJS_ENV = "ENTITLEMENTS_PLOTLYJS"
PLOTLYJS_SCRIPTS = (
    "<script>window.PlotlyConfig = {{MathJaxConfig: 'local'}};</script><script>{plotlyjs}</script>"
)
_PLOTLYJS_SLOT = "<!-- entitlements: plotly.js -->"

_TEMPLATE_NAME = "entitlements_report.html.j2"
# The lab template minus every script it would fetch from a CDN, plus what the page was rendered from
# (first in the head: recorded_from reads the page's first 16 kB) and a slot for plotly.js (_page).
_TEMPLATE = """\
{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block extra_css %}
<meta name="entitlements-rendered-from" content="{{ resources.rendered_from | e }}">
<meta name="entitlements-marts-build" content="{{ resources.marts_build | e }}">
<style type="text/css">
  main { max-width: 1600px; margin: 0 auto; padding: 16px 24px; }
  .jp-OutputArea-output { overflow-x: auto; }
  .jp-OutputArea-output table caption { caption-side: top; text-align: left; font-weight: bold; }
  .jp-RenderedHTMLCommon table { margin-left: 0; }
</style>
{{ resources.page_assets }}
"""
_TEMPLATE += _PLOTLYJS_SLOT + "\n{% endblock extra_css %}\n"
# Where a page is written and which warehouse file it read do not change what it shows (a copy of the
# warehouse has the same build and marts).
_PATH_PARAMETERS = ("warehouse", "out_dir")
# Cells the page leaves out: a notebook's title cell, for JupyterLab (the page's headline band has it).
NOTEBOOK_ONLY_TAG = "notebook_only"
_ENGINE = "entitlements-session"
# Run silently between two notebooks: no variable of one is seen by the next, and its cells are numbered
# from 1 as on a kernel of its own (errors name the cell by that number). Modules stay imported.
_RESET = (
    f"import os as _os; _os.chdir({str(PROJECT_ROOT)!r}); del _os\n"
    "get_ipython().reset(new_session=False)\n"
    "get_ipython().execution_count = 1\n"
)
# Run by the kernel as it starts, before it answers (a second or two: pandas, plotly, duckdb, plotly's
# first figures), while this process readies papermill and nbconvert. The reset before each notebook
# clears its names; a failure here is only logged by the kernel, and the notebook importing it says why.
_WARM_UP = f"from entitlements.reports import common\ncommon.warm_up({tuple(REPORTS)!r})"
_KERNEL_ARGUMENTS = [
    "--IPKernelApp.log_level=CRITICAL",  # its own log (e.g. its TCP transport warning) is not report content
    "--HistoryManager.hist_file=:memory:",  # as nbclient starts kernels: no shared history database
    f"--IPKernelApp.exec_lines={_WARM_UP}",
]
# A tiny notebook exported as the session starts: nbconvert loads and compiles its templates then.
_EMPTY_NOTEBOOK = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _this_interpreters_kernels() -> Path:
    """A kernels folder holding one spec, KERNEL_NAME, that runs this very interpreter.

    Whatever kernels are installed (none after a plain `pip install`, or an `entitlements` kernel of
    another virtual environment), the report runs with the packages of the process that asked for it.
    """
    digest = hashlib.sha256(sys.executable.encode()).hexdigest()[:12]
    root = Path(tempfile.gettempdir()) / f"entitlements-jupyter-{digest}"
    spec = root / "kernels" / KERNEL_NAME / "kernel.json"
    wanted = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "entitlements (this interpreter)",
        "language": "python",
    }
    try:
        current = json.loads(spec.read_text())
    except (OSError, ValueError):
        current = None
    if current != wanted:  # written whole or not at all: two reports may start at once
        spec.parent.mkdir(parents=True, exist_ok=True)
        partial = spec.with_name(f"kernel.{os.getpid()}.tmp")
        partial.write_text(json.dumps(wanted))
        os.replace(partial, spec)
    return root / "kernels"


def notebook_path(name: str) -> Path:
    try:
        return NOTEBOOKS_DIR / REPORTS[name]
    except KeyError:
        raise ValueError(f"unknown report {name!r}; known: {', '.join(sorted(REPORTS))}") from None


def _exporter() -> HTMLExporter:
    import jinja2
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({_TEMPLATE_NAME: _TEMPLATE})],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    exporter.template_file = _TEMPLATE_NAME
    return exporter


_REF = re.compile(r"ref\(\s*['\"]([A-Za-z0-9_]+)['\"]\s*\)")


@functools.cache
def report_reads() -> dict[str, tuple[str, ...]]:
    """Report name -> the relations its notebook reads ("marts.<model>"): the depends_on of the dbt
    exposure whose url names the report's notebook (EXPOSURES). A report without one reads nothing
    declared."""
    import yaml

    exposures = yaml.safe_load(EXPOSURES.read_text(encoding="utf-8"))["exposures"]
    reads: dict[str, tuple[str, ...]] = {}
    for name, notebook in REPORTS.items():
        found = [e for e in exposures if str(e.get("url", "")).rsplit("/", 1)[-1] == notebook]
        if len(found) > 1:
            raise ValueError(f"{EXPOSURES}: {len(found)} exposures name notebooks/{notebook}; one may")
        if found:
            refs = [_REF.fullmatch(ref.strip()) for ref in found[0].get("depends_on", [])]
            if not all(refs):
                raise ValueError(f"{EXPOSURES}: exposure {found[0]['name']} depends on other than ref('...')")
            reads[name] = tuple(sorted(f"marts.{ref.group(1)}" for ref in refs if ref))
    return reads


def _reads(name: str) -> tuple[str, ...]:
    try:
        return report_reads()[name]
    except KeyError:
        raise ValueError(
            f"report {name} is kept while its marts are unchanged, but no exposure in {EXPOSURES}"
            f" names its notebook ({REPORTS[name]}) and the marts it reads"
        ) from None


def marts_fingerprint(con: duckdb.DuckDBPyConnection, relations: tuple[str, ...]) -> str:
    """A digest of the relations' columns and rows, in any row order: per relation its columns and
    types, its row count and the sum of DuckDB's hash() of each row (a sum, not a xor: two equal rows
    do not cancel out). A relation that does not exist counts as such. The marts are aggregates; this
    reads them once (tests/test_report_session.py; docs/architecture.md gives its cost)."""
    digest = hashlib.sha256()
    for relation in sorted(relations):
        schema, table = relation.split(".")
        columns = con.execute(
            "select column_name, data_type from information_schema.columns"
            " where table_catalog = current_database() and table_schema = ? and table_name = ?"
            " order by ordinal_position",
            [schema, table],
        ).fetchall()
        rows: list[Any] = []
        if columns:
            names = ", ".join(quote_ident(column) for column, _ in columns)
            rows = con.execute(
                f"select count(*), coalesce(sum(hash({names})::hugeint), 0)::varchar"
                f" from {quote_ident(schema)}.{quote_ident(table)}"
            ).fetchall()
        digest.update(json.dumps([relation, columns, rows], default=str).encode())
    return digest.hexdigest()[:32]


def rendered_from(name: str, marts: str | None, parameters: dict[str, Any]) -> str:
    """What a page of report `name` is rendered from: "marts <fingerprint of the marts it reads>
    <digest of its parameters, code and PAGE_INPUT_FILES>" (marts "-" when they are not compared)."""
    from importlib.metadata import version

    digest = hashlib.sha256(name.encode())
    shown = {k: v for k, v in parameters.items() if k not in _PATH_PARAMETERS}
    digest.update(json.dumps(shown, sort_keys=True, default=str).encode())
    digest.update(" ".join(f"{lib} {version(lib)}" for lib in PAGE_LIBRARIES).encode())
    digest.update(notebook_path(name).read_bytes())
    # its queries and charts, this template, the files it reads
    for path in (*sorted(Path(__file__).parent.glob("*.py")), *PAGE_INPUT_FILES):
        digest.update(path.read_bytes())
    return f"marts {marts or '-'} {digest.hexdigest()[:32]}"


# The template's meta tags, as nbconvert writes them out (attributes reordered, either quote).
_CONTENT = re.compile(r"\bcontent=(?:\"([^\"]*)\"|'([^']*)')")


def _recorded(page: Path, name: str) -> str | None:
    try:
        with page.open("rb") as handle:
            head = handle.read(16_384).decode("utf-8", "replace")  # the tags are near the top of <head>
    except OSError:
        return None
    tag = re.search(rf"<meta\b[^>]*\bname=[\"']?{name}\b[^>]*>", head)
    content = _CONTENT.search(tag.group(0)) if tag else None
    return html.unescape(content.group(1) or content.group(2)) if content else None


def recorded_from(page: Path) -> str | None:
    """What an HTML page records it was rendered from (rendered_from, a meta tag in its head), if anything."""
    return _recorded(page, "entitlements-rendered-from")


def recorded_build(page: Path) -> str | None:
    """The build whose marts an HTML page shows (a meta tag in its head), if it records one."""
    return _recorded(page, "entitlements-marts-build")


def _write_whole(path: Path, text: str) -> None:
    # A page cut short (a full disk, a kill) must not be kept later for the intact record in its head.
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


@dataclass(frozen=True)
class Rendered:
    name: str
    path: Path  # the HTML page
    kept: bool  # the page on disk recorded these marts' content, parameters and code: left as it was
    build_id: str | None  # the warehouse's last (finished) build, None for a warehouse with no build record
    # The build whose marts the page shows: build_id, or for a kept page the build it was rendered
    # from, which may be older (its marts then held the same rows as now).
    marts_build: str | None

    def kept_note(self) -> str:
        """What a run or `report` says of a kept page, and why it was kept."""
        return f"report {self.name}: its marts unchanged since build {self.marts_build}, kept"


def _notebook(data: dict[str, Any]) -> NotebookNode:
    import nbformat

    return nbformat.from_dict(data)


@functools.cache
def _plotlyjs() -> str:
    from plotly.offline import get_plotlyjs

    return PLOTLYJS_SCRIPTS.format(plotlyjs=get_plotlyjs())


def _page(body: str) -> str:
    """The page nbconvert wrote, with plotly.js in its head's slot if it draws a figure (its kernel
    left plotly.js out: PLOTLYJS_ENV). The slot is in the template's head, before any output, so the
    first occurrence is the template's whatever the data holds."""
    head, slot, rest = body.partition(_PLOTLYJS_SLOT)
    if not slot:
        raise RuntimeError("the report template has no slot for plotly.js")
    return head + (_plotlyjs() if 'class="plotly-graph-div"' in rest else "") + rest


class ReportSession:
    """Renders reports one after another on one Jupyter kernel, started by the first report rendered.

    Between two notebooks the kernel's namespace, output history and cell counter are reset (_RESET):
    each notebook sees only its own variables and parameters, numbered as on a kernel of its own.
    Without `force`, a report in KEPT_WHEN_UNCHANGED whose page records what it would be rendered from
    (rendered_from: its marts' content, parameters and code) is kept, and no kernel is started for it.
    """

    def __init__(self, *, force: bool = False) -> None:
        self.force = force
        self._km: AsyncKernelManager | None = None
        self._kc: AsyncKernelClient | None = None  # made, and the kernel awaited, by the first notebook
        self._html: HTMLExporter | None = None
        self._starting: threading.Thread | None = None  # start(): the kernel's launch, nbconvert's set-up
        self._start_error: BaseException | None = None

    def __enter__(self) -> ReportSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the kernel, if one was started (also one that died: its files are removed)."""
        if self._starting is not None:
            self._starting.join()  # a kernel launched meanwhile is stopped below
            self._starting, self._start_error = None, None
        from jupyter_core.utils import ensure_async, run_sync

        async def stop(km: AsyncKernelManager) -> None:
            if await ensure_async(km.is_alive()):
                await ensure_async(km.shutdown_kernel(now=True))
            else:
                await ensure_async(km.cleanup_resources())

        if self._kc is not None:
            self._kc.stop_channels()
            self._kc = None
        if self._km is not None and self._km.has_kernel:
            run_sync(stop)(self._km)
        self._km = None

    def render(
        self, name: str, warehouse: Path, out_dir: Path, parameters: dict[str, Any] | None = None
    ) -> Rendered:
        """Execute report `name`'s notebook against `warehouse` and write `<out_dir>/<name>.html`.

        Tables shown are also written as `<out_dir>/<name>_<table>.csv`, and the executed notebook as
        `<out_dir>/<name>.ipynb` (kept for debugging; papermill saves it even when a cell fails, then
        raises PapermillExecutionError). `parameters` override the notebook's defaults (e.g.
        {"currency": "EUR", "as_of": "2025-06-30"}).
        """
        source = notebook_path(name)
        warehouse = Path(warehouse).expanduser().resolve()
        if not warehouse.exists():
            raise FileNotFoundError(f"warehouse {warehouse} does not exist")
        # Refuse here, with the reason, what the notebook would refuse with a traceback: a warehouse a
        # writer holds (WarehouseLockedError) or a build that did not finish (IncompleteBuildError).
        con = connect_marts(warehouse)
        try:
            build = last_build(con)  # finished ok: connect_marts refuses any other
            # What a kept page vouches for is its marts' content, not the build's id: a build that left
            # them as they were (a day of usage, for a report not reading usage) keeps the page.
            compared = name in KEPT_WHEN_UNCHANGED and build is not None
            reads = _reads(name) if compared else report_reads().get(name)
            # Also what the page shows as its marts' version: the same marts, the same page.
            fingerprint = marts_fingerprint(con, reads) if reads is not None else None
            marts = fingerprint if compared else None
        finally:
            con.close()
        build_id = str(build[0]) if build else None
        out_dir = Path(out_dir).expanduser().resolve()
        out_dir.mkdir(parents=True, exist_ok=True)
        html_path = out_dir / f"{name}.html"

        params = {
            **(parameters or {}),
            "warehouse": str(warehouse),
            "out_dir": str(out_dir),
            "report_name": name,
            # Shown in the page's header (layout.Headline); the notebook computes them when run by hand.
            "marts_version": fingerprint,
            "built_as_of": build[2].isoformat() if build is not None and build[2] is not None else None,
        }
        record = rendered_from(name, marts, params)
        if (
            not self.force
            and marts is not None
            and recorded_from(html_path) == record
            and (shown := recorded_build(html_path))
        ):
            return Rendered(name, html_path, kept=True, build_id=build_id, marts_build=shown)

        html_export = self._started()
        executed = self._execute(source, out_dir / f"{name}.ipynb", params)
        import nbformat

        title = TITLES.get(name, f"{name} report")
        executed.metadata["title"] = title
        # Cell ids are random (jupytext, papermill's parameters cell); numbered, the same marts give the
        # same page byte for byte.
        # Code cells show only their outputs: one with none would be an empty gap above the headline.
        executed.cells = [
            c
            for c in executed.cells
            if NOTEBOOK_ONLY_TAG not in c.metadata.get("tags", ()) and (c.cell_type != "code" or c.outputs)
        ]
        for number, cell in enumerate(executed.cells):
            cell["id"] = f"cell-{number}"
        resources = {
            "metadata": {"name": title},
            "rendered_from": record,
            "marts_build": build_id or "",
            "page_assets": layout.page_assets(),
        }
        body, _ = html_export.from_notebook_node(nbformat.from_dict(executed), resources=resources)
        _write_whole(html_path, _page(body))
        return Rendered(name, html_path, kept=False, build_id=build_id, marts_build=build_id)

    def start(self) -> None:
        """Launch the kernel (which warms up as it starts: _WARM_UP) and ready nbconvert and papermill,
        on a thread: the caller does not wait (a run starts it as its build starts, so all of it
        overlaps the build). Otherwise the first report rendered starts it, and waits."""
        if self._starting is None:
            self._starting = threading.Thread(target=self._start, name="report session", daemon=True)
            self._starting.start()

    def _start(self) -> None:
        try:
            background_priority()  # the kernel it launches inherits it: a run starts it during the build
            self._launch_kernel()
            self._html = _exporter()
            resources = {"metadata": {"name": ""}, "rendered_from": "", "marts_build": "", "page_assets": ""}
            self._html.from_notebook_node(_notebook(_EMPTY_NOTEBOOK), resources=resources)
            import jupytext  # noqa: F401  (what _execute imports: seconds, the first time in a process)
            import papermill  # noqa: F401

            _register_session_engine()
        except BaseException as exc:  # raised in the thread that renders (_started)
            self._start_error = exc

    def _started(self) -> HTMLExporter:
        """Start, if nothing did, wait for start() to be done and raise what failed in it."""
        self.start()
        assert self._starting is not None
        self._starting.join()
        if self._start_error is not None:
            raise self._start_error
        assert self._html is not None
        return self._html

    def _launch_kernel(self) -> None:
        """Launch the kernel without waiting for it to answer (run_on_kernel does)."""
        from jupyter_client.kernelspec import KernelSpecManager
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        specs = KernelSpecManager(kernel_dirs=[str(_this_interpreters_kernels())])
        self._km = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)
        run_sync(self._km.start_kernel)(
            cwd=str(PROJECT_ROOT),
            extra_arguments=_KERNEL_ARGUMENTS,
            env=os.environ | {PLOTLYJS_ENV: "page"},
        )

    def _execute(self, source: Path, executed_path: Path, params: dict[str, Any]) -> NotebookNode:
        import jupytext
        import papermill

        _register_session_engine()
        # papermill logs each cell at INFO through its own logger; keep library use quiet.
        logging.getLogger("papermill").setLevel(logging.WARNING)
        return papermill.execute_notebook(
            jupytext.read(source),
            str(executed_path),
            parameters=params,
            engine_name=_ENGINE,
            kernel_name=KERNEL_NAME,
            language="python",
            progress_bar=False,
            request_save_on_cell_execute=False,
            cwd=str(PROJECT_ROOT),
            session=self,
        )

    def run_on_kernel(self, nb_man: Any, **client_options: Any) -> NotebookNode:
        """Execute a papermill-managed notebook on this session's kernel (SessionEngine calls this)."""
        from jupyter_core.utils import run_sync
        from papermill.clientwrap import PapermillNotebookClient

        assert self._km is not None, "render() starts the kernel first"
        if self._kc is None:  # a kernel that died or hangs as it starts: an error, as nbclient raises it
            self._kc = self._km.client()
            self._kc.allow_stdin = False
            self._kc.start_channels()
            run_sync(_until_ready)(self._km, self._kc, client_options.get("startup_timeout", 60))
        # Given a kernel manager and a client, nbclient starts neither and leaves the kernel running.
        client = PapermillNotebookClient(nb_man, km=self._km, **client_options)
        client.kc = self._kc
        reply = client.wait_for_reply(self._kc.execute(_RESET, silent=True, store_history=False))
        if not reply or reply["content"]["status"] != "ok":
            raise RuntimeError("the report kernel could not be reset for the next notebook")
        return client.execute()


async def _until_ready(km: AsyncKernelManager, kc: AsyncKernelClient, timeout: float) -> None:
    """jupyter_client's wait_for_ready less its last step, a 0.2 s wait for IOPub to fall silent: the
    kernel answered on the shell channel and IOPub delivers, and every reader here tells the messages
    of its own request by their parent id (nbclient, _RESET's reply)."""
    from queue import Empty

    deadline = time.monotonic() + timeout
    while True:
        kc.kernel_info()
        try:
            reply = await kc.shell_channel.get_msg(timeout=1)
        except Empty:
            pass
        else:
            if reply["msg_type"] == "kernel_info_reply":
                try:
                    await kc.iopub_channel.get_msg(timeout=0.2)  # its status: IOPub is connected
                    return
                except Empty:
                    pass
        if not await km.is_alive():
            raise RuntimeError("the report kernel died before replying to kernel_info")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the report kernel did not reply in {timeout:.0f} seconds")


@functools.cache
def _register_session_engine() -> None:
    """papermill's nbclient engine, on a ReportSession's kernel instead of a new kernel per notebook."""
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger

    class SessionEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(  # type: ignore[override]
            cls,
            nb_man: Any,
            kernel_name: str,
            *,
            session: ReportSession,
            start_timeout: int = 60,
            input_path: object = None,
            **kwargs: Any,
        ) -> NotebookNode:
            return session.run_on_kernel(
                nb_man, kernel_name=kernel_name, log=logger, startup_timeout=start_timeout, **kwargs
            )

    papermill_engines.register(_ENGINE, SessionEngine)


def render_report(
    name: str, warehouse: Path, out_dir: Path, parameters: dict | None = None, *, force: bool = True
) -> Path:
    """One report on a kernel of its own (ReportSession.render); returns the HTML path.

    force False: keep a page that records this build, these parameters and this code.
    """
    with ReportSession(force=force) as session:
        return session.render(name, warehouse, out_dir, parameters).path


def main(argv: list[str] | None = None) -> None:
    """`python -m entitlements.reports.render leakage [--warehouse W] [--out-dir D] [-p key=value ...]`"""
    import argparse
    import json
    import time

    from entitlements.warehouse import DEFAULT_REPORTS, DEFAULT_WAREHOUSE

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("name", choices=sorted(REPORTS))
    parser.add_argument("--warehouse", type=Path, default=DEFAULT_WAREHOUSE)
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_REPORTS)
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    params = {}
    for item in args.param:
        key, _, value = item.partition("=")
        try:
            params[key] = json.loads(value)  # numbers, null, true/false
        except json.JSONDecodeError:
            params[key] = value

    start = time.perf_counter()
    path = render_report(args.name, args.warehouse, args.out_dir, params)
    print(f"wrote {path} in {time.perf_counter() - start:.1f}s")


# Printed for mail: A4 landscape; the page is laid out at the printable width (277 mm at 96 dpi, less
# the margins), so the figures are drawn at the width they are printed at.
_PDF_WINDOW = "1000,800"
# Headless Chromium on a page that needs no network (the PDF here, the browser tests too): nothing
# resolves and every proxied request goes to a closed port.
CHROMIUM_OFFLINE_FLAGS = (
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
)
_PDF_FLAGS = (
    *CHROMIUM_OFFLINE_FLAGS,
    "--no-pdf-header-footer",
    "--virtual-time-budget=10000",  # the figures are drawn by script after load
    f"--window-size={_PDF_WINDOW}",
)


def chromium() -> str | None:
    """Headless Chromium's path (Debian's `chromium`), if installed."""
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def write_pdf(page: Path) -> Path:
    """`<page>.pdf` beside an HTML report, printed by headless Chromium (every row of every table: the
    print style shows the rows the pager hides). Kept when newer than its page."""
    import subprocess

    page = Path(page).resolve()
    pdf = page.with_suffix(".pdf")
    if pdf.exists() and pdf.stat().st_mtime_ns >= page.stat().st_mtime_ns:
        return pdf
    binary = chromium()
    if binary is None:
        raise RuntimeError("a PDF needs Chromium: install it (Debian: `apt-get install chromium`)")
    sandbox = ("--no-sandbox",) if os.geteuid() == 0 else ()  # Chromium refuses root with its sandbox
    with tempfile.TemporaryDirectory(prefix="entitlements-pdf-") as profile:
        partial = pdf.with_name(f".{pdf.stem}.{os.getpid()}.tmp.pdf")
        argv = [binary, *_PDF_FLAGS, *sandbox, f"--user-data-dir={profile}", f"--print-to-pdf={partial}"]
        try:
            done = subprocess.run([*argv, page.as_uri()], capture_output=True, text=True, timeout=180)
            if done.returncode != 0 or not partial.exists():
                raise RuntimeError(f"Chromium could not print {page}: {done.stderr.strip()[-500:]}")
            os.replace(partial, pdf)
        finally:
            partial.unlink(missing_ok=True)
    return pdf


# The other sites a reports folder may hold, linked from its index page when they exist.
INDEX_LINKS: tuple[tuple[str, str], ...] = (
    ("Data quality checks (Great Expectations Data Docs)", "data_docs/index.html"),
    ("Models, lineage and the reports reading them (dbt docs)", "dbt_docs/index.html"),
    ("Speed and memory (make bench)", "bench.html"),
)


def write_index(out_dir: Path) -> Path:
    """`<out_dir>/index.html`: a link to each report written there with its headline figures (the
    `<report>_headline.json` its notebook wrote beside the page), and the Data Docs and dbt docs when
    they exist. Rewritten only when its content changes; it holds no date or run of its own."""
    out_dir = Path(out_dir).expanduser().resolve()
    entries = []
    for name in REPORTS:
        page = out_dir / f"{name}.html"
        headline = None
        try:
            data = json.loads((out_dir / f"{name}_headline.json").read_text(encoding="utf-8"))
            headline = layout.headline_from_json(data)
        except (OSError, ValueError, KeyError, TypeError):  # none yet, or a page from an older version
            pass
        entries.append(
            layout.IndexEntry(name, TITLES.get(name, name), page.name if page.exists() else None, headline)
        )
    links = [(text, href) for text, href in INDEX_LINKS if (out_dir / href).exists()]
    path = out_dir / "index.html"
    text = layout.index_page(entries, links)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_whole(path, text)
    return path


def write_dbt_docs(warehouse: Path, out_dir: Path) -> Path:
    """The dbt docs site (models, lineage, exposures of every notebook and report) as one static page.

    `dbt docs generate --static` embeds the manifest and catalog in the page, so it opens from disk
    with no server and no network. Written to `<out_dir>/dbt_docs/index.html`; returns that path.
    """
    from entitlements.transform.dbt_runner import run_dbt, target_dir

    warehouse = Path(warehouse).expanduser().resolve()
    if not warehouse.exists():
        raise FileNotFoundError(f"warehouse {warehouse} does not exist: run `entitlements run` first")
    result = run_dbt("docs generate", warehouse, None, "--static")
    if not result.ok:
        raise RuntimeError("dbt docs generate failed:\n" + "\n".join(result.output.splitlines()[-20:]))
    site = Path(out_dir).expanduser().resolve() / "dbt_docs"
    site.mkdir(parents=True, exist_ok=True)
    page = site / "index.html"
    page.write_bytes((target_dir(warehouse) / "static_index.html").read_bytes())
    return page


if __name__ == "__main__":
    main()
