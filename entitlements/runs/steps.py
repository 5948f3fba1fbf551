"""One shape for every guarded step of `entitlements run` and `entitlements migrate validate`.

A step does its work and is judged by its gate: an ingest that refuses a file, a Great
Expectations suite with a critical failure, a dbt command whose run_results.json holds an error or
a failing test. When the gate fails, the step undoes what it landed, records the failure, and stops
the run with an error naming the step, what failed and what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from entitlements.ingest.errors import IngestError
from entitlements.quality.gates import GateFailure
from entitlements.transform.dbt_runner import DbtResult

T = TypeVar("T")


class StepError(Exception):
    """A step's gate failed: `[<run kind> <step>] <what failed>` and what to do."""

    kind = ""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"[{self.kind}{step}] {message}")
        self.step = step


class DbtFailure(Exception):
    """A dbt command did not run cleanly; its message lists the failed nodes from run_results.json."""

    def __init__(self, what: str, result: DbtResult, lines: list[str] | None = None) -> None:
        super().__init__(f"{what} failed:\n" + "\n".join(lines or result.error_lines()))
        self.result = result


def require_ok(what: str, result: DbtResult) -> DbtResult:
    if not result.ok:
        raise DbtFailure(what, result)
    return result


# What a gate raises when the data (not the program) is at fault.
GATE_ERRORS: tuple[type[Exception], ...] = (IngestError, GateFailure, DbtFailure)


@dataclass(frozen=True)
class Steps:
    """The steps of one run: how it records a step's outcome and which error stops it."""

    error: type[StepError]
    record: Callable[[str, str, str], None]  # (step, status, detail)

    def guard(
        self,
        step: str,
        work: Callable[[], T],
        *,
        undo: Callable[[Exception], str] | None = None,
        advice: str = "",
        record_ok: Callable[[T], str] | None = None,
    ) -> T:
        """Run work; on a gate error run undo(error) (it returns a sentence saying what was undone),
        record the failure and raise the run's error. record_ok, if given, records success with its
        detail."""
        try:
            outcome = work()
        except GATE_ERRORS as exc:
            undone = undo(exc) if undo is not None else ""
            self.record(step, "failed", str(exc))
            message = "\n".join(part for part in (str(exc), undone, advice) if part)
            raise self.error(step, message) from exc
        if record_ok is not None:
            self.record(step, "ok", record_ok(outcome))
        return outcome
