"""Readers are never blocked and builds never fail because of readers (issue #9).

Before: a BI client holding a DuckDB connection made `segwise build` fail after 7 s (the
file lock), and during every build all BI reads failed. Now BI reads the serving file,
which each successful build replaces atomically; this test holds a read-only connection
in another process across a whole build while a second reader reconnects in a loop."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import date

import duckdb
import pytest

from segwise.generate import generate
from segwise.load import load_generated
from segwise.pipeline import step_build
from segwise.warehouse import serving_path

from conftest import make_settings, quiet

pytestmark = pytest.mark.xdist_group("serving")

AS_OF = date(2026, 6, 30)
READER = r"""
import json, sys, time
from pathlib import Path
import duckdb
path, mode, stop = sys.argv[1], sys.argv[2], Path(sys.argv[3])
sql = "select count(*) from marts.dim_customers"
held = duckdb.connect(path, read_only=True) if mode == "held" else None
print(json.dumps({"ready": True}), flush=True)
while not stop.exists():
    try:  # held: a BI session open for the whole build; fresh: a dashboard refresh
        con = held or duckdb.connect(path, read_only=True)
        row = {"n": con.execute(sql).fetchall()[0][0]}
        if held is None:
            con.close()
    except Exception as exc:
        row = {"error": repr(exc)}
    print(json.dumps(row), flush=True)
    time.sleep(0.05)
"""


def _land(settings, customers: int, seed: int = 8) -> None:
    generate(settings.raw_dir, customers=customers, seed=seed, as_of=AS_OF)
    load_generated(settings)


def _built(tmp_path, customers: int):
    """A small warehouse, built (and so published for readers)."""
    settings = make_settings(tmp_path)
    _land(settings, customers)
    step_build(settings, "generated", AS_OF, say=quiet)
    return settings


def test_a_reader_holding_a_connection_never_blocks_a_build_and_never_fails(tmp_path):
    settings = _built(tmp_path, 300)
    serving = serving_path(settings.duckdb_path)
    assert serving.exists()
    con = duckdb.connect(str(serving), read_only=True)
    old = con.execute("select count(*) from marts.dim_customers").fetchall()[0][0]
    con.close()

    _land(settings, 450, seed=9)  # new data lands
    stop = tmp_path / "stop"
    # separate processes: DuckDB shares one database instance per path within a process
    readers = {mode: subprocess.Popen([sys.executable, "-c", READER, str(serving), mode,
                                       str(stop)], stdout=subprocess.PIPE, text=True)
               for mode in ("held", "fresh")}
    out = {}
    try:
        for reader in readers.values():
            assert json.loads(reader.stdout.readline()) == {"ready": True}
        time.sleep(0.5)  # reads before the build
        step_build(settings, "generated", AS_OF, say=quiet)  # must not fail or wait
        time.sleep(0.5)  # reads after it
    finally:
        stop.touch()
        for mode, reader in readers.items():
            out[mode] = [json.loads(line) for line in reader.communicate(timeout=60)[0]
                         .splitlines() if line.strip()]
    assert [r for rows in out.values() for r in rows if "error" in r] == []
    assert len(out["held"]) > 10 and len(out["fresh"]) > 10
    assert {r["n"] for r in out["held"]} == {old}  # an open session keeps its state
    fresh = [r["n"] for r in out["fresh"]]
    new = fresh[-1]
    assert new != old and fresh[0] == old
    switch = fresh.index(new)  # old until the publish, new from then on, nothing between
    assert set(fresh[:switch]) == {old} and set(fresh[switch:]) == {new}


def test_a_failed_build_leaves_readers_the_last_good_state(tmp_path):
    """A build that fails publishes nothing: readers keep the previous complete state."""
    from segwise.transform.dbt import DbtError

    settings = _built(tmp_path, 200)
    serving = serving_path(settings.duckdb_path)
    before = serving.stat().st_mtime_ns
    con = duckdb.connect(str(settings.duckdb_path))
    try:
        con.execute("drop table raw.orders")  # the next build cannot succeed
    finally:
        con.close()
    with pytest.raises(DbtError):
        step_build(settings, "generated", AS_OF, say=quiet)
    assert serving.stat().st_mtime_ns == before
    con = duckdb.connect(str(serving), read_only=True)
    try:
        assert con.execute("select count(*) from raw.orders").fetchall()[0][0] > 0
    finally:
        con.close()
