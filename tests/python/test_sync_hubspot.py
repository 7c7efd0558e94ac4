"""Syncing into the HubSpot sandbox (batch upsert with 207 partial failures, manual lists
by record id, ten-second rolling rate limit) with the production adapter."""

from __future__ import annotations

import httpx
import pytest

from segwise.sync.destinations.hubspot import HubSpotDestination
from segwise.sync.engine import sync_segment
from segwise.sync.sandboxes.common import SandboxServer
from segwise.sync.sandboxes.hubspot import create_app
from test_sync_mailchimp import expected_emails

from conftest import query, set_consent
from conftest import sandbox_state as state

pytestmark = pytest.mark.xdist_group("sync")

TOKEN = "pat-na1-test-token"
SEGMENT = "recent_purchasers_30d"


@pytest.fixture
def sandbox():
    with SandboxServer(create_app(TOKEN)) as server:
        yield server


def test_sync_noop_and_mirror_removal(wh, sandbox):
    first = sync_segment(wh, SEGMENT, HubSpotDestination(sandbox.url, TOKEN))
    assert first.status == "succeeded", first.guard_outcome
    want = expected_emails(wh)
    assert set(state(sandbox)["lists"][SEGMENT]) == want
    httpx.post(f"{sandbox.url}/_sandbox/requests/reset", json={})
    again = sync_segment(wh, SEGMENT, HubSpotDestination(sandbox.url, TOKEN))
    assert again.sent_adds == 0
    assert httpx.get(f"{sandbox.url}/_sandbox/requests").json()["writes"] == 0
    # one member leaves: mirror mode removes exactly that member, in a new process
    leaver = query(wh, "select customer_id, email from ops.destination_ledger "
                 "where destination not in ('file', 'ad_audience') "
                       "order by customer_id limit 1")
    set_consent(wh, [leaver["customer_id"][0]], False)
    result = sync_segment(wh, SEGMENT, HubSpotDestination(sandbox.url, TOKEN), mode="mirror")
    assert result.succeeded_removes == 1
    assert set(state(sandbox)["lists"][SEGMENT]) == want - {leaver["email"][0]}


def test_opted_out_contact_is_never_added(wh, sandbox):
    victim = sorted(expected_emails(wh))[2]
    httpx.post(f"{sandbox.url}/_sandbox/contacts", json={"email": victim, "optout": True})
    result = sync_segment(wh, SEGMENT, HubSpotDestination(sandbox.url, TOKEN))
    s = state(sandbox)
    assert victim not in s["lists"][SEGMENT] and s["contacts"][victim] == "true"
    assert result.suppressed == 1


def test_partial_failure_goes_to_rejections(sandbox):
    r = httpx.post(f"{sandbox.url}/crm/v3/objects/contacts/batch/upsert",
                   headers={"Authorization": f"Bearer {TOKEN}"},
                   json={"inputs": [{"idProperty": "email", "id": "ok@x.io"},
                                    {"idProperty": "email", "id": "not an email"}]})
    assert r.status_code == 207 and len(r.json()["errors"]) == 1
    over = httpx.post(f"{sandbox.url}/crm/v3/objects/contacts/batch/upsert",
                      headers={"Authorization": f"Bearer {TOKEN}"},
                      json={"inputs": [{"idProperty": "email", "id": f"u{i}@x.io"}
                                       for i in range(101)]})
    assert over.status_code == 400 and over.json()["category"] == "VALIDATION_ERROR"


def test_rate_limit_window_is_enforced_and_survived(wh, sandbox):
    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"rate_limit_next": 3})
    d = HubSpotDestination(sandbox.url, TOKEN)
    result = sync_segment(wh, SEGMENT, d)
    assert result.status == "succeeded" and d.stats.rate_limited >= 3
    assert set(state(sandbox)["lists"][SEGMENT]) == expected_emails(wh)
