"""Syncing segments into the Mailchimp sandbox (a real HTTP server enforcing the
provider's contract) with the production adapter: diff-based, consent-safe, guarded,
resumable, and never re-subscribing an unsubscribed member."""

from __future__ import annotations

import hashlib

import duckdb
import httpx
import pytest

from segwise.ops import record_validation
from segwise.sync.destinations.mailchimp import MailchimpDestination
from segwise.sync.engine import sync_segment
from segwise.sync.guards import GuardConfig
from segwise.sync.sandboxes.common import SandboxServer
from segwise.sync.sandboxes.mailchimp import create_app, subscriber_hash

from conftest import ESP_RUNS, query, sendable, set_consent

pytestmark = pytest.mark.xdist_group("sync")

KEY = "sandbox-key-0123456789abcdef-us21"
LIST = "aud1"
SEGMENT = "recent_purchasers_30d"
BATCH = 200


@pytest.fixture
def sandbox():
    with SandboxServer(create_app(KEY)) as server:
        yield server


def dest(server) -> MailchimpDestination:
    return MailchimpDestination(server.url, KEY, LIST, batch_size=BATCH)


def remote(server) -> dict:
    return httpx.get(f"{server.url}/_sandbox/lists/{LIST}/state").json()


def admin(server, path: str, body: dict | None = None) -> dict:
    if body is None:
        return httpx.get(f"{server.url}{path}").json()
    return httpx.post(f"{server.url}{path}", json=body).json()


def expected_emails(settings, segment=SEGMENT) -> set[str]:
    return sendable(settings, segment)


def test_first_sync_then_noop(wh, sandbox):
    first = sync_segment(wh, SEGMENT, dest(sandbox))
    assert first.status == "succeeded", first.guard_outcome
    want = expected_emails(wh)
    assert len(want) > 2 * BATCH  # several batches
    assert set(remote(sandbox)["segments"][SEGMENT]) == want
    admin(sandbox, "/_sandbox/requests/reset", {})
    again = sync_segment(wh, SEGMENT, dest(sandbox))
    assert again.status == "succeeded"
    assert len(again.plan.adds) == 0 and again.sent_adds == 0
    assert admin(sandbox, "/_sandbox/requests")["writes"] == 0
    runs = query(wh, f"select * from {ESP_RUNS} order by started_at")
    assert list(runs["planned_adds"]) == [len(want), 0]


def test_never_pushes_without_consent_or_into_holdout(wh, sandbox):
    sync_segment(wh, "cart_abandoners_24h", dest(sandbox))
    pushed = set(remote(sandbox)["members"])
    bad = query(wh, """
        select c.email from segments.cart_abandoners_24h s
        join marts.customer_consent c using (customer_id)
        where c.email is not null and (s.is_holdout or not c.has_email_consent)""")
    assert len(bad) > 0
    assert pushed.isdisjoint(set(bad["email"]))


def _hash_bucket(salt: str, customer_id: str) -> int:
    """The documented holdout hash (macros/is_holdout.sql), written out independently."""
    return int(hashlib.md5(f"{salt}:{customer_id}".encode()).hexdigest()[:8], 16) % 10000


def test_never_pushes_the_universal_control_group_or_a_segments_holdout(wh, sandbox):
    """inactive_90d has a 15 % holdout and every list excludes the 5 % universal control
    group: after a real sync into the sandbox, neither group's consented members are in
    its audience, and everyone else who may be emailed is."""
    segment = "inactive_90d"
    result = sync_segment(wh, segment, dest(sandbox))
    assert result.status == "succeeded"
    pushed = set(remote(sandbox)["segments"][segment])
    members = query(wh, f"""
        select s.customer_id, s.is_holdout, c.email from segments.{segment} s
        join marts.customer_consent c using (customer_id)
        where c.email is not null and c.has_email_consent and c.exclusion_reason is null""")
    control = members["customer_id"].map(lambda c: _hash_bucket("universal_control", c) < 500)
    holdout = members["customer_id"].map(lambda c: _hash_bucket(segment, c) < 1500)
    assert (holdout == members["is_holdout"]).all()
    assert control.sum() > 0 and holdout.sum() > 0
    assert pushed.isdisjoint(set(members.loc[control | holdout, "email"]))
    assert pushed == set(members.loc[~control & ~holdout, "email"])
    feed = query(wh, f"select customer_id, is_sendable, exclusion_reason "
                     f"from activation.sync_esp_members where segment_name = '{segment}'")
    kept_out = feed[feed["exclusion_reason"] == "universal_control"]
    assert set(kept_out["customer_id"]) == set(members.loc[control & ~holdout, "customer_id"])
    assert not kept_out["is_sendable"].any()


