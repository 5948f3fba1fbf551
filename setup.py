"""The wheel carries what the package runs besides its Python: the dbt project, the report
notebooks and the Great Expectations suites (pyproject.toml holds everything else).

They live at the repository's top level, where the people who change them work; `pip install .`
(or a wheel built from the repository) copies them into the package as entitlements/_project/, and
entitlements/warehouse.py finds them there. An editable install (`pip install -e .`) reads them in
the checkout.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = ("dbt_project", "notebooks", "expectations/gx")  # entitlements/warehouse.py's folders
# What dbt, GX and Jupyter write beside them in a checkout: not part of the project.
NOT_BUNDLED = shutil.ignore_patterns(
    "target",
    "logs",
    "dbt_packages",
    ".user.yml",
    "uncommitted",
    "__pycache__",
    "*.ipynb",
    ".ipynb_checkpoints",
)


class BuildWithProject(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # the checkout's own folders are used
            return
        for name in BUNDLED:
            copy = Path(self.build_lib) / "entitlements" / "_project" / name
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(ROOT / name, copy, ignore=NOT_BUNDLED)


setup(cmdclass={"build_py": BuildWithProject})
