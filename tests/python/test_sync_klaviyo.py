"""Syncing into the Klaviyo sandbox (JSON:API, revision header, async bulk import jobs,
list relationships) with the production adapter."""

from __future__ import annotations

import json

import httpx
import pytest

from segwise.sync.destinations.klaviyo import KlaviyoDestination
from segwise.sync.engine import sync_segment
from segwise.sync.sandboxes.common import SandboxServer
from segwise.sync.sandboxes.klaviyo import create_app
from test_sync_mailchimp import expected_emails

from conftest import query
from conftest import sandbox_state as state

pytestmark = pytest.mark.xdist_group("sync_more")  # ESP tests: a second group, for balance

KEY = "pk_test_0123456789"
SEGMENT = "recent_purchasers_30d"
HEADERS = {"Authorization": f"Klaviyo-API-Key {KEY}", "revision": "2026-10-15",
           "content-type": "application/vnd.api+json"}


@pytest.fixture
def sandbox():
    with SandboxServer(create_app(KEY)) as server:
        yield server


def test_sync_then_noop_with_async_import_jobs(wh, sandbox):
    d = KlaviyoDestination(sandbox.url, KEY, batch_size=200)
    first = sync_segment(wh, SEGMENT, d)
    assert first.status == "succeeded", first.guard_outcome
    assert set(state(sandbox)["lists"][SEGMENT]) == expected_emails(wh)
    log = httpx.get(f"{sandbox.url}/_sandbox/requests").json()["by_path"]
    assert any(k.startswith("GET /api/profile-bulk-import-jobs/") for k in log)
    httpx.post(f"{sandbox.url}/_sandbox/requests/reset", json={})
    again = sync_segment(wh, SEGMENT, KlaviyoDestination(sandbox.url, KEY))
    assert again.sent_adds == 0
    assert httpx.get(f"{sandbox.url}/_sandbox/requests").json()["writes"] == 0


def test_unsubscribed_profile_is_never_added_or_resubscribed(wh, sandbox):
    victim = sorted(expected_emails(wh))[1]
    httpx.post(f"{sandbox.url}/_sandbox/profiles",
               json={"email": victim, "consent": "UNSUBSCRIBED"})
    result = sync_segment(wh, SEGMENT, KlaviyoDestination(sandbox.url, KEY))
    s = state(sandbox)
    assert victim not in s["lists"][SEGMENT]
    assert s["profiles"][victim]["consent"] == "UNSUBSCRIBED"
    assert result.suppressed == 1
    assert list(query(wh, "select email from ops.destination_suppressions")["email"]) == [victim]


def test_rate_limit_storm_ends_with_correct_state(wh, sandbox):
    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"rate_limit_next": 5})
    d = KlaviyoDestination(sandbox.url, KEY)
    result = sync_segment(wh, SEGMENT, d)
    assert result.status == "succeeded"
    assert d.stats.rate_limited >= 5
    assert set(state(sandbox)["lists"][SEGMENT]) == expected_emails(wh)


def test_sandbox_enforces_the_contract(sandbox):
    url = sandbox.url
    assert httpx.get(f"{url}/api/lists", headers={**HEADERS, "revision": "1999-01-01"}
                     ).status_code == 400
    assert httpx.get(f"{url}/api/lists", headers={**HEADERS, "Authorization": "x"}
                     ).status_code == 401
    big = {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": [
        {"type": "profile", "attributes": {"email": f"u{i}@x.io"}} for i in range(10_001)]}}}}
    r = httpx.post(f"{url}/api/profile-bulk-import-jobs", headers=HEADERS,
                   content=json.dumps(big))
    assert r.status_code in (400, 413) and r.json()["errors"][0]["status"] == r.status_code
    lst = httpx.post(f"{url}/api/lists", headers=HEADERS, content=json.dumps(
        {"data": {"type": "list", "attributes": {"name": "x"}}})).json()["data"]["id"]
    too_many = {"data": [{"type": "profile", "id": str(i)} for i in range(1001)]}
    r = httpx.post(f"{url}/api/lists/{lst}/relationships/profiles", headers=HEADERS,
                   content=json.dumps(too_many))
    assert r.status_code == 400


def test_sandbox_paginates_and_returns_consent_only_when_asked(sandbox):
    url = sandbox.url
    emails = [f"p{i}@x.io" for i in range(45)]
    for e in emails:
        httpx.post(f"{url}/_sandbox/profiles", json={"email": e, "consent": "SUBSCRIBED"})
    flt = "any(email,[" + ",".join(f'"{e}"' for e in emails) + "])"
    first = httpx.get(f"{url}/api/profiles", headers=HEADERS, params={"filter": flt}).json()
    assert len(first["data"]) == 20 and first["links"]["next"]  # the default page
    assert "subscriptions" not in first["data"][0]["attributes"]
    seen, page = [], first
    while True:
        seen += [p["attributes"]["email"] for p in page["data"]]
        if not page["links"]["next"]:
            break
        page = httpx.get(page["links"]["next"], headers=HEADERS).json()
    assert sorted(seen) == sorted(emails)
    r = httpx.get(f"{url}/api/profiles", headers=HEADERS,
                  params={"filter": flt, "page[size]": 101})
    assert r.status_code == 400 and r.json()["errors"][0]["source"]["pointer"] == "/page[size]"
    resp = httpx.get(f"{url}/api/profiles", headers=HEADERS, params={
        "filter": flt, "page[size]": 100, "additional-fields[profile]": "subscriptions"})
    assert resp.headers["RateLimit-Limit"] == "750"  # GET /api/profiles steady window (750/min)
    subs = resp.json()
    assert len(subs["data"]) == 45 and subs["links"]["next"] is None
    marketing = subs["data"][0]["attributes"]["subscriptions"]["email"]["marketing"]
    assert marketing["consent"] == "SUBSCRIBED"


