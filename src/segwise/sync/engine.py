"""Diff-based, guarded, consent-safe, resumable segment sync to an ESP.

State lives in the warehouse:

* ``ops.destination_ledger`` — what we believe each destination holds: one row per
  destination, segment and customer that segwise added (so ``mirror`` only ever removes
  members segwise itself added); a member a mirror sync removed keeps the row with
  ``left_at`` set (still a contact of the account: a later withdrawal reaches them);
* ``ops.destination_suppressions`` — addresses the ESP reported as unsubscribed/cleaned:
  never pushed again, never "fixed";
* ``ops.sync_runs`` — one audit row per run (planned / sent / succeeded / rejected, guard
  outcome, requests, 429s, duration); ``ops.sync_rejections`` — per-member errors.

Batches go out in parallel, at most the destination's ``concurrency`` at a time (and
paced by its rate limits). The ledger is updated as each batch completes (a checkpoint):
a crash loses at most the batches in flight, whose requests are idempotent and are simply
sent again by the next run.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import pandas as pd

from segwise.lineage import load_manifest, upstream_relations
from segwise.ops import GateClosed, assert_gate_open, list_segments, utcnow
from segwise.settings import Settings
from segwise.sync.destinations.base import Contact, Destination, MemberResult
from segwise.sync.destinations.files import MEMBER_COLUMNS
from segwise.sync.guards import GuardConfig, evaluate_guards
from segwise.warehouse import (
    CONSENT,
    FEED,
    FEED_MODEL,
    SEGMENT_DESTINATIONS,
    as_connection,
    connect,
    ensure_ops,
)

MODES = ("upsert", "mirror", "add_only")
# what the destination holds about a member: the first 16 hex digits of SHA-256 over email,
# first and last name joined by U+001F (null as ''); a change means a field update
# personal fields (the segment's ``fields``) follow as ``name=value``, so a new value, a
# field added or one dropped is a change too; without fields the hash is as before
FIELDS_TEXT_SQL = ("coalesce(c.email, '') || chr(31) || coalesce(c.first_name, '') || chr(31) "
                   "|| coalesce(c.last_name, '')")
PROFILE, ATTRIBUTES = "marts.customer_profile", "marts.customer_attributes"
VARIANT = "variant"  # the field a segment with variants sends (the feed's column)


def fields_text_sql(fields: dict[str, tuple[str, str]] | None = None) -> str:
    """The text the ledger hash is taken of; ``fields``: name -> (kind, relation alias)."""
    parts = [FIELDS_TEXT_SQL]
    for name, (_, alias) in (fields or {}).items():
        parts.append(f"chr(31) || '{name}=' || coalesce(cast({alias}.{name} as varchar), '')")
    return " || ".join(parts)


def fields_hash_sql(con, fields: dict[str, tuple[str, str]] | None = None) -> str:
    return f"substr({con.sha256_hex(fields_text_sql(fields))}, 1, 16)"


def declared_fields(con, settings: Settings, segment: str, destination: str
                    ) -> dict[str, tuple[str, str]]:
    """The personal fields the segment sends to ``destination`` (its compiled
    ``segment_destinations.fields``): name -> (trait kind, ``p`` for customer_profile or
    ``a`` for customer_attributes). Only names of the trait catalogue are accepted, so
    nothing read from the warehouse reaches the SQL unchecked."""
    from segwise.segments.spec import load_traits

    has_column = con.execute(
        "select count(*) from information_schema.columns where table_schema = ? and "
        "table_name = ? and column_name = 'fields'",
        SEGMENT_DESTINATIONS.split(".")).fetchall()[0][0]
    if not has_column:  # a warehouse built before personal fields existed
        return {}
    rows = con.execute(f"select fields from {SEGMENT_DESTINATIONS} where segment_name = ? "
                       "and destination = ?", [segment, destination.split(":")[0]]).fetchall()
    names = [n for n in (rows[0][0] or "").split(",") if n] if rows else []
    if not names:
        return {}
    traits = load_traits(settings.project_dir)
    unknown = [n for n in names if n not in traits and n != VARIANT]
    if unknown:
        raise ValueError(f"segment {segment!r} sends unknown field(s) {unknown} to "
                         f"{destination}: recompile the segments and rebuild")
    # the A/B/n variant is the feed's own column (alias c), the rest are traits
    return {n: ("string", "c") if n == VARIANT and n not in traits
            else (traits[n], "a" if n in traits.attributes else "p") for n in names}


def _trait_value(value, kind: str):
    """A warehouse value as the adapters send it (None: absent, not sent)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if kind == "numeric":
        number = float(value)
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "boolean":
        return bool(value)
    if kind == "temporal":
        return pd.Timestamp(value).isoformat()
    return str(value)


