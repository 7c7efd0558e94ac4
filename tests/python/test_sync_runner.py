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


def _remote_fields(name: str, url: str, email: str) -> dict:
    """What the provider holds for one member's personal fields, read back through its
    own API (Mailchimp, Klaviyo) or the sandbox's record (HubSpot, SendGrid)."""
    import hashlib

    import httpx

    from segwise.sync.runner import SANDBOX_KEYS

    key = SANDBOX_KEYS[name]
    if name == "mailchimp":
        tags = {m["tag"]: m["name"] for m in httpx.get(
            f"{url}/3.0/lists/segwise/merge-fields", auth=("x", key),
            params={"count": 100}).json()["merge_fields"]}
        member = httpx.get(f"{url}/3.0/lists/segwise/members/"
                           f"{hashlib.md5(email.encode()).hexdigest()}", auth=("x", key)).json()
        assert "merge_fields" in member, member
        return {tags[t]: v for t, v in member["merge_fields"].items()
                if tags[t] not in ("First Name", "Last Name")}
    if name == "klaviyo":
        profile = httpx.get(f"{url}/api/profiles", params={"filter": f'equals(email,"{email}")'},
                            headers={"Authorization": f"Klaviyo-API-Key {key}",
                                     "revision": "2026-10-15"}).json()["data"][0]
        return profile["attributes"].get("properties", {})
    if name == "hubspot":
        props = httpx.get(f"{url}/_sandbox/contacts/{email}").json()["properties"]
        return {k.removeprefix("segwise_"): v for k, v in props.items()
                if k.startswith("segwise_")}
    ids = {f["id"]: f["name"] for f in httpx.get(
        f"{url}/v3/marketing/field_definitions",
        headers={"Authorization": f"Bearer {key}"}).json()["custom_fields"]}
    contact = httpx.get(f"{url}/_sandbox/contacts/{email}").json()
    return {ids[k]: v for k, v in contact.get("custom_fields", {}).items()}


def test_personal_fields_reach_every_provider_and_only_changes_are_resent(wh):
    """Issue #10: the segment's `fields` (rfm_segment, engagement_tier, favourite_category)
    reach Mailchimp as merge fields, Klaviyo as profile properties, HubSpot as contact
    properties in segwise's group and SendGrid as custom fields — each created when
    missing, absent values not sent; a resync sends nothing; a changed value is sent again
    as an update, to that member only."""
    from segwise.sync.runner import DESTINATIONS, local_sandboxes, sync_destinations

    segment = PLAIN
    fields = ["rfm_segment", "engagement_tier", "favourite_category"]
    with local_sandboxes() as urls:
        first = sync_destinations(wh, DESTINATIONS, say=lambda _: None, sandbox=False,
                                  segments=[segment])
        assert all(o.error is None for o in first)
        assert all(r.status == "succeeded" for o in first for r in o.results), [
            (o.destination, r.status, r.guard_outcome) for o in first for r in o.results]
        members = query(wh, f"select p.customer_id, m.email, {', '.join('p.' + f for f in fields)} "
                            "from activation.sync_esp_members as m join marts.customer_profile "
                            f"as p using (customer_id) where m.segment_name = '{segment}' "
                            "and m.is_sendable order by 1")
        assert len(members) > 0 and members["favourite_category"].notna().any()
        for name, url in urls.items():
            for row in members.head(5).itertuples():
                want = {f: getattr(row, f) for f in fields if pd.notna(getattr(row, f))}
                assert _remote_fields(name, url, row.email) == want, (name, row.email)
        again = sync_destinations(wh, DESTINATIONS, say=lambda _: None, sandbox=False,
                                  segments=[segment])
        assert all(r.writes == 0 for o in again for r in o.results), "a resync sent something"
        who = members.iloc[0]
        from segwise.warehouse import connect

        with connect(wh.duckdb_path) as con:
            con.execute("update marts.customer_profile set rfm_segment = 'Hibernating' "
                        "where customer_id = ?", [who.customer_id])
        changed = sync_destinations(wh, DESTINATIONS, say=lambda _: None, sandbox=False,
                                    segments=[segment])
        for outcome in changed:
            (result,) = outcome.results
            assert (result.sent_updates, result.sent_adds) == (1, 0), outcome.destination
        for name, url in urls.items():
            assert _remote_fields(name, url, who.email)["rfm_segment"] == "Hibernating", name


def test_a_segments_ab_variant_reaches_every_provider_as_a_field(wh):
    """cart_abandoners_24h declares variants (subject_a 45, subject_b 45, control 10):
    each member's variant reaches Mailchimp, Klaviyo, HubSpot and SendGrid as the field
    `variant`, beside the segment's other fields."""
    from segwise.sync.runner import DESTINATIONS, local_sandboxes, sync_destinations

    segment = "cart_abandoners_24h"
    with local_sandboxes() as urls:
        outcomes = sync_destinations(wh, DESTINATIONS, say=lambda _: None, sandbox=False,
                                     segments=[segment])
        assert all(o.error is None for o in outcomes), [o.error for o in outcomes]
        assert all(r.status == "succeeded" for o in outcomes for r in o.results)
        members = query(wh, "select customer_id, email, variant from activation.sync_esp_members "
                            f"where segment_name = '{segment}' and is_sendable order by 1")
        assert set(members["variant"]) == {"subject_a", "subject_b", "control"}
        sample = pd.concat([part.head(2) for _, part in members.groupby("variant")])
        for name, url in urls.items():
            for row in sample.itertuples():
                assert _remote_fields(name, url, row.email).get("variant") == row.variant, \
                    (name, row.email)
