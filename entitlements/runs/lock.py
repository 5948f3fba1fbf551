"""One run at a time per warehouse: a lock file beside it, held for the whole command.

DuckDB's own file lock lasts only while a connection is open, and a run opens and closes the
warehouse several times (ingest, gates, dbt, reports); between two of those another run could
slip in and build from this run's unvalidated loads. So every command that writes the warehouse
(`run`, `ingest`, `validate`, `build`, `migrate validate`, `docs`) holds ``<warehouse>.lock`` from
start to end:

- the lock is an advisory ``flock`` on the file, which the kernel releases when the holder dies
  (even by ``kill -9``), so a crash never leaves the warehouse locked for good;
- the file holds the holder's pid, command and start time, so a refused command can say who holds
  it; a file still holding a holder's details when the lock is free was left by a process that
  died: it is cleared, and the caller gets a note saying so;
- the lock is re-entrant within a process (`run` calls the steps that `ingest` and `build` also
  call on their own).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from entitlements.warehouse import WarehouseLockedError

_held: dict[Path, int] = {}  # lock path -> depth, in this process


@dataclass(frozen=True)
class LockHolder:
    pid: int
    command: str
    started_at: str

    def describe(self) -> str:
        return f"`entitlements {self.command}` (pid {self.pid}, started {self.started_at} UTC)"


def lock_path(warehouse: Path) -> Path:
    warehouse = Path(warehouse).expanduser().resolve()
    return warehouse.with_name(warehouse.name + ".lock")


def _holder(text: str) -> LockHolder | None:
    try:
        data = json.loads(text)
        return LockHolder(int(data["pid"]), str(data["command"]), str(data["started_at"]))
    except (ValueError, KeyError, TypeError):
        return None


def read_holder(warehouse: Path) -> LockHolder | None:
    """Who the lock file names (a live holder, or a dead one whose lock is stale)."""
    try:
        return _holder(lock_path(warehouse).read_text())
    except OSError:
        return None


@contextlib.contextmanager
def run_lock(warehouse: Path, command: str, notes: list[str] | None = None) -> Iterator[None]:
    """Hold the warehouse's run lock for the block; WarehouseLockedError at once if another holds it.

    A stale lock (its holder died) is cleared, and a sentence saying so is appended to `notes`.
    """
    path = lock_path(warehouse)
    if path in _held:
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read_holder(warehouse)
            by = f" by {holder.describe()}" if holder else ""
            raise WarehouseLockedError(
                f"warehouse {Path(warehouse)} is in use{by}: one command at a time may change it."
                " Wait for that one to finish and run again; nothing was changed."
            ) from None
        previous = os.read(fd, 4096).decode("utf-8", "replace").strip()
        stale = _holder(previous) if previous else None
        if previous and notes is not None:
            who = stale.describe() if stale else "a process that left an unreadable lock file"
            notes.append(
                f"cleared a stale lock on {Path(warehouse)} left by {who}, which ended without"
                " finishing (files it left unvalidated go through the next landing gate; a build it left"
                " unfinished keeps readers out until the next build)"
            )
        me = {
            "pid": os.getpid(),
            "command": command,
            "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        os.fsync(fd)
        _held[path] = 1
        try:
            yield
        finally:
            del _held[path]
            # Emptied, not removed: removing would let a waiting process lock an unlinked file.
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock
