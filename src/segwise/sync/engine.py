"""Diff-based, guarded, consent-safe, resumable segment sync to an ESP.

State lives in the warehouse:

* ``ops.destination_ledger`` — what we believe each destination holds: one row per
  destination, segment and customer that segwise added (so ``mirror`` only ever removes
  members segwise itself added);
* ``ops.destination_suppressions`` — addresses the ESP reported as unsubscribed/cleaned:
  never pushed again, never "fixed";
* ``ops.sync_runs`` — one audit row per run (planned / sent / succeeded / rejected, guard
  outcome, requests, 429s, duration); ``ops.sync_rejections`` — per-member errors.

The ledger is updated after every batch (a checkpoint): a crash between batches loses at
most the batch in flight, whose requests are idempotent and are simply sent again.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from segwise.load.warehouse import connect
from segwise.ops import GateClosed, assert_gate_open, list_segments, utcnow
from segwise.settings import Settings
from segwise.sync.destinations.base import Contact, HttpDestination
from segwise.sync.guards import GuardConfig, evaluate_guards

DDL = [
    "create schema if not exists ops",
    """create table if not exists ops.destination_ledger (
        destination varchar, segment_name varchar, customer_id varchar, email varchar,
        synced_at timestamp, run_id varchar)""",
    "alter table ops.destination_ledger add column if not exists fields_hash varchar",
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
]
MODES = ("upsert", "mirror", "add_only")


@dataclass
class SyncPlan:
    segment: str
    destination: str
    mode: str
    desired: pd.DataFrame  # customer_id, email, first_name, last_name
    held: pd.DataFrame  # customer_id, email (ledger)
    adds: pd.DataFrame
    removes: pd.DataFrame
    updates: pd.DataFrame  # held members whose synced fields changed (not in add_only)
    excluded_no_consent: int = 0
    excluded_suppressed: int = 0


@dataclass
class SyncResult:
    run_id: str
    status: str  # succeeded | blocked | dry_run | partial
    plan: SyncPlan
    guard_outcome: str = "passed"
    sent_adds: int = 0
    succeeded_adds: int = 0
    rejected_adds: int = 0
    sent_removes: int = 0
    succeeded_removes: int = 0
    sent_updates: int = 0
    succeeded_updates: int = 0
    suppressed: int = 0
    rejections: list[dict] = field(default_factory=list)


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    for stmt in DDL:
        con.execute(stmt)


def plan_sync(con: duckdb.DuckDBPyConnection, segment: str, destination: str,
              mode: str) -> SyncPlan:
    """Who should be in the destination list, and the difference to the ledger.

    Only members outside the holdout, with an email, with email consent and with no
    unsubscribe / bounce / complaint anywhere (our data or the ESP's) are ever pushed.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    ensure_tables(con)
    if segment not in list_segments(con):
        raise ValueError(f"unknown segment {segment!r}")
    members = con.execute(f"""
        select s.customer_id, c.email, c.first_name, c.last_name,
               coalesce(c.has_email_consent, false) as consent,
               (e.last_unsubscribe_at is not null or e.last_bounce_at is not null
                or e.last_complaint_at is not null
                or sup.email is not null) as suppressed
        from segments."{segment}" as s
        join marts.dim_customers as c on c.customer_id = s.customer_id
        left join marts.customer_engagement as e on e.customer_id = s.customer_id
        left join (select distinct email from ops.destination_suppressions
                   where destination = ?) as sup on sup.email = c.email
        where not coalesce(s.is_holdout, false) and c.email is not null
        order by s.customer_id""", [destination]).df()
    no_consent = int((~members["consent"]).sum())
    suppressed = int((members["consent"] & members["suppressed"]).sum())
    desired = members[members["consent"] & ~members["suppressed"]][
        ["customer_id", "email", "first_name", "last_name"]].reset_index(drop=True)
    desired["fields_hash"] = [fields_hash(r.email, r.first_name, r.last_name)
                              for r in desired.itertuples()]
    held = con.execute("select customer_id, email, fields_hash from ops.destination_ledger "
                       "where destination = ? and segment_name = ? order by customer_id",
                       [destination, segment]).df()
    adds = desired[~desired["customer_id"].isin(held["customer_id"])].reset_index(drop=True)
    both = desired.merge(held[["customer_id", "fields_hash"]], on="customer_id",
                         suffixes=("", "_held"))
    updates = (both[both["fields_hash"] != both["fields_hash_held"]]
               [desired.columns].reset_index(drop=True)
               if mode != "add_only" else desired.iloc[0:0])
    if mode == "mirror":
        removes = held[~held["customer_id"].isin(desired["customer_id"])].reset_index(drop=True)
    else:
        removes = held.iloc[0:0]
    return SyncPlan(segment, destination, mode, desired, held, adds, removes, updates,
                    no_consent, suppressed)


def fields_hash(email, first_name, last_name) -> str:
    """What the destination holds about a member: a change means a field update."""
    import hashlib

    blob = "\x1f".join(str(v or "") for v in (email, first_name, last_name))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _batches(frame: pd.DataFrame, size: int):
    for start in range(0, len(frame), size):
        yield frame.iloc[start:start + size]


def _contacts(frame: pd.DataFrame) -> list[Contact]:
    return [Contact(r.customer_id, r.email, {"FNAME": r.first_name or "",
                                              "LNAME": r.last_name or ""})
            for r in frame.itertuples()]


def sync_segment(settings: Settings, segment: str, dest: HttpDestination, mode: str = "upsert",
                 dry_run: bool = False, force: bool = False,
                 guards: GuardConfig | None = None, min_size: int = 0,
                 crash_after_batches: int | None = None) -> SyncResult:
    """Sync one segment to one destination. ``crash_after_batches`` is a test hook that
    simulates a process dying after N checkpointed batches."""
    run_id = uuid.uuid4().hex[:12]
    started = utcnow()
    t0 = time.perf_counter()
    with connect(settings.duckdb_path) as con:
        ensure_tables(con)
        plan = plan_sync(con, segment, dest.name, mode)
        result = SyncResult(run_id, "succeeded", plan)
        blocked: list[str] = []
        try:
            assert_gate_open(con)
        except GateClosed as exc:
            blocked.append(f"data gate: {exc}")
        # the size at the last completed sync (a crashed run leaves no row: resume is free)
        last_rows = con.execute(
            "select desired_members from ops.sync_runs where destination = ? and "
            "segment_name = ? and status in ('succeeded', 'partial') "
            "order by started_at desc limit 1", [dest.name, segment]).fetchall()
        last = last_rows[0][0] if last_rows else 0
        blocked += evaluate_guards(guards or GuardConfig(), desired=len(plan.desired),
                                   held=len(plan.held), removes=len(plan.removes),
                                   min_size=min_size, previous_size=last)
        if blocked:
            result.guard_outcome = "; ".join(blocked) + (" (forced)" if force else "")
            if not force:
                result.status = "blocked"
        if dry_run:
            result.status = "dry_run" if result.status != "blocked" else "blocked"
        if result.status in ("succeeded",):
            _execute(con, result, dest, crash_after_batches)
        _record_run(con, result, dest, started, time.perf_counter() - t0, force, dry_run)
    return result


def _execute(con: duckdb.DuckDBPyConnection, result: SyncResult, dest: HttpDestination,
             crash_after_batches: int | None) -> None:
    plan = result.plan
    for done, batch in enumerate(_batches(plan.adds, dest.batch_size), start=1):
        contacts = _contacts(batch)
        hashes = dict(zip(batch["customer_id"], batch["fields_hash"], strict=True))
        by_email = {c.email.lower(): c for c in contacts}
        upserted = dest.upsert_contacts(contacts)
        result.sent_adds += len(contacts)
        ok_contacts, now = [], utcnow()
        for r in upserted:
            c = by_email[r.email.lower()]
            if r.ok:
                ok_contacts.append(c)
            elif r.remote_status:  # the ESP says unsubscribed/cleaned: remember, never undo
                result.suppressed += 1
                con.execute("insert into ops.destination_suppressions values (?, ?, ?, ?, ?)",
                            [dest.name, c.email, r.remote_status, now, result.run_id])
            else:
                result.rejected_adds += 1
                _reject(con, result, dest, c, "upsert", r.error)
        added = dest.add_to_list(plan.segment, ok_contacts) if ok_contacts else []
        rows = []
        for r in added:
            c = by_email[r.email.lower()]
            if r.ok:
                rows.append((dest.name, plan.segment, c.customer_id, c.email, now,
                             result.run_id, hashes[c.customer_id]))
            else:
                result.rejected_adds += 1
                _reject(con, result, dest, c, "add_to_list", r.error)
        if rows:  # checkpoint: the batch is recorded before the next one is sent
            ledger_rows = pd.DataFrame(rows, columns=[  # noqa: F841 (read by duckdb)
                "destination", "segment_name", "customer_id", "email", "synced_at", "run_id",
                "fields_hash"])
            con.execute("insert into ops.destination_ledger by name select * from ledger_rows")
        result.succeeded_adds += len(rows)
        if crash_after_batches is not None and done >= crash_after_batches:
            raise SystemExit(f"simulated crash after {done} batches")
    for batch in _batches(plan.updates, dest.batch_size):
        contacts = _contacts(batch)
        hashes = dict(zip(batch["customer_id"], batch["fields_hash"], strict=True))
        by_email = {c.email.lower(): c for c in contacts}
        result.sent_updates += len(contacts)
        for r in dest.upsert_contacts(contacts):
            c = by_email[r.email.lower()]
            if r.ok:
                result.succeeded_updates += 1
                con.execute("update ops.destination_ledger set fields_hash = ?, email = ? "
                            "where destination = ? and segment_name = ? and customer_id = ?",
                            [hashes[c.customer_id], c.email, dest.name, plan.segment,
                             c.customer_id])
            elif not r.remote_status:
                _reject(con, result, dest, c, "update", r.error)
    for batch in _batches(plan.removes, dest.batch_size):
        contacts = [Contact(r.customer_id, r.email) for r in batch.itertuples()]
        removed = dest.remove_from_list(plan.segment, contacts)
        result.sent_removes += len(contacts)
        gone = [c.customer_id for c, r in zip(contacts, removed, strict=True) if r.ok]
        for c, r in zip(contacts, removed, strict=True):
            if not r.ok:
                _reject(con, result, dest, c, "remove_from_list", r.error)
        if gone:
            con.execute("delete from ops.destination_ledger where destination = ? and "
                        "segment_name = ? and customer_id in (select unnest(?))",
                        [dest.name, plan.segment, gone])
        result.succeeded_removes += len(gone)
    if result.rejected_adds or len(result.rejections) > result.rejected_adds:
        result.status = "partial"


def _reject(con, result: SyncResult, dest, contact: Contact, operation: str, error) -> None:
    row = {"customer_id": contact.customer_id, "email": contact.email,
           "operation": operation, "error": str(error)}
    result.rejections.append(row)
    con.execute("insert into ops.sync_rejections values (?, ?, ?, ?, ?, ?, ?, ?)",
                [result.run_id, dest.name, result.plan.segment, contact.customer_id,
                 contact.email, operation, str(error), utcnow()])


def _record_run(con, result: SyncResult, dest: HttpDestination, started, duration: float,
                force: bool, dry_run: bool) -> None:
    p = result.plan
    con.execute("insert into ops.sync_runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [result.run_id, p.segment, dest.name, p.mode, started, utcnow(), result.status,
                 result.guard_outcome, len(p.adds), len(p.removes), result.sent_adds,
                 result.succeeded_adds, result.rejected_adds, result.sent_removes,
                 result.succeeded_removes, result.suppressed, dest.stats.requests,
                 dest.stats.writes, dest.stats.rate_limited, duration, force, dry_run,
                 len(p.desired), len(p.updates), result.sent_updates, result.succeeded_updates])
