"""The dbt child process: several dbt commands, one parse (dbtRunner with the parsed manifest).

Run by dbt_runner.run_dbt_commands as `python -m entitlements.transform.dbt_child SPEC` (JSON:
the options every command shares, the target folder, the commands). Each command's
run_results.json is kept as run_results.<n>.json, since the next command overwrites it. Exit
status: 0 all ran cleanly, 1 a command failed (the ones after it did not run), 2 the project did
not parse.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from dbt.cli.main import dbtRunner  # late: importing dbt is most of this process's start

    spec = json.loads(argv[0])
    common, target = spec["common"], Path(spec["target"])
    parsed = dbtRunner().invoke(["parse", *common])
    if not parsed.success:
        return 2
    runner = dbtRunner(manifest=parsed.result)
    for index, command in enumerate(spec["commands"]):
        outcome = runner.invoke([*command, *common])
        results = target / "run_results.json"
        if results.exists():
            shutil.copyfile(results, target / f"run_results.{index}.json")
            results.unlink()
        if not outcome.success:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