@dataclass
class SyncPlan:
    segment: str
    destination: str
    mode: str
    desired: int  # members that should be in the destination list
    held: int  # members the ledger says it holds
    adds: pd.DataFrame
    removes: pd.DataFrame
    updates: pd.DataFrame  # held members whose synced fields changed (not in add_only)
    # held anywhere at this destination, and their latest consent signal says no: to be
    # unsubscribed at the provider (every mode), once per withdrawal
    revocations: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["customer_id", "email"]))
    held_people: int = 0  # distinct people the destination holds, in any list, ever pushed
    excluded_no_consent: int = 0
    excluded_suppressed: int = 0
    fields: dict[str, tuple[str, str]] = field(default_factory=dict)  # personal fields


@dataclass
class SyncResult:
    run_id: str
    status: str  # succeeded | blocked | dry_run | partial | failed
    plan: SyncPlan
    guard_outcome: str = "passed"
    sent_adds: int = 0
    succeeded_adds: int = 0
    rejected_adds: int = 0
    sent_removes: int = 0
    succeeded_removes: int = 0
    sent_updates: int = 0
    succeeded_updates: int = 0
    revoked: int = 0  # unsubscribed at the provider because consent was withdrawn
    suppressed: int = 0
    requests: int = 0  # HTTP requests this run sent (retries included)
    writes: int = 0
    rate_limited: int = 0  # 429s received
    throttled_s: float = 0.0  # time the client-side rate limiter held requests back
    error: str | None = None  # why a failed run stopped (the batches before it are kept)
    rejections: list[dict] = field(default_factory=list)
    outputs: list = field(default_factory=list)  # what a file destination wrote


