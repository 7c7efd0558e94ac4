"""Syncing into the SendGrid sandbox (async upsert jobs with list_ids, contact search,
list removal, global unsubscribes) with the production adapter."""

from __future__ import annotations

import duckdb
import httpx
import pytest

from segwise.sync.destinations.sendgrid import SendGridDestination
from segwise.sync.engine import sync_segment
from segwise.sync.sandboxes.common import SandboxServer
from segwise.sync.sandboxes.sendgrid import create_app
from test_sync_mailchimp import expected_emails

from conftest import sandbox_state as state
from conftest import set_consent

pytestmark = pytest.mark.xdist_group("sync")

KEY = "SG.test-key.abcdef"
SEGMENT = "recent_purchasers_30d"


@pytest.fixture
def sandbox():
    with SandboxServer(create_app(KEY)) as server:
        yield server


def test_sync_noop_unsubscribe_and_mirror(wh, sandbox):
    victim = sorted(expected_emails(wh))[3]
    httpx.post(f"{sandbox.url}/_sandbox/unsubscribes", json={"email": victim})
    first = sync_segment(wh, SEGMENT, SendGridDestination(sandbox.url, KEY, batch_size=300))
    assert first.status == "succeeded", first.guard_outcome
    want = expected_emails(wh) - {victim}
    s = state(sandbox)
    assert set(s["lists"][SEGMENT]) == want and victim not in s["contacts"]
    assert first.suppressed == 1
    httpx.post(f"{sandbox.url}/_sandbox/requests/reset", json={})
    again = sync_segment(wh, SEGMENT, SendGridDestination(sandbox.url, KEY))
    assert again.sent_adds == 0
    assert httpx.get(f"{sandbox.url}/_sandbox/requests").json()["writes"] == 0
    con = duckdb.connect(str(wh.duckdb_path))
    gone = con.execute("select customer_id, email from ops.destination_ledger "
                 "where destination not in ('file', 'ad_audience') "
                       "order by customer_id limit 2").fetchall()
    con.close()
    set_consent(wh, [gone[0][0], gone[1][0]], False)
    result = sync_segment(wh, SEGMENT, SendGridDestination(sandbox.url, KEY), mode="mirror")
    assert result.succeeded_removes == 2
    assert set(state(sandbox)["lists"][SEGMENT]) == want - {gone[0][1], gone[1][1]}


def test_faults_and_limits(wh, sandbox):
    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"rate_limit_next": 4, "error_next": 2})
    d = SendGridDestination(sandbox.url, KEY)
    result = sync_segment(wh, SEGMENT, d)
    assert result.status == "succeeded" and d.stats.rate_limited == 4
    assert set(state(sandbox)["lists"][SEGMENT]) == expected_emails(wh)
    headers = {"Authorization": f"Bearer {KEY}"}
    r = httpx.post(f"{sandbox.url}/v3/marketing/contacts/search/emails", headers=headers,
                   json={"emails": [f"u{i}@x.io" for i in range(101)]})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "emails"
    r = httpx.put(f"{sandbox.url}/v3/marketing/contacts", headers=headers,
                  json={"contacts": [{"email": f"u{i}@x.io"} for i in range(30_001)]})
    assert r.status_code == 400


def test_failed_upsert_job_fails_the_run_and_a_rerun_completes(wh, sandbox):
    from segwise.sync.destinations.base import DestinationError

    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"fail_jobs_next": 1})
    with pytest.raises(DestinationError, match="failed"):
        sync_segment(wh, SEGMENT, SendGridDestination(sandbox.url, KEY))
    again = sync_segment(wh, SEGMENT, SendGridDestination(sandbox.url, KEY))
    assert again.status == "succeeded"
    assert set(state(sandbox)["lists"][SEGMENT]) == expected_emails(wh)
