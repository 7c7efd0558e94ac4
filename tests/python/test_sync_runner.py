"""`sync_all`: each segment syncs with the mode and guards its definition declares for the
destination (segments/*.yml), and `--mode` overrides them for one run."""

from __future__ import annotations

import pandas as pd
import pytest

from segwise.segments import definitions
from segwise.sync.runner import sync_all, sync_settings

from conftest import query

pytestmark = pytest.mark.xdist_group("sync")

MIRRORED, PLAIN = "cart_abandoners_24h", "vip_customers"


def test_declared_modes_and_guards_are_used_and_mode_overrides_them(wh):
    built = {p.segment: p for p in sync_settings(wh, "mailchimp")}
    assert built[MIRRORED].mode == "mirror" and built[MIRRORED].guards.max_removal_pct == 90
    assert built[PLAIN].mode == "upsert" and built[PLAIN].guards.max_removal_pct == 20
    lines: list[str] = []
    sync_all(wh, "mailchimp", [MIRRORED, PLAIN], sandbox=True, say=lines.append)
    sync_all(wh, "mailchimp", [PLAIN], mode="add_only", sandbox=True, say=lines.append)
    runs = query(wh, "select segment_name, mode from ops.sync_runs "
                     "where destination like 'mailchimp%' order by started_at")
    assert list(zip(runs["segment_name"], runs["mode"], strict=True)) == [
        (PLAIN, "upsert"), (MIRRORED, "mirror"), (PLAIN, "add_only")]  # by priority
    assert any(f"mailchimp/{MIRRORED} (mirror)" in line for line in lines)


def test_the_planner_hashes_fields_in_sql_exactly_as_in_python(wh):
    import hashlib

    from segwise.sync.engine import fields_hash_sql
    from segwise.warehouse import DuckConnection

    def fields_hash(email, first_name, last_name) -> str:  # the reference definition
        blob = "\x1f".join(str(v or "") for v in (email, first_name, last_name))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


    hashed = fields_hash_sql(DuckConnection)  # the planner's own expression, on DuckDB
    rows = query(wh, f"select c.email, c.first_name, c.last_name, {hashed} as h "
                     "from marts.dim_customers as c")
    assert len(rows) > 1000
    assert all(fields_hash(r.email, r.first_name, r.last_name) == r.h
               for r in rows.itertuples())
    assert fields_hash("a@b.co", None, "L") != fields_hash("a@b.co", "L", None)


def test_a_destination_floor_blocks_a_segment_too_small_for_it(wh):
    """`min_size` on a destination (an ad platform's audience minimum, k-anonymity) is
    enforced on top of the segment's own min_size. The sync reads it from the built
    warehouse (segmentation.segment_destinations), as a build of
    `destinations: [{name: mailchimp, min_size: 1000000}]` leaves it."""
    import duckdb

    con = duckdb.connect(str(wh.duckdb_path))
    try:
        con.execute("update segmentation.segment_destinations set min_size = 1000000 "
                    "where segment_name = ? and destination = 'mailchimp'", [PLAIN])
    finally:
        con.close()
    (result,) = sync_all(wh, "mailchimp", [PLAIN], sandbox=True, say=lambda _: None)
    assert result.status == "blocked"
    assert "below min_size" in result.guard_outcome and "1000000" in result.guard_outcome
    assert result.requests == 0


def test_sync_settings_come_from_the_build_and_match_the_definitions(wh):
    """Deliver 3: segment sync settings are read from the built catalog, and the build
    holds exactly what the YAML definitions declare (mode, guards, floors)."""
    from segwise.sync.runner import sync_settings

    built = query(wh, "select segment_name, destination, sync_mode, max_removal_pct, "
                      "max_size_change_pct, min_size from segmentation.segment_destinations")
    declared = []
    for seg in definitions(wh.project_dir):
        for name in seg.destinations:
            d = seg.sync_settings(name)
            declared.append((seg.name, name, d.mode, d.max_removal_pct,
                             d.max_size_change_pct, d.min_size))
    got = [tuple(None if pd.isna(v) else v for v in row)
           for row in built.itertuples(index=False)]
    assert sorted(got, key=str) == sorted(declared, key=str) and declared
    plan = sync_settings(wh, "mailchimp")
    assert [p.segment for p in plan] == [s.name for s in sorted(
        definitions(wh.project_dir), key=lambda s: (s.priority, s.name))
        if "mailchimp" in s.destinations]
    with pytest.raises(Exception, match="unknown segment"):
        sync_settings(wh, "mailchimp", ["no_such_segment"])


def test_one_provider_giving_up_does_not_stop_the_others(wh):
    """Issue #8, observation 10: a 429 storm at Mailchimp used to end `sync --destination
    all` before Klaviyo, HubSpot and SendGrid got a request. Now each provider syncs, the
    failure is named and the exit code says a destination failed."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import httpx

    from segwise.sync.runner import local_sandboxes

    with local_sandboxes() as urls:
        httpx.post(f"{urls['mailchimp']}/_sandbox/faults", json={"rate_limit_next": 100_000})
        env = dict(os.environ, SEGWISE_DUCKDB_PATH=str(wh.duckdb_path),
                   SEGWISE_OUTPUT_DIR=str(wh.output_dir))
        res = subprocess.run([str(Path(sys.executable).with_name("segwise")), "sync",
                              "--destination", "all"], env=env, text=True, capture_output=True)
        logs = {n: httpx.get(f"{u}/_sandbox/requests").json() for n, u in urls.items()}
    assert res.returncode == 5, res.stdout + res.stderr
    assert "mailchimp" in res.stderr and "failed: mailchimp" in " ".join(res.stderr.split())
    assert "Traceback" not in res.stderr
    assert logs["mailchimp"]["rate_limited"] >= 1
    for name in ("klaviyo", "hubspot", "sendgrid"):
        assert logs[name]["requests"] > 0, (name, logs[name])
    runs = query(wh, "select destination, status, count(*) as n from ops.sync_runs "
                     "group by all")
    synced = set(runs[runs["status"] == "succeeded"]["destination"])
    assert {"klaviyo", "hubspot", "sendgrid"} <= {d.split(":")[0] for d in synced}