def plan_sync(con, segment: str, destination: str,
              mode: str, fields: dict[str, tuple[str, str]] | None = None) -> SyncPlan:
    """Who should be in the destination list, and the difference to the ledger.

    Only the feed's sendable members (outside the holdout, consent decided in dbt from
    every signal, ESP-reported suppressions and erasures included) are ever pushed.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    con = as_connection(con)
    ensure_ops(con)
    if segment not in list_segments(con):
        raise ValueError(f"unknown segment {segment!r}")
    # The feed (dbt model activation.sync_esp_members, over marts.customer_consent)
    # decides consent, ESP-reported suppressions and erasure — once, for every destination.
    # The set differences run in the warehouse: at 100k members pandas' isin on arrow
    # strings costs about a second, the same anti-joins in SQL a few milliseconds.
    fields = fields or {}
    values = "".join(f", {alias}.{name} as f_{name}" for name, (_, alias) in fields.items())
    joins = "".join(f" left join {table} as {alias} on {alias}.customer_id = c.customer_id"
                    for table, alias in ((PROFILE, "p"), (ATTRIBUTES, "a"))
                    if any(a == alias for _, a in fields.values()))
    con.temp_table("sync_members", f"""
        select c.customer_id, c.email, c.first_name, c.last_name{values},
               {fields_hash_sql(con, fields)} as fields_hash,
               coalesce(c.exclusion_reason = 'no_consent', false) as no_consent,
               not c.is_sendable and coalesce(c.exclusion_reason <> 'no_consent', true)
                   as suppressed
        from {FEED} as c{joins}
        where c.segment_name = ? and c.email is not null""", [segment])
    con.temp_table("sync_held", """
        select customer_id, email, fields_hash from ops.destination_ledger
        where destination = ? and segment_name = ? and left_at is null""",
                [destination, segment])
    no_consent, suppressed = con.execute(
        "select count(*) filter (where no_consent), count(*) filter (where suppressed) "
        "from sync_members").fetchall()[0]
    extra = "".join(f", f_{name}" for name in fields)
    cols = "d.customer_id, d.email, d.first_name, d.last_name, d.fields_hash" + "".join(
        f", d.f_{name}" for name in fields)
    desired_sql = (f"select customer_id, email, first_name, last_name, fields_hash{extra} "
                   "from sync_members where not no_consent and not suppressed")

    def frame(sql: str) -> pd.DataFrame:
        return con.execute(sql + " order by 1").df()

    desired, held = con.execute(f"select (select count(*) from ({desired_sql}) as d), "
                                "(select count(*) from sync_held)").fetchall()[0]
    adds = frame(f"select {cols} from ({desired_sql}) as d where not exists "
                 "(select 1 from sync_held as h where h.customer_id = d.customer_id)")
    updates = frame(f"select {cols} from ({desired_sql}) as d join sync_held as h "
                    "on h.customer_id = d.customer_id where h.fields_hash is distinct from "
                    f"d.fields_hash {'and false' if mode == 'add_only' else ''}")
    removes = frame(f"select h.* from sync_held as h where not exists (select 1 from "
                    f"({desired_sql}) as d where d.customer_id = h.customer_id) "
                    f"{'' if mode == 'mirror' else 'and false'}")
    no_consent, suppressed = int(no_consent), int(suppressed)
    revocations, held_people = plan_revocations(con, destination)
    return SyncPlan(segment, destination, mode, desired, held, adds, removes, updates,
                    revocations, held_people, no_consent, suppressed, fields)


def current_members(con, segment: str) -> pd.DataFrame:
    """A list's current members with the segment's reasons: the feed's sendable members
    (outside the holdout; consent, suppressions and erasure decided in dbt)."""
    return con.execute(
        f"""select f.customer_id, f.email, f.has_email_consent, f.segment_name, s.reason,
                   s.computed_at
            from {FEED} as f
            join segments."{segment}" as s on s.customer_id = f.customer_id
            where f.segment_name = ? and f.is_sendable
            order by f.customer_id""", [segment]).df()[MEMBER_COLUMNS]


def plan_revocations(con, destination: str
                     ) -> tuple[pd.DataFrame, int]:
    """Everybody this destination holds (in any list, any mode) whom the consent model says
    must be unsubscribed, unless that was done after segwise last pushed them or this very
    destination reported them unsubscribed already — and how many people it holds (the
    mass-withdrawal guard's denominator), from the same scan of the ledger."""
    con = as_connection(con)
    con.temp_table("sync_held_people", """
        select customer_id, email, last_pushed from (
            select customer_id, email, max(synced_at) over (partition by customer_id)
                       as last_pushed,
                   row_number() over (partition by customer_id
                                      order by synced_at desc, email) as latest
            from ops.destination_ledger where destination = ?) as l
        where latest = 1""", [destination])
    (held_people,) = con.execute("select count(*) from sync_held_people").fetchall()[0]
    return con.execute(f"""
        select h.customer_id, h.email
        from sync_held_people as h
        join {CONSENT} as c on c.customer_id = h.customer_id
        where c.must_unsubscribe and not exists (
            select 1 from ops.destination_revocations as r
            where r.destination = ? and r.customer_id = h.customer_id
              and r.status = 'unsubscribed' and r.revoked_at >= h.last_pushed)
          and not exists (
            select 1 from ops.destination_suppressions as s
            where s.destination = ? and lower(s.email) = lower(h.email))
        order by h.customer_id""", [destination, destination]).df(), int(held_people)



def _batches(frame: pd.DataFrame, size: int):
    for start in range(0, len(frame), size):
        yield frame.iloc[start:start + size]


def _contacts(frame: pd.DataFrame, fields: dict[str, tuple[str, str]] | None = None
              ) -> list[Contact]:
    fields = fields or {}
    return [Contact(r.customer_id, r.email,
                    {"first_name": r.first_name or "", "last_name": r.last_name or ""},
                    {name: _trait_value(getattr(r, f"f_{name}"), kind)
                     for name, (kind, _) in fields.items()})
            for r in frame.itertuples()]


def sync_segment(settings: Settings, segment: str, dest: Destination, mode: str = "upsert",
                 dry_run: bool = False, force: bool = False,
                 guards: GuardConfig | None = None, min_size: int = 0,
                 crash_after_batches: int | None = None) -> SyncResult:
    """Sync one segment to one destination. ``crash_after_batches`` is a test hook that
    simulates a process dying after N checkpointed batches."""
    run_id = uuid.uuid4().hex[:12]
    started = utcnow()
    mode = dest.fixed_mode or mode
    t0 = time.perf_counter()
    before = dest.stats.snapshot()  # one adapter may serve several segments
    with connect(settings) as con:
        ensure_ops(con)
        plan = plan_sync(con, segment, dest.ledger_name, mode,
                         declared_fields(con, settings, segment, dest.name))
        result = SyncResult(run_id, "succeeded", plan)
        blocked: list[str] = []
        try:  # only failures in what this segment is built from block it
            assert_gate_open(con, upstream_relations(load_manifest(settings), segment,
                                                     feed=FEED_MODEL))
        except GateClosed as exc:
            blocked.append(f"data gate: {exc}")
        # the size at the last completed sync (a crashed run leaves no row: resume is free)
        last_rows = con.execute(
            "select desired_members from ops.sync_runs where destination = ? and "
            "segment_name = ? and status in ('succeeded', 'partial') "
            "order by started_at desc limit 1", [dest.ledger_name, segment]).fetchall()
        last = last_rows[0][0] if last_rows else 0
        blocked += evaluate_guards(guards or GuardConfig(), desired=plan.desired,
                                   held=plan.held, removes=len(plan.removes),
                                   min_size=min_size, previous_size=last,
                                   revocations=len(plan.revocations),
                                   held_people=plan.held_people)
        if blocked:
            result.guard_outcome = "; ".join(blocked) + (" (forced)" if force else "")
            if not force:
                result.status = "blocked"
        if dry_run:
            result.status = "dry_run" if result.status != "blocked" else "blocked"
        failure: Exception | None = None
        try:
            if result.status in ("succeeded",):
                _revoke(con, result, dest)
                _execute(con, result, dest, crash_after_batches)
                if dest.wants_members:
                    result.outputs = dest.finish(segment, current_members(con, segment))
        except Exception as exc:  # recorded as a failed run, then raised
            failure = exc
            result.status = "failed"
            result.error = str(exc)
        finally:
            after = dest.stats.snapshot()
            result.requests = int(after["requests"] - before["requests"])
            result.writes = int(after["writes"] - before["writes"])
            result.rate_limited = int(after["rate_limited"] - before["rate_limited"])
            result.throttled_s = after["throttled_s"] - before["throttled_s"]
        _record_run(con, result, dest, started, time.perf_counter() - t0, force, dry_run)
    if failure is not None:
        raise failure
    return result


def _in_parallel(dest: Destination, frame: pd.DataFrame, work: Callable, apply: Callable,
                 size: int | None = None) -> None:
    """Send ``frame`` in batches with up to ``dest.concurrency`` batches in flight.

    ``work(batch)`` runs in a worker thread and only talks HTTP; ``apply(batch, out)`` runs
    here, in the calling thread, as each batch completes — it owns every DuckDB write, so
    each completed batch is checkpointed before another one is started. If a batch fails,
    no new batch starts, the ones in flight finish and are checkpointed, then the error is
    raised: a re-run resends only what was never confirmed."""
    size = size or dest.batch_size
    batches = iter(_batches(frame, size))
    workers = max(1, min(dest.concurrency, -(-len(frame) // size)))
    error: BaseException | None = None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="segwise-sync") as pool:
        pending = {pool.submit(work, b): b for b in itertools.islice(batches, workers)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                batch = pending.pop(future)
                try:
                    out = future.result()
                except Exception as exc:  # noqa: BLE001 (re-raised below)
                    error = error or exc
                    continue
                apply(batch, out)
                nxt = next(batches, None) if error is None else None
                if nxt is not None:
                    pending[pool.submit(work, nxt)] = nxt
    if error is not None:
        raise error


def _revoke(con, result: SyncResult, dest: Destination
            ) -> None:
    """Consent withdrawn: unsubscribe at the provider through its own API, before any list
    change, in every mode; each batch recorded in ``ops.destination_revocations`` as it
    completes (a crash re-sends only unrecorded ones — unsubscribing is idempotent)."""
    def record(batch: pd.DataFrame, out: list[MemberResult]) -> None:
        now = utcnow()
        rows = pd.DataFrame({
            "destination": dest.ledger_name, "customer_id": batch["customer_id"].tolist(),
            "email": batch["email"].tolist(),
            "status": ["unsubscribed" if r.ok else "failed" for r in out],
            "detail": [r.error for r in out], "revoked_at": now, "run_id": result.run_id})
        con.insert_frame("ops.destination_revocations", rows)
        result.revoked += sum(r.ok for r in out)
        for c, r in zip(_contacts(batch), out, strict=True):
            if not r.ok:
                _reject(con, result, dest, c, "unsubscribe", r.error)

    frame = result.plan.revocations.assign(first_name=None, last_name=None)
    _in_parallel(dest, frame, lambda b: dest.unsubscribe(_contacts(b)), record,
                 size=dest.unsubscribe_batch)


def _execute(con, result: SyncResult, dest: Destination,
             crash_after_batches: int | None) -> None:
    plan = result.plan
    if len(plan.adds) + len(plan.updates) + len(plan.removes) == 0:
        return
    dest.prepare(plan.segment)
    if plan.fields:
        dest.prepare_fields({name: kind for name, (kind, _) in plan.fields.items()})
    checkpoints = 0

    def add_batch(batch: pd.DataFrame):
        contacts = _contacts(batch, plan.fields)
        upserted = dest.upsert_contacts(contacts)
        ok = {r.email.lower() for r in upserted if r.ok}
        keep = [c for c in contacts if c.email.lower() in ok]
        return contacts, upserted, dest.add_to_list(plan.segment, keep) if keep else []

    def record_adds(batch: pd.DataFrame, out) -> None:
        nonlocal checkpoints
        contacts, upserted, added = out
        hashes = dict(zip(batch["customer_id"], batch["fields_hash"], strict=True))
        by_email = {c.email.lower(): c for c in contacts}
        result.sent_adds += len(contacts)
        now = utcnow()
        for r in upserted:
            c = by_email[r.email.lower()]
            if r.ok:
                continue
            if r.remote_status:  # the ESP says unsubscribed/cleaned: remember, never undo
                _suppress(con, result, dest, c, r.remote_status)
            else:
                result.rejected_adds += 1
                _reject(con, result, dest, c, "upsert", r.error)
        rows = []
        for r in added:
            c = by_email[r.email.lower()]
            if r.ok:
                rows.append((dest.ledger_name, plan.segment, c.customer_id, c.email, now,
                             result.run_id, hashes[c.customer_id]))
            else:
                result.rejected_adds += 1
                _reject(con, result, dest, c, "add_to_list", r.error)
        if rows:  # checkpoint: the batch is recorded as soon as the ESP confirmed it
            ledger_rows = pd.DataFrame(rows, columns=[
                "destination", "segment_name", "customer_id", "email", "synced_at", "run_id",
                "fields_hash"])
            # a member who comes back replaces the row of their earlier stay
            con.execute("delete from ops.destination_ledger where destination = ? and "
                        "segment_name = ? and left_at is not null and customer_id in "
                        "(select unnest(?))", [dest.ledger_name, plan.segment,
                                               ledger_rows["customer_id"].tolist()])
            con.insert_frame("ops.destination_ledger", ledger_rows)
        result.succeeded_adds += len(rows)
        checkpoints += 1
        if crash_after_batches is not None and checkpoints >= crash_after_batches:
            raise SystemExit(f"simulated crash after {checkpoints} batches")

    def record_updates(batch: pd.DataFrame, upserted) -> None:
        contacts = _contacts(batch, plan.fields)
        by_email = {c.email.lower(): c for c in contacts}
        result.sent_updates += len(contacts)
        done = []
        for r in upserted:
            c = by_email[r.email.lower()]
            if r.ok:
                done.append(c.customer_id)
            elif r.remote_status:  # unsubscribed at the ESP since we added them: never undone
                _suppress(con, result, dest, c, r.remote_status)
            else:
                _reject(con, result, dest, c, "update", r.error)
        if done:
            changed = batch[batch["customer_id"].isin(done)][
                ["customer_id", "email", "fields_hash"]]
            con.frame_table("changed", changed, {"customer_id": "varchar",
                                                 "email": "varchar", "fields_hash": "varchar"})
            con.execute("update ops.destination_ledger as l set fields_hash = c.fields_hash, "
                        "email = c.email from changed as c where l.destination = ? and "
                        "l.segment_name = ? and l.customer_id = c.customer_id "
                        "and l.left_at is null",
                        [dest.ledger_name, plan.segment])
        result.succeeded_updates += len(done)

    def remove_batch(batch: pd.DataFrame):
        contacts = [Contact(r.customer_id, r.email) for r in batch.itertuples()]
        return contacts, dest.remove_from_list(plan.segment, contacts)

    def record_removes(batch: pd.DataFrame, out) -> None:
        contacts, removed = out
        result.sent_removes += len(contacts)
        gone = [c.customer_id for c, r in zip(contacts, removed, strict=True) if r.ok]
        for c, r in zip(contacts, removed, strict=True):
            if not r.ok:
                _reject(con, result, dest, c, "remove_from_list", r.error)
        if gone:
            con.execute("update ops.destination_ledger set left_at = ? where destination = ? "
                        "and segment_name = ? and left_at is null "
                        "and customer_id in (select unnest(?))",
                        [utcnow(), dest.ledger_name, plan.segment, gone])
        result.succeeded_removes += len(gone)

    _in_parallel(dest, plan.adds, add_batch, record_adds)
    _in_parallel(dest, plan.updates,
                 lambda b: dest.update_contacts(_contacts(b, plan.fields)), record_updates)
    _in_parallel(dest, plan.removes, remove_batch, record_removes)
    if result.rejected_adds or len(result.rejections) > result.rejected_adds:
        result.status = "partial"


def _suppress(con, result: SyncResult, dest, contact: Contact, remote_status: str) -> None:
    """The ESP reports the contact unsubscribed or cleaned (on an add or an update): a
    withdrawal the consent model reads from then on, for every destination."""
    result.suppressed += 1
    con.execute("insert into ops.destination_suppressions values (?, ?, ?, ?, ?)",
                [dest.ledger_name, contact.email, remote_status, utcnow(), result.run_id])


def _reject(con, result: SyncResult, dest, contact: Contact, operation: str, error) -> None:
    row = {"customer_id": contact.customer_id, "email": contact.email,
           "operation": operation, "error": str(error)}
    result.rejections.append(row)
    con.execute("insert into ops.sync_rejections values (?, ?, ?, ?, ?, ?, ?, ?)",
                [result.run_id, dest.ledger_name, result.plan.segment, contact.customer_id,
                 contact.email, operation, str(error), utcnow()])


def _record_run(con, result: SyncResult, dest: Destination, started, duration: float,
                force: bool, dry_run: bool) -> None:
    p = result.plan
    con.execute("insert into ops.sync_runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [result.run_id, p.segment, dest.ledger_name, p.mode, started, utcnow(), result.status,
                 result.guard_outcome, len(p.adds), len(p.removes), result.sent_adds,
                 result.succeeded_adds, result.rejected_adds, result.sent_removes,
                 result.succeeded_removes, result.suppressed, result.requests,
                 result.writes, result.rate_limited, duration, force, dry_run,
                 p.desired, len(p.updates), result.sent_updates, result.succeeded_updates,
                 dest.concurrency, round(result.throttled_s, 3), result.error,
                 len(p.revocations), result.revoked])
