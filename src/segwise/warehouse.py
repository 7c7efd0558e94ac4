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
# Where consent is decided (dbt model marts.customer_consent): who must be unsubscribed.
CONSENT = "marts.customer_consent"
# The built segment catalog and each segment's destination settings (generated models).
CATALOG = "segmentation.segment_catalog"
SEGMENT_DESTINATIONS = "segmentation.segment_destinations"


# Every table segwise itself keeps in the warehouse (schema ``ops``): state a re-run on
# another worker must see, and BI can audit. Idempotent; columns added later are added
# with ``alter … add column if not exists`` so an older warehouse upgrades in place. The
# two that dbt reads as sources (destination_suppressions, erasure_requests) are also
# created by the dbt hook macro ``create_ops_sources`` for a standalone ``dbt build`` — a
# test keeps its columns equal to these.
OPS_DDL = [
    "create schema if not exists ops",
    """create table if not exists ops.build_runs (
        run_id varchar, built_at timestamp, dataset varchar, as_of_date date,
        nodes_ok integer, nodes_failed integer)""",
    """create table if not exists ops.validation_runs (
        run_id varchar, validated_at timestamp, success boolean, failures_json varchar)""",
    # relations (schema.table) the failing nodes touch; null = unknown, i.e. everything
    "alter table ops.build_runs add column if not exists failed_relations_json varchar",
    # ---- activation: the one ledger (what each destination holds, per segment: ESPs,
    # the webhook, files and ad audiences alike), its audit and compliance records
    """create table if not exists ops.destination_ledger (
        destination varchar, segment_name varchar, customer_id varchar, email varchar,
        synced_at timestamp, run_id varchar)""",
    "alter table ops.destination_ledger add column if not exists fields_hash varchar",
    # when a mirror sync took the member off the list (null: on it). The row stays: the
    # person is still a contact of the account, so a later withdrawal reaches them
    "alter table ops.destination_ledger add column if not exists left_at timestamp",
    """create table if not exists ops.destination_suppressions (
        destination varchar, email varchar, remote_status varchar, discovered_at timestamp,
        run_id varchar)""",
    """create table if not exists ops.sync_rejections (
        run_id varchar, destination varchar, segment_name varchar, customer_id varchar,
        email varchar, operation varchar, error varchar, rejected_at timestamp)""",
    """create table if not exists ops.sync_runs (
        run_id varchar, segment_name varchar, destination varchar, mode varchar,
        started_at timestamp, finished_at timestamp, status varchar, guard_outcome varchar,
        planned_adds integer, planned_removes integer, sent_adds integer,
        succeeded_adds integer, rejected_adds integer, sent_removes integer,
        succeeded_removes integer, suppressed integer, requests integer, writes integer,
        rate_limited integer, duration_s double, forced boolean, dry_run boolean,
        desired_members integer, planned_updates integer, sent_updates integer,
        succeeded_updates integer)""",
    "alter table ops.sync_runs add column if not exists concurrency integer",
    "alter table ops.sync_runs add column if not exists throttled_s double",
    "alter table ops.sync_runs add column if not exists error varchar",
    "alter table ops.sync_runs add column if not exists planned_revocations integer",
    "alter table ops.sync_runs add column if not exists revoked integer",
    # consent withdrawn: who was unsubscribed at which destination, when, by which run
    """create table if not exists ops.destination_revocations (
        destination varchar, customer_id varchar, email varchar, status varchar,
        detail varchar, revoked_at timestamp, run_id varchar)""",
    # loads of the user's files (segwise load --mapping): each file once (append is
    # idempotent by the SHA-256 of its bytes), and every row that did not parse
    """create table if not exists ops.load_files (
        load_id varchar, raw_table varchar, path varchar, sha256 varchar, mode varchar,
        rows_loaded bigint, rows_rejected bigint, loaded_at timestamp)""",
    """create table if not exists ops.load_rejections (
        load_id varchar, path varchar, raw_table varchar, row_number bigint, reason varchar,
        payload varchar, rejected_at timestamp)""",
    # erasure (segwise forget): only a SHA-256 of the normalised address is kept
    """create table if not exists ops.erasure_requests (
        request_id varchar, email_sha256 varchar, requested_at timestamp, reason varchar)""",
    """create table if not exists ops.erasure_receipts (
        request_id varchar, destination varchar, email_sha256 varchar, status varchar,
        reference varchar, detail varchar, recorded_at timestamp)""",
]


def ensure_ops(con: duckdb.DuckDBPyConnection) -> None:
    for stmt in OPS_DDL:
        con.execute(stmt)
    _retire_export_state(con)


def _retire_export_state(con: duckdb.DuckDBPyConnection) -> None:
    """Warehouses from before the one ledger kept file exports in ``ops.export_state``:
    move those rows into ``ops.destination_ledger`` (so the next export diffs against
    them) and drop the old tables."""
    old = {r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = 'ops' "
        "and table_name in ('export_state', 'export_runs')").fetchall()}
    if "export_state" in old:
        con.execute("insert into ops.destination_ledger (destination, segment_name, "
                    "customer_id, synced_at, run_id) select destination, segment_name, "
                    "customer_id, exported_at, run_id from ops.export_state")
        con.execute("drop table ops.export_state")
    if "export_runs" in old:
        con.execute("drop table ops.export_runs")


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


def serving_path(duckdb_path: Path) -> Path:
    """The read-only copy BI tools connect to: ``<warehouse dir>/serving/<same name>``
    (``SEGWISE_SERVING_DIR`` moves it). Same file name, so the catalog name that dbt's
    views refer to is the same."""
    folder = os.environ.get("SEGWISE_SERVING_DIR")
    return (Path(folder) if folder else duckdb_path.parent / "serving") / duckdb_path.name


def publish(duckdb_path: Path) -> Path:
    """Publish the warehouse as it is now to the serving file, atomically: everything is
    copied into a new file (live rows only — nothing deleted, e.g. erased, comes along),
    which then replaces the serving file in one rename. A reader never waits and never
    sees a half-built state: connections opened before keep the previous complete state,
    connections opened after see the new one, and no reader can block a build."""
    target = serving_path(duckdb_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.publishing")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    quoted = str(tmp).replace("'", "''")
    with connect(duckdb_path) as con:
        (name,) = con.execute("select current_database()").fetchall()[0]
        con.execute(f"attach '{quoted}' as segwise_publish")
        try:
            con.execute(f'copy from database "{name}" to segwise_publish')
        finally:
            con.execute("detach segwise_publish")
    os.replace(tmp, target)
    return target


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
