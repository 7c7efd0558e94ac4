"""The ground floor: connections to the warehouse and the lock that makes one segwise run
at a time own it.

The warehouse is the embedded DuckDB file (the default) or PostgreSQL
(``SEGWISE_DBT_TARGET=postgres``, see ``segwise.postgres``). ``connect(settings)`` opens
the one the settings name; both answer the same small interface — ``execute(sql,
params)`` with ``?`` placeholders, ``temp_table``, ``frame_table``, ``insert_frame``,
``sha256_hex`` — so the package's SQL is written once, in the dialect both engines speak.

Two runs on one warehouse would interleave their loads, builds and syncs (the second
generating raw files under the first's feet, the first reporting the second's data), so
every command that writes takes an exclusive lock first: an advisory ``flock`` on
``<warehouse>.lock`` beside the DuckDB file, held for the whole command and released by
the kernel if the process dies. A second run waits up to ``SEGWISE_LOCK_WAIT_S`` seconds
(default 0) and then refuses, naming the run that holds the warehouse. The lock is
re-entrant within a process, so ``run`` can hold it across its steps. On PostgreSQL the
lock is a session advisory lock in the warehouse database itself, so runs on different
machines exclude each other too.
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
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from segwise import postgres

if TYPE_CHECKING:
    from segwise.settings import Settings

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
    # every expectation of every validation run, passing ones too, with what it expected
    # and what it saw (the run report shows them: nothing depends on Data Docs' CDN)
    """create table if not exists ops.validation_results (
        run_id varchar, suite varchar, batch varchar, expectation varchar,
        column_name varchar, success boolean, expected varchar, observed varchar,
        detail varchar, validated_at timestamp)""",
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
        rate_limited integer, duration_s double precision, forced boolean, dry_run boolean,
        desired_members integer, planned_updates integer, sent_updates integer,
        succeeded_updates integer)""",
    "alter table ops.sync_runs add column if not exists concurrency integer",
    "alter table ops.sync_runs add column if not exists throttled_s double precision",
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
    # the scoring step (segwise.predict): one row per model run — what it was trained on,
    # its version (hash of code + parameters), metrics and where its model card is
    """create table if not exists ops.model_runs (
        run_id varchar, model varchar, status varchar, detail varchar, version_hash varchar,
        trained_at timestamp, as_of_date date, training_window_start date,
        training_window_end date, features_json varchar, params_json varchar,
        metrics_json varchar, rows_trained bigint, rows_scored bigint, card_path varchar)""",
    # erasure (segwise forget): only a SHA-256 of the normalised address is kept
    """create table if not exists ops.erasure_requests (
        request_id varchar, email_sha256 varchar, requested_at timestamp, reason varchar)""",
    """create table if not exists ops.erasure_receipts (
        request_id varchar, destination varchar, email_sha256 varchar, status varchar,
        reference varchar, detail varchar, recorded_at timestamp)""",
]


def ensure_ops(con) -> None:
    for stmt in OPS_DDL:
        con.execute(stmt)
    _retire_export_state(con)


def _retire_export_state(con) -> None:
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


def table_exists(con, schema: str, table: str) -> bool:
    """Is there a table or view ``schema.table`` (either engine)?"""
    return bool(con.execute("select count(*) from information_schema.tables where "
                            "table_schema = ? and table_name = ?",
                            [schema, table]).fetchall()[0][0])


class WarehouseBusy(RuntimeError):
    """Another segwise run holds the warehouse."""


class DuckConnection:
    """A DuckDB connection in the package's SQL interface (everything else DuckDB offers
    passes through, for the DuckDB-only paths: file readers, registered frames)."""

    engine = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.raw = con

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)

    def execute(self, statement: str, params: Any = None):
        return self.raw.execute(statement, params) if params is not None \
            else self.raw.execute(statement)

    def temp_table(self, name: str, select: str, params: Any = None) -> None:
        self.execute(f"create or replace temp table {name} as {select}", params)

    def frame_table(self, name: str, frame: pd.DataFrame, types: dict[str, str]) -> None:
        view = f"_frame_{name}"
        self.raw.register(view, frame)
        try:
            self.execute(f"create or replace temp table {name} as select "
                         + ", ".join(f'cast("{c}" as {types[c]}) as "{c}"'
                                     for c in frame.columns) + f" from {view}")
        finally:
            self.raw.unregister(view)

    def insert_frame(self, table: str, frame: pd.DataFrame) -> int:
        if frame.empty:
            return 0
        view = "_segwise_insert_frame"
        self.raw.register(view, frame)
        try:
            self.execute(f"insert into {table} by name select * from {view}")
        finally:
            self.raw.unregister(view)
        return len(frame)

    @staticmethod
    def sha256_hex(expr: str) -> str:
        return f"sha256({expr})"

    @staticmethod
    def matches_ci(expr: str) -> str:
        """``expr`` matches the regular expression in the next parameter, ignoring case."""
        return f"regexp_matches({expr}, ?, 'i')"

    @staticmethod
    def sample_sql(query: str, rows: int) -> str:
        """A deterministic sample of at most ``rows`` rows of ``query``."""
        return f"select * from ({query}) as q using sample reservoir({rows} rows) repeatable (7)"

    def to_parquet(self, query: str, path: Path) -> None:
        quoted = str(path).replace("'", "''")
        self.execute(f"copy ({query}) to '{quoted}' (format parquet)")

    def close(self) -> None:
        self.raw.close()


def as_connection(con: Any) -> Any:
    """A connection in the package's interface (a bare DuckDB connection is wrapped)."""
    return DuckConnection(con) if isinstance(con, duckdb.DuckDBPyConnection) else con


def is_postgres(target: Settings | Path | str) -> bool:
    return getattr(target, "dbt_target", "duckdb") == postgres.ENGINE


