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
parameters injected, then exported by nbconvert with code hidden. plotly.js is embedded inline once;
the page loads nothing from the network (no require.js, MathJax or mermaid from a CDN).

A session runs its notebooks one after another on one kernel (starting a kernel and importing pandas,
plotly and duckdb is most of a small report's cost), each in a namespace of its own. Each page records
what it was rendered from (the warehouse's build, the parameters, the code); a session without `force`
keeps a page that records the same and renders nothing.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import html
import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from entitlements.warehouse import NOTEBOOKS_DIR, PROJECT_ROOT, connect_marts, last_build

if TYPE_CHECKING:  # nbconvert, nbclient and papermill take seconds to import: only when a page is rendered
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
# Reports that read nothing but a build's marts, so the build's id vouches for their input. The
# migration report also reads audit.migration_*, which `migrate validate` changes with no build: it is
# always rendered.
KEPT_WHEN_UNCHANGED: tuple[str, ...] = PIPELINE_REPORTS

_TEMPLATE_NAME = "entitlements_report.html.j2"
# The lab template minus every script it would fetch from a CDN, plus what the page was rendered from.
_TEMPLATE = """\
{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block extra_css %}
<meta name="entitlements-rendered-from" content="{{ resources.rendered_from | e }}">
<style type="text/css">
  main { max-width: 1600px; margin: 0 auto; padding: 16px 24px; }
  .jp-OutputArea-output { overflow-x: auto; }
  .jp-OutputArea-output table caption { caption-side: top; text-align: left; font-weight: bold; }
  .jp-RenderedHTMLCommon table { margin-left: 0; }
</style>
{% endblock extra_css %}
"""
# Where a page is written and which warehouse file it read do not change what it shows (a copy of the
# warehouse has the same build and marts).
_PATH_PARAMETERS = ("warehouse", "out_dir")
_ENGINE = "entitlements-session"
# Run silently between two notebooks: no variable of one is seen by the next, and its cells are numbered
# from 1 as on a kernel of its own (errors name the cell by that number). Modules stay imported.
_RESET = (
    f"import os as _os; _os.chdir({str(PROJECT_ROOT)!r}); del _os\n"
    "get_ipython().reset(new_session=False)\n"
    "get_ipython().execution_count = 1\n"
)
# What every report imports (a second or more): the kernel imports it as it starts, while this process
# imports papermill and nbconvert.
_WARM_UP = "import entitlements.reports.common, plotly.express"
_KERNEL_ARGUMENTS = [
    "--IPKernelApp.log_level=CRITICAL",  # its own log (e.g. its TCP transport warning) is not report content
    "--HistoryManager.hist_file=:memory:",  # as nbclient starts kernels: no shared history database
]


@contextlib.contextmanager
def _this_interpreters_kernel() -> Iterator[None]:
    """A kernel spec named KERNEL_NAME that runs this very interpreter, first on JUPYTER_PATH.

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
    before = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(root), before]))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = before


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


def rendered_from(name: str, build_id: str | None, parameters: dict[str, Any]) -> str:
    """What a page of report `name` is rendered from: "build <id> <digest of its parameters and code>"."""
    digest = hashlib.sha256(name.encode())
    shown = {k: v for k, v in parameters.items() if k not in _PATH_PARAMETERS}
    digest.update(json.dumps(shown, sort_keys=True, default=str).encode())
    digest.update(notebook_path(name).read_bytes())
    for module in sorted(Path(__file__).parent.glob("*.py")):  # its queries and charts, this template
        digest.update(module.read_bytes())
    return f"build {build_id} {digest.hexdigest()[:32]}"


# The template's meta tag, as nbconvert writes it out (attributes reordered, either quote).
_RECORD_TAG = re.compile(r"<meta\b[^>]*\bname=[\"']?entitlements-rendered-from\b[^>]*>")
_RECORD_CONTENT = re.compile(r"\bcontent=(?:\"([^\"]*)\"|'([^']*)')")


def recorded_from(page: Path) -> str | None:
    """What an HTML page records it was rendered from (a meta tag in its head), if anything."""
    try:
        with page.open("rb") as handle:
            head = handle.read(16_384).decode("utf-8", "replace")  # the tag is near the top of <head>
    except OSError:
        return None
    tag = _RECORD_TAG.search(head)
    content = _RECORD_CONTENT.search(tag.group(0)) if tag else None
    return html.unescape(content.group(1) or content.group(2)) if content else None


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
    kept: bool  # the page on disk recorded this very build, parameters and code: left as it was
    build_id: str | None  # the warehouse's last (finished) build, None for a warehouse with no build record


# What rendering imports in this process (seconds): a run imports it while dbt builds.
HEAVY_IMPORTS = ("papermill", "nbconvert", "jupytext")


class ReportSession:
    """Renders reports one after another on one Jupyter kernel, started by the first report rendered.

    Between two notebooks the kernel's namespace, output history and cell counter are reset (_RESET):
    each notebook sees only its own variables and parameters, numbered as on a kernel of its own.
    Without `force`, a report in KEPT_WHEN_UNCHANGED whose page records what it would be rendered from
    (rendered_from) is kept, and no kernel is started for it.
    """

    def __init__(self, *, force: bool = False) -> None:
        self.force = force
        self._km: AsyncKernelManager | None = None
        self._kc: AsyncKernelClient | None = None
        self._ready = False  # the kernel answered (checked once, when the first notebook is run)
        self._html: HTMLExporter | None = None

    def __enter__(self) -> ReportSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the kernel, if one was started (also one that died: its files are removed)."""
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
        }
        record = rendered_from(name, build_id, params)
        if (
            not self.force
            and build_id is not None
            and name in KEPT_WHEN_UNCHANGED
            and recorded_from(html_path) == record
        ):
            return Rendered(name, html_path, kept=True, build_id=build_id)

        self.start()
        executed = self._execute(source, out_dir / f"{name}.ipynb", params)
        import nbformat

        title = TITLES.get(name, f"{name} report")
        executed.metadata["title"] = title
        if self._html is None:
            self._html = _exporter()
        body, _ = self._html.from_notebook_node(
            nbformat.from_dict(executed), resources={"metadata": {"name": title}, "rendered_from": record}
        )
        _write_whole(html_path, body)
        return Rendered(name, html_path, kept=False, build_id=build_id)

    def start(self) -> None:
        """Start the kernel now, without waiting for it (a run does so as its build starts, so the
        kernel's imports overlap the build); otherwise the first report rendered starts it."""
        if self._km is None:
            self._start_kernel()

    def _start_kernel(self) -> None:
        """Launch the kernel, and have it import what reports import, without waiting for either."""
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        self._km = AsyncKernelManager(kernel_name=KERNEL_NAME)
        with _this_interpreters_kernel():
            run_sync(self._km.start_kernel)(cwd=str(PROJECT_ROOT), extra_arguments=_KERNEL_ARGUMENTS)
        self._kc = self._km.client()
        self._kc.allow_stdin = False
        self._kc.start_channels()
        self._kc.execute(_WARM_UP, silent=True, store_history=False)  # queued until the kernel listens

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

        assert self._km is not None and self._kc is not None, "render() starts the kernel first"
        if not self._ready:  # a kernel that died or hangs as it starts: an error, as nbclient raises it
            run_sync(self._kc.wait_for_ready)(timeout=client_options.get("startup_timeout", 60))
            self._ready = True
        # Given a kernel manager and a client, nbclient starts neither and leaves the kernel running.
        client = PapermillNotebookClient(nb_man, km=self._km, **client_options)
        client.kc = self._kc
        reply = client.wait_for_reply(self._kc.execute(_RESET, silent=True, store_history=False))
        if not reply or reply["content"]["status"] != "ok":
            raise RuntimeError("the report kernel could not be reset for the next notebook")
        return client.execute()


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