def test_unsubscribed_member_is_never_resubscribed(wh, sandbox):
    victim = sorted(expected_emails(wh))[0]
    admin(sandbox, f"/_sandbox/lists/{LIST}/members",
          {"email_address": victim, "status": "unsubscribed"})
    result = sync_segment(wh, SEGMENT, dest(sandbox))
    state = remote(sandbox)
    assert state["members"][victim] == "unsubscribed"
    assert victim not in state["segments"][SEGMENT]
    assert result.suppressed == 1
    sup = query(wh, "select email, remote_status from ops.destination_suppressions")
    assert list(sup.itertuples(index=False, name=None)) == [(victim, "unsubscribed")]
    # the next run does not try again
    again = sync_segment(wh, SEGMENT, dest(sandbox))
    assert again.plan.excluded_suppressed >= 1 and again.sent_adds == 0
    member = httpx.get(f"{sandbox.url}/3.0/lists/{LIST}/members/{subscriber_hash(victim)}",
                       auth=("x", KEY)).json()
    assert member["status"] == "unsubscribed"


def test_compliance_state_is_enforced_by_the_sandbox(sandbox):
    admin(sandbox, f"/_sandbox/lists/{LIST}/members",
          {"email_address": "gone@example.com", "status": "cleaned"})
    r = httpx.post(f"{sandbox.url}/3.0/lists/{LIST}", auth=("x", KEY), json={
        "members": [{"email_address": "gone@example.com", "status": "subscribed"}],
        "update_existing": True}).json()
    assert r["error_count"] == 1 and "compliance state" in r["errors"][0]["error"]
    too_many = httpx.post(f"{sandbox.url}/3.0/lists/{LIST}", auth=("x", KEY), json={
        "members": [{"email_address": f"u{i}@example.com", "status_if_new": "subscribed"}
                    for i in range(501)]})
    assert too_many.status_code == 400
    assert too_many.headers["content-type"].startswith("application/problem+json")
    assert httpx.post(f"{sandbox.url}/3.0/lists/{LIST}", auth=("x", "wrong"),
                      json={"members": []}).status_code == 401


@pytest.mark.parametrize("fault", [{"rate_limit_next": 6}, {"error_next": 4}])
def test_faults_end_with_correct_state(wh, sandbox, fault):
    admin(sandbox, "/_sandbox/faults", fault)
    d = dest(sandbox)
    result = sync_segment(wh, SEGMENT, d)
    assert result.status == "succeeded"
    assert set(remote(sandbox)["segments"][SEGMENT]) == expected_emails(wh)
    log = admin(sandbox, "/_sandbox/requests")
    if "rate_limit_next" in fault:
        assert log["rate_limited"] == 6 and d.stats.rate_limited == 6
        runs = query(wh, f"select rate_limited from {ESP_RUNS}")
        assert runs["rate_limited"][0] == 6
    else:
        assert log["server_errors"] == 4


def test_crash_then_resume_sends_each_member_once(wh, sandbox):
    want = expected_emails(wh)
    with pytest.raises(SystemExit):
        sync_segment(wh, SEGMENT, dest(sandbox), crash_after_batches=1)
    # batches run in parallel: the first one to complete (a full one or the remainder) is
    # checkpointed; the others in flight reached the ESP but not the ledger
    held = query(wh, "select count(*) as n from ops.destination_ledger "
                       "where destination not in ('file', 'ad_audience')")["n"][0]
    assert held in (BATCH, len(want) % BATCH)
    resumed = sync_segment(wh, SEGMENT, dest(sandbox))
    assert resumed.sent_adds == len(want) - held
    assert set(remote(sandbox)["segments"][SEGMENT]) == want
    ledger = query(wh, "select customer_id, count(*) as n from ops.destination_ledger "
                       "where destination not in ('file', 'ad_audience') "
                       "group by 1 having count(*) > 1")
    assert ledger.empty


def _shrink_segment(settings, keep_share: float) -> None:
    con = duckdb.connect(str(settings.duckdb_path))
    rows = con.execute(f"select customer_id from segments.{SEGMENT} order by 1").fetchall()
    keep = [r[0] for r in rows[: int(len(rows) * keep_share)]]
    con.execute("create or replace table main.keep_ids as select unnest(?) as customer_id",
                [keep])
    sql = con.execute("select sql from duckdb_views() where view_name = ? "
                      "and schema_name = 'segments'", [SEGMENT]).fetchall()[0][0]
    con.execute(f"alter view segments.{SEGMENT} rename to {SEGMENT}_full")
    con.execute(f"create view segments.{SEGMENT} as select * from segments.{SEGMENT}_full "
                "where customer_id in (select customer_id from main.keep_ids)")
    # the sync feed reads the built memberships table
    con.execute("delete from segmentation.segment_memberships where segment_name = ? and "
                "customer_id not in (select customer_id from main.keep_ids)", [SEGMENT])
    con.close()
    assert sql


def test_guard_blocks_a_60_percent_removal_until_forced(wh, sandbox):
    sync_segment(wh, SEGMENT, dest(sandbox), mode="mirror")
    before = set(remote(sandbox)["segments"][SEGMENT])
    _shrink_segment(wh, 0.4)
    admin(sandbox, "/_sandbox/requests/reset", {})
    blocked = sync_segment(wh, SEGMENT, dest(sandbox), mode="mirror")
    assert blocked.status == "blocked"
    assert "removals" in blocked.guard_outcome and "exceed 20%" in blocked.guard_outcome
    assert admin(sandbox, "/_sandbox/requests")["requests"] == 0
    assert set(remote(sandbox)["segments"][SEGMENT]) == before
    forced = sync_segment(wh, SEGMENT, dest(sandbox), mode="mirror", force=True)
    assert forced.status == "succeeded" and forced.succeeded_removes > 0
    assert set(remote(sandbox)["segments"][SEGMENT]) == expected_emails(wh)
    status = query(wh, f"select status from {ESP_RUNS} order by started_at")["status"]
    assert list(status) == ["succeeded", "blocked", "succeeded"]


def test_upsert_mode_never_removes(wh, sandbox):
    sync_segment(wh, SEGMENT, dest(sandbox))
    before = set(remote(sandbox)["segments"][SEGMENT])
    _shrink_segment(wh, 0.9)
    result = sync_segment(wh, SEGMENT, dest(sandbox), mode="upsert",
                          guards=GuardConfig(max_size_change_pct=100))
    assert len(result.plan.removes) == 0 and result.sent_removes == 0
    assert set(remote(sandbox)["segments"][SEGMENT]) == before


def test_failing_validation_blocks_the_sync(wh, sandbox):
    record_validation(wh, "bad", False, [{"expectation": "x"}])
    result = sync_segment(wh, SEGMENT, dest(sandbox))
    assert result.status == "blocked" and "data gate" in result.guard_outcome
    assert admin(sandbox, "/_sandbox/requests")["requests"] == 0


def test_dry_run_sends_nothing(wh, sandbox):
    result = sync_segment(wh, SEGMENT, dest(sandbox), dry_run=True)
    assert result.status == "dry_run" and len(result.plan.adds) > 0
    assert admin(sandbox, "/_sandbox/requests")["requests"] == 0


def test_adapter_repr_hides_the_key(sandbox):
    assert KEY not in repr(dest(sandbox))


