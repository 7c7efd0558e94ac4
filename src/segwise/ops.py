"""Operational state kept in the warehouse (schema ``ops``): builds, validations, exports.

Keeping it in the warehouse (not in local files) means a re-run on another worker sees
the same state, and BI tools can audit it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from segwise.settings import Settings
from segwise.warehouse import connect, ensure_ops, table_exists


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def last_build(con) -> tuple | None:
    """``(as_of_date, dataset)`` of the latest build, or None before the first one. Only
    reads, so it also works on a read-only connection."""
    exists = table_exists(con, "ops", "build_runs")
    rows = con.execute("select as_of_date, dataset from ops.build_runs order by built_at "
                       "desc limit 1").fetchall() if exists else []
    return rows[0] if rows else None


def record_build(settings: Settings, run_id: str, dataset: str, as_of: str | None,
                 ok: int, failed: int, failed_relations: list[str] | None = None) -> None:
    with connect(settings) as con:
        ensure_ops(con)
        con.execute("insert into ops.build_runs values (?, ?, ?, ?, ?, ?, ?)",
                    [run_id, utcnow(), dataset, as_of, ok, failed,
                     None if failed_relations is None else json.dumps(failed_relations)])


def record_validation(settings: Settings, run_id: str, success: bool, failures: list,
                      outcomes: list[dict] = ()) -> None:
    """The run's verdict, and every expectation's outcome (``ExpectationOutcome`` fields)."""
    now = utcnow()
    with connect(settings) as con:
        ensure_ops(con)
        con.execute("insert into ops.validation_runs values (?, ?, ?, ?)",
                    [run_id, now, success, json.dumps(failures, default=str)])
        for o in outcomes:
            con.execute(
                "insert into ops.validation_results (run_id, suite, batch, expectation, "
                "column_name, success, expected, observed, detail, validated_at) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, o["suite"], o["batch"], o["expectation"], o["column"], o["success"],
                 o.get("expected", ""), o.get("observed", ""), o.get("detail", ""), now])


class GateClosed(RuntimeError):
    """Raised when an activation step must not run because the data gate is not open."""


def _touching(inputs: set[str] | None, touched: list[str] | None) -> list[str] | None:
    """The failing relations that matter for ``inputs`` (all of them when either side is
    unknown); an empty list means the failures are unrelated."""
    if not touched:
        return ["(unknown relations)"]
    if inputs is None:
        return touched
    return sorted(set(touched) & inputs)


def assert_gate_open(con, inputs: set[str] | None = None) -> str:
    """The latest validation must have passed and be newer than the latest build, and the
    latest build must have no failing node.

    ``inputs``: the relations one segment is built from (see ``segwise.lineage``). Then
    only failures touching those relations close the gate for it; failures elsewhere are
    not its concern. Without ``inputs`` (or when a failure's relations are unknown) any
    failure closes the gate."""
    ensure_ops(con)
    last_val = con.execute(
        "select run_id, validated_at, success, failures_json from ops.validation_runs "
        "order by validated_at desc limit 1").fetchall()
    last_build = con.execute(
        "select built_at, nodes_failed, failed_relations_json from ops.build_runs "
        "order by built_at desc limit 1").fetchall()
    if last_build and last_build[0][1]:
        raw = last_build[0][2]
        hit = _touching(inputs, None if raw is None else json.loads(raw))
        if hit:
            raise GateClosed(f"the latest dbt build had {last_build[0][1]} failing node(s) "
                             f"(models or tests) touching {', '.join(hit[:5])}: fix them and "
                             "rebuild; export and sync refused")
    if not last_val:
        raise GateClosed("no validation has run: run `segwise validate` first")
    run_id, validated_at, success, failures = last_val[0]
    if not success:
        failed = json.loads(failures or "[]")
        hit = set()
        for f in failed or [{}]:
            hit |= set(_touching(inputs, f.get("relations")) or [])
        if hit:
            raise GateClosed(f"the latest validation ({run_id}) failed {len(failed)} "
                             f"expectation(s) on {', '.join(sorted(hit)[:5])}: fix the data "
                             "and re-run `segwise validate`; export and sync refused")
    if last_build and last_build[0][0] > validated_at:
        raise GateClosed("the warehouse was rebuilt after the latest validation: "
                         "run `segwise validate` again; export and sync refused")
    return run_id


def list_segments(con) -> list[str]:
    """The segment views as built in the warehouse (schema ``segments``), by name."""
    rows = con.execute(
        "select table_name from information_schema.tables where table_schema = 'segments' "
        "order by table_name").fetchall()
    return [r[0] for r in rows]
