"""Export engine: diff each segment against what the destination last received.

State lives in ``ops.export_state`` (one row per destination, segment and member the
destination holds). A segment's state is replaced in one transaction *after* the
destination applied the delta, so a crash in between only means the same delta is
applied again on the next run — which destinations must tolerate (idempotent).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from segwise.export.base import MEMBER_COLUMNS, Destination, DestinationReport, SegmentDelta
from segwise.ops import assert_gate_open, list_segments, utcnow
from segwise.settings import Settings
from segwise.warehouse import FEED, connect

STATE_DDL = [
    "create schema if not exists ops",
    """create table if not exists ops.export_state (
        destination varchar, segment_name varchar, customer_id varchar,
        exported_at timestamp, run_id varchar)""",
    """create table if not exists ops.export_runs (
        run_id varchar, destination varchar, segment_name varchar, exported_at timestamp,
        members integer, added integer, removed integer, validation_run_id varchar)""",
]


@dataclass
class ExportResult:
    run_id: str
    validation_run_id: str
    reports: list[DestinationReport] = field(default_factory=list)


def current_members(con: duckdb.DuckDBPyConnection, segment: str) -> pd.DataFrame:
    """The members a destination may receive: the activation feed's sendable members
    (outside the holdout; consent, suppressions and erasure decided in dbt), with the
    segment's reasons."""
    if segment not in list_segments(con):
        raise ValueError(f"unknown segment {segment!r}")
    return con.execute(
        f"""select f.customer_id, f.email, f.has_email_consent, f.segment_name, s.reason,
                   s.computed_at
            from {FEED} as f
            join segments."{segment}" as s on s.customer_id = f.customer_id
            where f.segment_name = ? and f.is_sendable
            order by f.customer_id""", [segment]).df()[MEMBER_COLUMNS]


def compute_delta(segment: str, members: pd.DataFrame, held: set[str]) -> SegmentDelta:
    """Pure: the members to add and the held ids to remove."""
    current = set(members["customer_id"])
    added = members[~members["customer_id"].isin(held)].reset_index(drop=True)
    removed = pd.DataFrame({"customer_id": sorted(held - current)})
    return SegmentDelta(segment, members.reset_index(drop=True), added, removed)


def export(settings: Settings, destination: Destination,
           segments: list[str] | None = None) -> ExportResult:
    run_id = uuid.uuid4().hex[:12]
    with connect(settings.duckdb_path) as con:
        validation_run_id = assert_gate_open(con)
        for stmt in STATE_DDL:
            con.execute(stmt)
        names = segments or list_segments(con)
        result = ExportResult(run_id, validation_run_id)
        for segment in names:
            members = current_members(con, segment)
            held = {r[0] for r in con.execute(
                "select customer_id from ops.export_state where destination = ? "
                "and segment_name = ?", [destination.name, segment]).fetchall()}
            delta = compute_delta(segment, members, held)
            report = destination.apply(delta, run_id)
            now = utcnow()
            con.execute("begin transaction")
            con.execute("delete from ops.export_state where destination = ? and segment_name = ?",
                        [destination.name, segment])
            state = pd.DataFrame({  # noqa: F841 (read by duckdb)
                "destination": destination.name, "segment_name": segment,
                "customer_id": members["customer_id"], "exported_at": now, "run_id": run_id})
            con.execute("insert into ops.export_state select * from state")
            con.execute("insert into ops.export_runs values (?, ?, ?, ?, ?, ?, ?, ?)",
                        [run_id, destination.name, segment, now, report.members,
                         report.added, report.removed, validation_run_id])
            con.execute("commit")
            result.reports.append(report)
    return result
