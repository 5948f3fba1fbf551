"""The dbt child process: several dbt commands, one parse (dbtRunner with the parsed manifest).

Run by dbt_runner.DbtSession as `python -m entitlements.transform.dbt_child SPEC` (JSON: the
options every command shares and the target folder). It imports dbt and parses the project at
once, then reads the commands (a JSON list on one line of stdin), so the parent can start it
before it knows them; no line, or an empty list, ends it unused. Each command's run_results.json
is kept as run_results.<n>.json, since the next command overwrites it. Exit status: 0 all ran
cleanly (or none was sent), 1 a command failed (the ones after it did not run), 2 the project did
not parse.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from entitlements.warehouse import collecting_nothing


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    common, target = spec["common"], Path(spec["target"])
    with collecting_nothing():  # dbt's modules and the parsed project live as long as this process
        from dbt.cli.main import dbtRunner  # late: importing dbt is most of this process's start

        parsed = dbtRunner().invoke(["parse", *common, "--no-write-json"])
    if not parsed.success:
        return 2
    write_nodes(parsed.result, target / NODES_FILE)
    line = sys.stdin.readline()
    commands = json.loads(line) if line.strip() else []
    runner = dbtRunner(manifest=parsed.result)
    for index, command in enumerate(commands):
        kept = target / f"run_results.{index}.json"
        if command[:1] and command[0] in OWN_ARTIFACTS:
            outcome = runner.invoke([*command, *common, "--no-write-json"])
            if outcome.result is not None and hasattr(outcome.result, "write"):
                outcome.result.write(str(kept))
        else:
            outcome = runner.invoke([*command, *common])
            results = target / "run_results.json"
            if results.exists():
                shutil.copyfile(results, kept)
                results.unlink()
        if not outcome.success:
            return 1
    return 0


# What entitlements reads of dbt's manifest, in manifest.json's own shape ({"nodes": ...,
# "sources": ...}, each with the keys below): writing the whole manifest.json (5 MB) would cost
# this project 0.9 s of every run's critical path (dbt parses while the ingest runs).
NODES_FILE = "nodes.json"


def write_nodes(manifest: Any, path: Path) -> None:
    """The manifest's nodes and sources as entitlements.transform.dbt_runner (a failure's tags) and
    entitlements.quality.gates.record_dbt_tests (a test's model, column, severity, arguments) read
    them."""

    def entry(node: Any) -> dict[str, Any]:
        depends_on = getattr(node, "depends_on", None)
        metadata = getattr(node, "test_metadata", None)
        entry = {
            "unique_id": node.unique_id,
            "name": node.name,
            "resource_type": str(getattr(node.resource_type, "value", node.resource_type)),
            "schema": node.schema,
            "alias": getattr(node, "alias", None),
            "identifier": getattr(node, "identifier", None),
            "tags": list(getattr(node, "tags", ())),
            "depends_on": {"nodes": list(getattr(depends_on, "nodes", ()))},
            "attached_node": getattr(node, "attached_node", None),
            "column_name": getattr(node, "column_name", None),
            "config": {"severity": getattr(getattr(node, "config", None), "severity", None)},
            "test_metadata": (
                {"name": metadata.name, "kwargs": metadata.kwargs} if metadata is not None else None
            ),
        }
        return {key: value for key, value in entry.items() if value is not None}  # absent, as in the manifest

    nodes = {unique_id: entry(node) for unique_id, node in manifest.nodes.items()}
    sources = {unique_id: entry(node) for unique_id, node in manifest.sources.items()}
    partial = path.with_name(f"{path.name}.{os.getpid()}")
    partial.write_text(json.dumps({"nodes": nodes, "sources": sources}, default=str))
    partial.replace(path)


# Commands whose run results this child writes itself: dbt would also write manifest.json after
# each (0.4 to 0.8 s for this project), and nothing a command runs changes what NODES_FILE holds.
# Not `docs generate`: its catalog is what it is run for.
OWN_ARTIFACTS = frozenset({"build", "compile", "run", "test", "seed", "snapshot"})


if __name__ == "__main__":
    code = main(sys.argv[1:])
    # Every artifact is written by now. Tearing down dbt's objects would take the parent's wait
    # most of a second more: flush what is buffered and leave.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
