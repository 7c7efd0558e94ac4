"""The ground floor: connections to the embedded warehouse and the lock that makes one
segwise run at a time own it.

Two runs on one warehouse would interleave their loads, builds and syncs (the second
generating raw files under the first's feet, the first reporting the second's data), so
every command that writes takes an exclusive lock first: an advisory ``flock`` on
``<warehouse>.lock`` beside the DuckDB file, held for the whole command and released by
the kernel if the process dies. A second run waits up to ``SEGWISE_LOCK_WAIT_S`` seconds
(default 0) and then refuses, naming the run that holds the warehouse. The lock is
re-entrant within a process, so ``run`` can hold it across its steps.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

# The activation feed every destination reads (dbt model activation.sync_esp_members):
# consent, holdout and erasure are decided there, once.
FEED_MODEL = "sync_esp_members"
FEED = f"activation.{FEED_MODEL}"


class WarehouseBusy(RuntimeError):
    """Another segwise run holds the warehouse."""


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        yield con
    finally:
        con.close()


_held: dict[str, int] = {}  # lock path -> depth, for this process
_guard = threading.Lock()


def lock_path(duckdb_path: Path) -> Path:
    return duckdb_path.with_name(duckdb_path.name + ".lock")


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another segwise run"
    return (f"pid {info.get('pid')} ({info.get('command', '?')}, since "
            f"{info.get('started_at', '?')} UTC)")


@contextmanager
def exclusive(duckdb_path: Path, wait_s: float | None = None) -> Iterator[None]:
    """Hold the warehouse for this process (re-entrant). Raises ``WarehouseBusy`` when
    another process holds it for longer than ``wait_s`` (``SEGWISE_LOCK_WAIT_S``)."""
    path = lock_path(duckdb_path)
    key = str(path.resolve())
    with _guard:
        if _held.get(key):
            _held[key] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _guard:
                _held[key] -= 1
        return
    if wait_s is None:
        wait_s = float(os.environ.get("SEGWISE_LOCK_WAIT_S", "0"))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseBusy(
                        f"the warehouse {duckdb_path} is in use by {_holder(path)}: wait for "
                        "it to finish (or set SEGWISE_LOCK_WAIT_S to wait), then run again"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({
            "pid": os.getpid(), "command": " ".join(Path(a).name for a in sys.argv[:3]),
            "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")}).encode())
        with _guard:
            _held[key] = 1
        try:
            yield
        finally:
            with _guard:
                _held.pop(key, None)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