def test_kill_minus_9_mid_sync_then_resume(wh, sandbox):
    """A real `segwise sync` process killed with SIGKILL between requests, then re-run:
    the destination ends equal to the segment and no member is added twice."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    admin(sandbox, "/_sandbox/faults", {"delay_ms": 150})
    env = dict(os.environ, SEGWISE_DUCKDB_PATH=str(wh.duckdb_path),
               SEGWISE_MAILCHIMP_API_KEY=KEY, SEGWISE_MAILCHIMP_URL=sandbox.url,
               SEGWISE_MAILCHIMP_LIST_ID=LIST)
    cli = [str(Path(sys.executable).with_name("segwise")), "sync", "--destination",
           "mailchimp", "--segment", SEGMENT, "--batch-size", "50"]
    proc = subprocess.Popen(cli, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while admin(sandbox, "/_sandbox/requests")["writes"] < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    partial = set(remote(sandbox)["segments"].get(SEGMENT, []))
    want = expected_emails(wh)
    assert partial < want  # killed part-way
    admin(sandbox, "/_sandbox/faults", {"delay_ms": 0})
    done = subprocess.run(cli, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert set(remote(sandbox)["segments"][SEGMENT]) == want
    ledger = query(wh, "select customer_id, count(*) as n from ops.destination_ledger "
                       "where destination not in ('file', 'ad_audience') "
                       "group by 1 having count(*) > 1")
    assert ledger.empty
    # the re-run only sent what the ledger did not hold yet, plus at most the batches that
    # were in flight when the process died (Mailchimp: up to 10 of 50)
    runs = query(wh, f"select sent_adds from {ESP_RUNS} where status = 'succeeded'")
    assert runs["sent_adds"].sum() <= len(want) - len(partial) + 10 * 50


def test_incremental_change_sends_exactly_the_diff(wh, sandbox):
    first = sync_segment(wh, SEGMENT, dest(sandbox))
    assert admin(sandbox, "/_sandbox/requests")["client_errors"] == 0  # no over-limit call
    assert first.sent_adds == len(expected_emails(wh))
    con = duckdb.connect(str(wh.duckdb_path))
    newcomer = con.execute(f"""
        select s.customer_id, c.email from segments.{SEGMENT} s
        join marts.customer_consent c using (customer_id)
        where not s.is_holdout and c.latest_signal = 'no_consent' and c.email is not null
          and not exists (select 1 from staging.base_email__events as e
                          where e.customer_id = s.customer_id
                            and e.event_type in ('unsubscribe', 'bounce', 'complaint'))
        order by 1 limit 1""").fetchall()[0]
    renamed = con.execute("select customer_id, email from ops.destination_ledger "
                       "where destination not in ('file', 'ad_audience') "
                          "order by customer_id limit 1").fetchall()[0]
    con.execute("update marts.dim_customers set first_name = 'Renamed' where customer_id = ?",
                [renamed[0]])
    con.close()
    set_consent(wh, [newcomer[0]], True)
    admin(sandbox, "/_sandbox/requests/reset", {})
    second = sync_segment(wh, SEGMENT, dest(sandbox))
    assert (second.sent_adds, second.sent_updates, second.sent_removes) == (1, 1, 0)
    assert newcomer[1] in remote(sandbox)["segments"][SEGMENT]
    member = httpx.get(f"{sandbox.url}/3.0/lists/{LIST}/members/{subscriber_hash(renamed[1])}",
                       auth=("x", KEY)).json()
    assert member["merge_fields"]["FNAME"] == "Renamed"
    # one upsert + one segment add for the newcomer, one upsert for the update
    assert admin(sandbox, "/_sandbox/requests")["writes"] == 3


def test_per_member_rejection_is_recorded_and_the_rest_succeeds(wh, sandbox):
    """Mailchimp refuses a valid-looking address it considers fake: that member is
    rejected with the provider's error, everyone else in the batch is synced."""
    victim_email = sorted(expected_emails(wh))[0]
    victim = query(wh, "select customer_id from marts.customer_consent where email = "
                       f"'{victim_email}'")["customer_id"][0]
    admin(sandbox, "/_sandbox/looks-fake", {"email": victim_email})
    result = sync_segment(wh, SEGMENT, dest(sandbox))
    assert result.status == "partial" and result.rejected_adds == 1
    rej = query(wh, "select customer_id, operation, error from ops.sync_rejections")
    assert list(rej["customer_id"]) == [victim] and rej["operation"][0] == "upsert"
    assert "looks fake or invalid" in rej["error"][0]
    assert set(remote(sandbox)["segments"][SEGMENT]) == expected_emails(wh) - {victim_email}


