"""Incremental event models, tested the Snowplow way: events that arrive in three batches —
late events, a late file under an older stamp, rows appended under a stamp already judged,
duplicates of earlier batches' events (exact copies and dirty spellings of their ids),
rows without an id, events from the future — built incrementally batch after batch
give exactly the warehouse one full build of all the rows gives: every staging,
intermediate, mart, feature, prediction, quarantine and segment relation."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import date

import duckdb
import pytest

from segwise.generate import generate
from segwise.load import load_generated
from segwise.pipeline import step_build

from conftest import make_settings, query, quiet
from equivalence import RUN_CLOCK, relations, rows

pytestmark = pytest.mark.xdist_group("incremental")

AS_OF = date(2026, 6, 30)
EVENTS = {"web_events": "event_id", "email_events": "email_event_id"}
T0, T1, T2, T3 = "2026-06-01 00:00:00", "2026-06-10 00:00:00", "2026-06-20 00:00:00", \
    "2026-06-30 00:00:00"
# what depends on how many builds ran, not on the rows: the segments' and quarantine's history
HISTORY = {"segment_size_history", "segment_membership_history", "segment_changes",
           "quarantine_history"}
# the load stamps are the rows' own here: they must agree too
SKIP = RUN_CLOCK - {"_loaded_at", "loaded_at"}


def arrange_batches(con: duckdb.DuckDBPyConnection, table: str, key: str) -> None:
    """Give the raw events of ``table`` a batch and a load stamp, in ``landing.<table>``
    (raw columns + ``batch``), with the cross-batch dirt added; raw is left holding all."""
    con.execute("create schema if not exists landing")
    con.execute(f"""
        create table landing.{table} as
        with ordered as (
            select *, ntile(3) over (order by occurred_at nulls first, {key}) as tercile,
                abs(hash(coalesce({key}, 'none'))) % 20 as h
            from raw.{table}
        )
        select * exclude (tercile, h, _loaded_at),
            case
                when tercile = 1 and h in (0, 1) then 3   -- late events, batch 3
                when tercile = 2 and h = 2 then 3         -- appended under a stamp seen
                else tercile
            end as batch,
            cast(case
                when tercile = 1 and h = 0 then '{T3}'
                when tercile = 1 and h = 1 then '{T0}'    -- a late file, older stamp
                when tercile = 1 then '{T1}'
                when tercile = 2 then '{T2}'
                else '{T3}'
            end as timestamp) as _loaded_at
        from ordered""")
    # copies of earlier batches' events: an exact copy (batch 3 re-sends batch 2) and a
    # dirty spelling of the id with a later time (batch 2 re-sends batch 1)
    con.execute(f"""
        insert into landing.{table}
        select * replace (3 as batch, cast('{T3}' as timestamp) as _loaded_at)
        from landing.{table}
        where batch = 2 and abs(hash(coalesce({key}, 'none'))) % 25 = 4""")
    con.execute(f"""
        insert into landing.{table}
        select * replace (
            '  ' || {key} || chr(8203) as {key},
            occurred_at + interval 1 minute as occurred_at,
            2 as batch, cast('{T2}' as timestamp) as _loaded_at)
        from landing.{table}
        where batch = 1 and {key} is not null and abs(hash({key})) % 25 = 3""")
    # rows without an id in two batches, and an event from the future in the first
    for batch, stamp in ((1, T1), (3, T3)):
        con.execute(f"""
            insert into landing.{table}
            select * replace (null as {key}, {batch} as batch,
                              cast('{stamp}' as timestamp) as _loaded_at)
            from landing.{table} where {key} is not null order by {key} limit 3""")
    con.execute(f"""
        insert into landing.{table}
        select * replace ({key} || '-future' as {key},
                          timestamp '2099-01-01 00:00:00' as occurred_at)
        from landing.{table} where batch = 1 and {key} is not null order by {key} limit 2""")
    con.execute(f"delete from raw.{table}")
    con.execute(f"insert into raw.{table} select * exclude (batch) from landing.{table}")


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """(incremental, full): the same rows, landed in three batches with a build after
    each, and landed at once with one full build."""
    full = make_settings(tmp_path_factory.mktemp("full"))
    generate(full.raw_dir, customers=500, seed=8, as_of=AS_OF, dirty_rate=0.03)
    load_generated(full)
    con = duckdb.connect(str(full.duckdb_path))
    try:
        for table, key in EVENTS.items():
            arrange_batches(con, table, key)
    finally:
        con.close()
    inc_dir = tmp_path_factory.mktemp("incremental")
    (inc_dir / "wh").mkdir()
    shutil.copy(full.duckdb_path, inc_dir / "wh" / "segwise.duckdb")
    incremental = replace(full, duckdb_path=inc_dir / "wh" / "segwise.duckdb",
                          output_dir=inc_dir / "output")

    step_build(full, "generated", AS_OF, quiet, publish_for_readers=False,
               full_refresh=True)
    con = duckdb.connect(str(incremental.duckdb_path))
    try:
        for table in EVENTS:
            con.execute(f"delete from raw.{table}")
    finally:
        con.close()
    held = []
    for batch in (1, 2, 3):
        con = duckdb.connect(str(incremental.duckdb_path))
        try:
            for table in EVENTS:
                con.execute(f"insert into raw.{table} select * exclude (batch) "
                            f"from landing.{table} where batch = {batch}")
            if batch == 3:
                # clusters keep their ids from the previous run's centroids by design
                # (stable ids): the last build fits them afresh, as the full build did
                con.execute("delete from ops.model_runs where model = 'clusters'")
        finally:
            con.close()
        step_build(incremental, "generated", AS_OF, quiet, publish_for_readers=False)
        held.append({t: len(query(incremental, f"select 1 from staging.base_{t.split('_')[0]}"
                                               f"__events")) for t in EVENTS})
    return incremental, full, held


def test_the_batches_hold_the_dirt_they_are_meant_to(builds):
    incremental, full, held = builds
    q = query(full, "select batch, cast(_loaded_at as varchar) as stamp, count(*) as n "
                    "from landing.email_events group by 1, 2")
    by = {(r.batch, r.stamp): r.n for r in q.itertuples()}
    assert by.get((3, T0)) and by.get((3, T2)) and by.get((3, T3)) and by.get((2, T2))
    reasons = set(query(full, "select _quarantine_reason from staging.base_email__events "
                              "where _quarantine_reason is not null")["_quarantine_reason"])
    assert {"duplicate_event", "missing_event_id", "future_timestamp"} <= reasons
    # the incremental warehouse grew batch by batch: each build judged new rows
    assert held[0]["web_events"] < held[1]["web_events"] < held[2]["web_events"]


def test_quarantine_history_keeps_every_build_and_the_last_is_the_summary(builds):
    """quarantine_history adds one set of counts per build (the report's trend); the last
    set is what quarantine_summary says now, in the incremental and in the full build."""
    incremental, full, _ = builds
    counts = ("select source_table, reason, rows_quarantined from {} "
              "order by source_table, reason")
    for settings, builds_run in ((incremental, 3), (full, 1)):
        stamps = query(settings, "select distinct computed_at from "
                                 "quarantine.quarantine_history order by 1")["computed_at"]
        assert len(stamps) == builds_run
        last = query(settings, counts.format(
            f"quarantine.quarantine_history where computed_at = '{stamps.iloc[-1]}'"))
        summary = query(settings, counts.format("quarantine.quarantine_summary"))
        assert len(summary) > 3 and last.equals(summary)
    totals = query(incremental, "select sum(rows_quarantined) as n from "
                               "quarantine.quarantine_history group by computed_at "
                               "order by computed_at")["n"].tolist()
    assert totals[0] < totals[-1]  # the later batches brought more dirt: a real trend


@pytest.mark.parametrize("schema", ["staging", "intermediate", "marts", "features",
                                    "predictions", "quarantine", "segments", "segmentation",
                                    "activation"])
def test_incremental_batches_equal_one_full_build(builds, schema):
    incremental, full, _ = builds
    names = [n for n in relations(full, schema) if n not in HISTORY]
    assert names and names == [n for n in relations(incremental, schema) if n not in HISTORY]
    for name in names:
        i_cols, i = rows(incremental, f"{schema}.{name}", SKIP)
        f_cols, f = rows(full, f"{schema}.{name}", SKIP)
        assert i_cols == f_cols, name
        assert i == f, f"{schema}.{name} differs ({len(i)} rows incremental, {len(f)} full)"