def test_failed_import_job_fails_the_run_and_a_rerun_completes(wh, sandbox):
    from segwise.sync.destinations.base import DestinationError

    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"fail_jobs_next": 1})
    with pytest.raises(DestinationError, match="cancelled"):
        sync_segment(wh, SEGMENT, KlaviyoDestination(sandbox.url, KEY, batch_size=200))
    again = sync_segment(wh, SEGMENT, KlaviyoDestination(sandbox.url, KEY, batch_size=200))
    assert again.status == "succeeded"
    assert set(state(sandbox)["lists"][SEGMENT]) == expected_emails(wh)
    dupes = query(wh, "select customer_id from ops.destination_ledger "
                 "where destination not in ('file', 'ad_audience') group by 1 "
                      "having count(*) > 1")
    assert dupes.empty


# ---- issue #10: what Klaviyo's published definitions say, and the adapter got wrong ----
from segwise.sync.destinations.base import Contact, DestinationError  # noqa: E402


def test_the_list_is_found_among_more_lists_than_one_page_holds(sandbox):
    """GET /api/lists returns 10 per page: the list is looked up by name with a filter,
    so an account with more lists does not get a duplicate on every run."""
    for i in range(15):
        httpx.post(f"{sandbox.url}/_sandbox/lists", json={"name": f"list {i:02d}"})
    for _ in range(2):  # two processes, one list
        KlaviyoDestination(sandbox.url, KEY).prepare("vip customers")
    names = [n for n in state(sandbox)["lists"] if n == "vip customers"]
    assert names == ["vip customers"]
    listed = httpx.get(f"{sandbox.url}/api/lists", headers=HEADERS).json()
    assert len(listed["data"]) == 10 and listed["links"]["next"]


def test_an_import_error_without_its_payload_is_still_attributed(sandbox):
    """`original_payload` is nullable: the error's pointer names the failing profile."""
    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"drop_payloads": True})
    people = [Contact("a", "ok@x.io"), Contact("b", "not-an-email")]
    results = {r.email: r for r in KlaviyoDestination(sandbox.url, KEY).upsert_contacts(people)}
    assert results["ok@x.io"].ok
    assert not results["not-an-email"].ok and "not a valid email" in results["not-an-email"].error


def test_a_profile_without_a_marketing_record_is_read(sandbox):
    """`subscriptions.email.marketing` is nullable: such a profile has no ESP-side status."""
    httpx.post(f"{sandbox.url}/_sandbox/profiles", json={"email": "new@x.io", "consent": None})
    (result,) = KlaviyoDestination(sandbox.url, KEY).upsert_contacts([Contact("a", "new@x.io")])
    assert result.ok and result.remote_status is None


def test_next_page_links_count_against_their_own_endpoint(sandbox):
    """`links.next` is an absolute URL: followed as a path, every page of GET /api/profiles
    is paced by that endpoint's limit (75/s), not by a bucket of its own."""
    d = KlaviyoDestination(sandbox.url, KEY)
    keys = []
    acquire = d.limiter.acquire
    d.limiter.acquire = lambda key="", windows=None: (keys.append(key), acquire(key, windows))[1]
    for i in range(250):
        httpx.post(f"{sandbox.url}/_sandbox/profiles", json={"email": f"p{i}@x.io"})
    got = d._paged("/api/profiles", {"filter": "any(email,[" + ",".join(
        f'"p{i}@x.io"' for i in range(100)) + "])"}, page_size=30)
    assert len(got) == 100 and len(keys) == 4
    assert set(keys) == {"GET /api/profiles"}


def test_a_page_link_to_another_host_is_not_followed(sandbox):
    d = KlaviyoDestination(sandbox.url, KEY)
    with pytest.raises(DestinationError, match="another host"):
        d.same_host_path("https://evil.example/api/profiles?page[cursor]=2")
    assert d.same_host_path(f"{sandbox.url}/api/profiles?page[cursor]=2") == \
        "/api/profiles?page[cursor]=2"


def test_the_current_revision_is_sent_and_retired_ones_refused(sandbox):
    from segwise.sync.destinations.klaviyo import REVISION

    assert REVISION == "2026-10-15"  # what klaviyo-api 25, the current SDK, targets
    old = httpx.get(f"{sandbox.url}/api/lists", headers={**HEADERS, "revision": "2024-10-15"})
    assert old.status_code == 410


def test_an_absent_name_is_not_sent(sandbox):
    d = KlaviyoDestination(sandbox.url, KEY)
    d.upsert_contacts([Contact("a", "ann@x.io", {"first_name": "Ann"})])
    d.upsert_contacts([Contact("a", "ann@x.io", {"first_name": "", "last_name": None})])
    profile = httpx.get(f"{sandbox.url}/api/profiles", headers=HEADERS,
                        params={"filter": 'equals(email,"ann@x.io")'}).json()["data"][0]
    assert profile["attributes"]["first_name"] == "Ann"
    assert "last_name" not in profile["attributes"]