def pg_dsn_of(settings: Settings) -> dict[str, str]:
    return postgres.pg_dsn(env=settings.extra_env)


def describe(target: Settings | Path | str) -> str:
    """The warehouse, for messages."""
    if is_postgres(target):
        return postgres.describe(pg_dsn_of(target))
    return str(_duckdb_file(target))


def _duckdb_file(target: Settings | Path | str) -> Path:
    return Path(getattr(target, "duckdb_path", target))


# DuckDB's resources, set deliberately (profiles.yml sets the same for dbt): a memory
# limit it spills to temp_directory beyond instead of growing, a thread count, and no
# insertion order to keep (nothing segwise reads depends on it; every read sorts)
DUCKDB_DEFAULTS = {"memory_limit": "3GB", "threads": "2"}


def duckdb_config(target: Settings | Path | str | None = None) -> dict[str, Any]:
    """The DuckDB settings of every connection segwise opens on the warehouse:
    ``SEGWISE_DUCKDB_MEMORY_LIMIT`` (default 3GB), ``SEGWISE_DUCKDB_THREADS`` (2),
    ``preserve_insertion_order`` off, ``temp_directory`` ``<warehouse file>.tmp``."""
    env = {**os.environ, **(getattr(target, "extra_env", None) or {})}
    config: dict[str, Any] = {
        "memory_limit": env.get("SEGWISE_DUCKDB_MEMORY_LIMIT") or DUCKDB_DEFAULTS["memory_limit"],
        "threads": int(env.get("SEGWISE_DUCKDB_THREADS") or DUCKDB_DEFAULTS["threads"]),
        "preserve_insertion_order": False,
    }
    if target is not None:
        config["temp_directory"] = f"{_duckdb_file(target)}.tmp"
    return config


@contextmanager
def connect(target: Settings | Path | str, read_only: bool = False) -> Iterator[Any]:
    """A connection to the warehouse ``target`` names: settings (their engine), or the path
    of a DuckDB file."""
    if is_postgres(target):
        pg = postgres.PgConnection(pg_dsn_of(target), read_only=read_only)
        try:
            yield pg
        finally:
            pg.close()
        return
    path = _duckdb_file(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = DuckConnection(duckdb.connect(str(path), read_only=read_only,
                                        config=duckdb_config(target)))
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


def publish(target: Settings | Path | str) -> str:
    """Publish the warehouse as it is now for readers (BI), atomically; returns where
    readers connect. DuckDB: the serving file (``publish_file``); PostgreSQL: the serving
    schemas (``segwise.postgres.publish_schemas``)."""
    if is_postgres(target):
        with connect(target) as con:
            return postgres.publish_schemas(con.raw, serving_prefix())
    return str(publish_file(_duckdb_file(target)))


def serving_prefix() -> str:
    """On PostgreSQL readers query ``<prefix><schema>`` (``bi_marts``, ``bi_segments``…):
    ``SEGWISE_SERVING_SCHEMA_PREFIX``, default ``bi_``."""
    prefix = os.environ.get("SEGWISE_SERVING_SCHEMA_PREFIX", "bi_")
    if not prefix or not prefix.replace("_", "a").isalnum() or not prefix.islower():
        raise ValueError(f"SEGWISE_SERVING_SCHEMA_PREFIX must be lower-case letters, digits "
                         f"or _ (got {prefix!r})")
    return prefix


def is_published(target: Settings | Path | str) -> bool:
    """Has the warehouse been published for readers before?"""
    if is_postgres(target):
        with connect(target) as con:
            return bool(postgres.serving_schemas(con.raw, serving_prefix()))
    return serving_path(_duckdb_file(target)).exists()


def publish_file(duckdb_path: Path) -> Path:
    """Publish the DuckDB warehouse as it is now to the serving file, atomically: everything
    is copied into a new file (live rows only — nothing deleted, e.g. erased, comes along),
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


def _command() -> str:
    return " ".join(Path(a).name for a in sys.argv[:3])


@contextmanager
def exclusive(target: Settings | Path | str, wait_s: float | None = None) -> Iterator[None]:
    """Hold the warehouse for this process (re-entrant). Raises ``WarehouseBusy`` when
    another process holds it for longer than ``wait_s`` (``SEGWISE_LOCK_WAIT_S``)."""
    key = describe(target) if is_postgres(target) else str(
        lock_path(_duckdb_file(target)).resolve())
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
    hold = _advisory_lock if is_postgres(target) else _file_lock
    with hold(target, time.monotonic() + wait_s):
        with _guard:
            _held[key] = 1
        try:
            yield
        finally:
            with _guard:
                _held.pop(key, None)


def _busy(where: str, holder: str) -> WarehouseBusy:
    return WarehouseBusy(f"the warehouse {where} is in use by {holder}: wait for it to "
                         "finish (or set SEGWISE_LOCK_WAIT_S to wait), then run again")


@contextmanager
def _file_lock(target: Settings | Path | str, deadline: float) -> Iterator[None]:
    duckdb_path = _duckdb_file(target)
    path = lock_path(duckdb_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _busy(str(duckdb_path), _holder(path)) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({
            "pid": os.getpid(), "command": _command(),
            "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")}).encode())
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _advisory_lock(target: Settings, deadline: float) -> Iterator[None]:
    """A session advisory lock in the PostgreSQL warehouse, held by its own connection for
    the whole command (the server releases it if this process dies)."""
    con = postgres.open_raw(pg_dsn_of(target),
                            application=f"segwise {_command()} (pid {os.getpid()})")
    try:
        while not postgres.try_lock(con):
            if time.monotonic() >= deadline:
                raise _busy(describe(target), postgres.lock_holder(con))
            time.sleep(0.2)
        yield
    finally:
        con.close()
