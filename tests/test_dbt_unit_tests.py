"""The dbt unit tests (fixed input rows, expected output rows: the models' logic, not the data).

`entitlements run` leaves them out of its build (they do not depend on the data), so they run
here, once, against a copy of the demo warehouse (a unit test needs its model's parents to exist
for their column types). The legacy migration's unit tests run in every `migrate` build, whose
selection takes them with their models.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from entitlements.transform.dbt_runner import run_dbt

pytestmark = pytest.mark.integration


def test_every_dbt_unit_test_passes(warehouse_copy: Path, as_of: date) -> None:
    result = run_dbt(
        "test", warehouse_copy, as_of, "--select", "test_type:unit", "--exclude", "tag:migration"
    )
    unit_tests = [r for r in result.results if r["unique_id"].startswith("unit_test.")]
    assert result.ok, "\n".join(result.error_lines(40))
    assert len(unit_tests) >= 40, f"only {len(unit_tests)} unit tests ran: is the selection right?"
    assert {r["status"] for r in unit_tests} == {"pass"}
