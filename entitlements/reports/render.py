"""Render an analyst notebook into a self-contained HTML report (plus one CSV per table).

    from entitlements.reports.render import render_report
    render_report("leakage", Path("data/warehouse.duckdb"), Path("data/reports"))

Reports (REPORTS): leakage (analysts), renewals (finance), usage (usage and limits), migration
(migration teams); each is a notebook in notebooks/ whose queries live in entitlements.reports.

The notebook (jupytext py:percent) is executed by papermill on a kernel of the interpreter running
this code (so a plain `pip install` is enough: no kernel has to be installed first) with the
parameters injected, then exported by nbconvert with code hidden. plotly.js is embedded inline once;
the page loads nothing from the network (no require.js, MathJax or mermaid from a CDN).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import jinja2
import jupytext
import nbformat
import papermill
from nbconvert import HTMLExporter

from entitlements.warehouse import NOTEBOOKS_DIR, PROJECT_ROOT, connect_marts

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

_TEMPLATE_NAME = "entitlements_report.html.j2"
# The lab template minus every script it would fetch from a CDN.
_TEMPLATE = """\
{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block extra_css %}
<style type="text/css">
  main { max-width: 1600px; margin: 0 auto; padding: 16px 24px; }
  .jp-OutputArea-output { overflow-x: auto; }
  .jp-OutputArea-output table caption { caption-side: top; text-align: left; font-weight: bold; }
  .jp-RenderedHTMLCommon table { margin-left: 0; }
</style>
{% endblock extra_css %}
"""


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


def render_report(name: str, warehouse: Path, out_dir: Path, parameters: dict | None = None) -> Path:
    """Execute the report's notebook against `warehouse` and write `<out_dir>/<name>.html`.

    Tables shown are also written as `<out_dir>/<name>_<table>.csv`, and the executed notebook as
    `<out_dir>/<name>.ipynb` (kept for debugging; papermill saves it even when a cell fails).
    `parameters` override the notebook's defaults (e.g. {"currency": "EUR", "as_of": "2025-06-30"}).
    Returns the HTML path.
    """
    source = notebook_path(name)
    warehouse = Path(warehouse).expanduser().resolve()
    if not warehouse.exists():
        raise FileNotFoundError(f"warehouse {warehouse} does not exist")
    # Refuse here, with the reason, what the notebook would refuse with a traceback: a warehouse a
    # writer holds (WarehouseLockedError) or a build that did not finish (IncompleteBuildError).
    connect_marts(warehouse).close()
    out_dir = Path(out_dir).expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)

    params = {**(parameters or {}), "warehouse": str(warehouse), "out_dir": str(out_dir), "report_name": name}
    nb = jupytext.read(source)
    executed_path = out_dir / f"{name}.ipynb"
    # papermill logs each cell at INFO through its own logger; keep library use quiet.
    logging.getLogger("papermill").setLevel(logging.WARNING)
    with _this_interpreters_kernel():
        executed = papermill.execute_notebook(
            nb,
            str(executed_path),
            parameters=params,
            kernel_name=KERNEL_NAME,
            language="python",
            progress_bar=False,
            request_save_on_cell_execute=False,
            cwd=str(PROJECT_ROOT),
            # The kernel's own log (e.g. its TCP transport warning) is not report content.
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        )

    title = TITLES.get(name, f"{name} report")
    executed.metadata["title"] = title
    body, _ = _exporter().from_notebook_node(
        nbformat.from_dict(executed), resources={"metadata": {"name": title}}
    )
    html_path = out_dir / f"{name}.html"
    html_path.write_text(body, encoding="utf-8")
    return html_path


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
