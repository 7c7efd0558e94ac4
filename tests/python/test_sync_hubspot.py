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

pytestmark = pytest.mark.xdist_group("sync_more")  # ESP tests: a second group, for balance

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
                   json={"inputs": [{"idProperty": "email", "id": "ok@x.io",
                                     "properties": {}},
                                    {"idProperty": "email", "id": "not an email",
                                     "properties": {}}]})
    assert r.status_code == 207 and len(r.json()["errors"]) == 1
    over = httpx.post(f"{sandbox.url}/crm/v3/objects/contacts/batch/upsert",
                      headers={"Authorization": f"Bearer {TOKEN}"},
                      json={"inputs": [{"idProperty": "email", "id": f"u{i}@x.io",
                                        "properties": {}} for i in range(101)]})
    assert over.status_code == 400 and over.json()["category"] == "VALIDATION_ERROR"


def test_rate_limit_window_is_enforced_and_survived(wh, sandbox):
    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"rate_limit_next": 3})
    d = HubSpotDestination(sandbox.url, TOKEN)
    result = sync_segment(wh, SEGMENT, d)
    assert result.status == "succeeded" and d.stats.rate_limited >= 3
    assert set(state(sandbox)["lists"][SEGMENT]) == expected_emails(wh)


# ---- issue #10: what HubSpot's published definitions say, and the adapter got wrong ----
from segwise.sync.destinations.base import Contact, DestinationError  # noqa: E402

HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def _contacts(*emails: str, **fields) -> list[Contact]:
    return [Contact(f"c{i}", e, dict(fields)) for i, e in enumerate(emails)]


def test_a_record_deleted_since_its_id_was_learned_is_reported_missing(sandbox):
    """Memberships answer `recordIdsMissing` (the SDK's MembershipsUpdateResponse): an id
    HubSpot no longer has must come back as a failed add, not a silent success."""
    d = HubSpotDestination(sandbox.url, TOKEN)
    people = _contacts("keep@x.io", "gone@x.io")
    assert all(r.ok for r in d.upsert_contacts(people))
    httpx.post(f"{sandbox.url}/_sandbox/contacts/delete", json={"email": "gone@x.io"})
    results = {r.email: r for r in d.add_to_list("vip", people)}
    assert results["keep@x.io"].ok and not results["gone@x.io"].ok
    assert state(sandbox)["lists"]["vip"] == ["keep@x.io"]


def test_an_opt_out_is_read_not_expected_in_the_upsert_echo(sandbox):
    """Batch upsert echoes the properties it was sent (not `hs_email_optout`): the adapter
    reads the opt-out by a batch read that asks for it."""
    httpx.post(f"{sandbox.url}/_sandbox/contacts", json={"email": "out@x.io", "optout": True})
    echo = httpx.post(f"{sandbox.url}/crm/v3/objects/contacts/batch/upsert", headers=HEADERS,
                      json={"inputs": [{"idProperty": "email", "id": "out@x.io",
                                        "properties": {"email": "out@x.io"}}]}).json()
    assert "hs_email_optout" not in echo["results"][0]["properties"]
    (result,) = HubSpotDestination(sandbox.url, TOKEN).upsert_contacts(_contacts("out@x.io"))
    assert not result.ok and result.remote_status == "unsubscribed"


def test_removing_unknown_addresses_creates_no_contact(sandbox):
    """A fresh process learns record ids by a batch read by email, never by an upsert
    (which would re-create a contact a user deleted in HubSpot)."""
    d = HubSpotDestination(sandbox.url, TOKEN)
    d.upsert_contacts(_contacts("member@x.io"))
    d.add_to_list("vip", _contacts("member@x.io"))
    fresh = HubSpotDestination(sandbox.url, TOKEN)
    results = fresh.remove_from_list("vip", _contacts("member@x.io", "deleted@x.io"))
    assert all(r.ok for r in results)
    s = state(sandbox)
    assert "deleted@x.io" not in s["contacts"] and s["lists"]["vip"] == []


def test_a_list_name_is_escaped_in_the_lookup_url(sandbox):
    for _ in range(2):  # a new process finds the list it created, once
        HubSpotDestination(sandbox.url, TOKEN).prepare("spring sale/VIP #1")
    assert list(state(sandbox)["lists"]) == ["spring sale/VIP #1"]


def test_the_daily_limit_fails_at_once_without_retrying():
    """HubSpot's daily cap answers 429 with policyName DAILY until midnight: retrying is
    pointless, so the adapter gives up on the first one and says why."""
    with SandboxServer(create_app(TOKEN, daily_max=2)) as server:
        d = HubSpotDestination(server.url, TOKEN)
        d.upsert_contacts(_contacts("a@x.io"))  # upsert + opt-out read: the two allowed
        before = d.stats.requests
        with pytest.raises(DestinationError, match="daily limit"):
            d.upsert_contacts(_contacts("b@x.io"))
        assert d.stats.requests == before + 1


def test_an_absent_name_is_not_sent_and_does_not_blank_hubspot(sandbox):
    """HubSpot clears a property sent as an empty string: a field segwise does not have is
    left out, so the name another system set stays."""
    d = HubSpotDestination(sandbox.url, TOKEN)
    d.upsert_contacts([Contact("c1", "ann@x.io", {"first_name": "Ann"})])
    d.upsert_contacts([Contact("c1", "ann@x.io", {})])
    d.upsert_contacts([Contact("c1", "ann@x.io", {"first_name": None, "last_name": ""})])
    got = httpx.get(f"{sandbox.url}/_sandbox/contacts/ann@x.io").json()
    assert got["properties"]["firstname"] == "Ann" and "lastname" not in got["properties"]