def test_dropped_connections_after_the_write_are_retried_safely(wh, sandbox):
    admin(sandbox, "/_sandbox/faults", {"drop_next": 3})
    result = sync_segment(wh, SEGMENT, dest(sandbox))
    assert result.status == "succeeded"
    assert admin(sandbox, "/_sandbox/faults", {})["drop_next"] == 0  # all three happened
    assert set(remote(sandbox)["segments"][SEGMENT]) == expected_emails(wh)
    # nothing was applied twice in a way that shows: one member per email
    assert len(remote(sandbox)["members"]) == len(expected_emails(wh))


def test_another_audience_gets_its_own_ledger(wh, sandbox):
    """Pointing segwise at a second Mailchimp audience must not believe that audience
    already holds everybody the first one does."""
    first = sync_segment(wh, SEGMENT, dest(sandbox))
    other = sync_segment(wh, SEGMENT, MailchimpDestination(sandbox.url, KEY, "aud2"))
    assert other.sent_adds == first.sent_adds > 0
    in_aud2 = httpx.get(f"{sandbox.url}/_sandbox/lists/aud2/state").json()["segments"]
    assert set(in_aud2[SEGMENT]) == expected_emails(wh)
    ledger = query(wh, "select destination, count(*) as n from ops.destination_ledger "
                       "where destination not in ('file', 'ad_audience') "
                       "group by 1 order by 1")
    assert list(ledger["destination"]) == ["mailchimp:aud1", "mailchimp:aud2"]


# ---- issue #10: what Mailchimp's reference says, and the adapter got wrong ----
from segwise.sync.destinations.base import Contact, DestinationError  # noqa: E402


def test_a_saved_segment_of_the_same_name_is_not_the_list(sandbox):
    """Segments are listed 10 a page by default, saved (condition) segments among them:
    the adapter looks among static segments only, on every page."""
    for i in range(12):
        httpx.post(f"{sandbox.url}/_sandbox/lists/{LIST}/segments",
                   json={"name": f"other {i}", "type": "static"})
    httpx.post(f"{sandbox.url}/_sandbox/lists/{LIST}/segments", json={"name": "vip"})
    d = dest(sandbox)
    d.upsert_contacts([Contact("a", "a@x.io")])
    assert all(r.ok for r in d.add_to_list("vip", [Contact("a", "a@x.io")]))
    assert remote(sandbox)["segments"]["vip"] == ["a@x.io"]
    again = dest(sandbox)  # a new process finds that static segment past the first page
    assert all(r.ok for r in again.add_to_list("vip", [Contact("a", "a@x.io")]))
    assert list(remote(sandbox)["segments"]).count("vip") == 1


def test_removing_an_address_not_in_the_segment_is_ignored(sandbox):
    d = dest(sandbox)
    d.upsert_contacts([Contact("a", "a@x.io"), Contact("b", "b@x.io")])
    d.add_to_list("vip", [Contact("a", "a@x.io")])
    url = f"{sandbox.url}/3.0/lists/{LIST}/segments/{d._list_id('vip')}"
    body = httpx.post(url, auth=("x", KEY), json={"members_to_remove": ["b@x.io"]}).json()
    assert body["errors"] == [] and body["total_removed"] == 0
    assert all(r.ok for r in d.remove_from_list("vip", [Contact("b", "b@x.io")]))


def test_an_html_error_page_is_reported_not_a_crash(sandbox):
    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"html_error_next": 1})
    with pytest.raises(DestinationError, match="403"):
        dest(sandbox).upsert_contacts([Contact("a", "a@x.io")])


def test_an_absent_name_is_not_sent_and_does_not_blank_mailchimp(sandbox):
    d = dest(sandbox)
    d.upsert_contacts([Contact("a", "ann@x.io", {"first_name": "Ann"})])
    d.upsert_contacts([Contact("a", "ann@x.io", {"first_name": "", "last_name": None})])
    member = httpx.get(f"{sandbox.url}/3.0/lists/{LIST}/members/{subscriber_hash('ann@x.io')}",
                       auth=("x", KEY)).json()
    assert member["merge_fields"] == {"FNAME": "Ann"}
