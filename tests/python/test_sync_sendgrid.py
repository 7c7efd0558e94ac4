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

pytestmark = pytest.mark.xdist_group("sync_more")  # ESP tests: a second group, for balance

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


# ---- issue #10: what SendGrid's published definitions say, and the adapter got wrong ----
from segwise.sync.destinations.base import Contact  # noqa: E402


def _people(*emails: str) -> list[Contact]:
    return [Contact(f"c{i}", e) for i, e in enumerate(emails)]


def test_an_unknown_address_in_a_search_is_an_error_entry_not_a_crash(sandbox):
    """search/emails answers an unknown address with {"error": "contact not found"} next
    to the found ones: removal and erasure skip it instead of raising KeyError."""
    d = SendGridDestination(sandbox.url, KEY)
    d.add_to_list("vip", _people("known@x.io"))
    results = d.remove_from_list("vip", _people("known@x.io", "ghost@x.io"))
    assert all(r.ok for r in results) and state(sandbox)["lists"]["vip"] == []
    receipts = {r.email: r.status for r in d.erase(["known@x.io", "ghost@x.io"])}
    assert receipts == {"known@x.io": "accepted", "ghost@x.io": "not_found"}


def test_every_page_and_kind_of_suppression_is_read(sandbox):
    """Global unsubscribes are paged (500 a page): the 600th counts too; so do group
    unsubscribes, bounces and spam reports."""
    many = [f"u{i:04d}@x.io" for i in range(600)]
    httpx.post(f"{sandbox.url}/_sandbox/unsubscribes", json={"emails": many})
    for kind in ("bounce", "spam", "group"):
        httpx.post(f"{sandbox.url}/_sandbox/unsubscribes", json={"kind": kind,
                                                                "email": f"{kind}@x.io"})
    d = SendGridDestination(sandbox.url, KEY)
    results = {r.email: r for r in d.upsert_contacts(
        _people(many[-1], "bounce@x.io", "spam@x.io", "group@x.io", "fine@x.io"))}
    assert {e: r.remote_status for e, r in results.items()} == {
        many[-1]: "unsubscribed", "bounce@x.io": "bounced", "spam@x.io": "complained",
        "group@x.io": "unsubscribed", "fine@x.io": None}
    assert results["fine@x.io"].ok and not results["spam@x.io"].ok


def test_an_errored_import_job_rejects_only_the_contacts_it_names(sandbox):
    """`errored` means finished with some errors: the errors file names them; the rest of
    the batch is in the list, and the run does not fail."""
    d = SendGridDestination(sandbox.url, KEY)
    results = {r.email: r for r in d.add_to_list("vip", _people("a@x.io", "bad@", "b@x.io"))}
    assert results["a@x.io"].ok and results["b@x.io"].ok
    assert not results["bad@"].ok and "invalid email" in results["bad@"].error
    assert state(sandbox)["lists"]["vip"] == ["a@x.io", "b@x.io"]


def test_a_429_waits_for_x_ratelimit_reset():
    """SendGrid's 429 has no Retry-After: the wait comes from X-RateLimit-Reset (epoch)."""
    import time

    from tenacity import RetryCallState

    from segwise.sync.destinations.base import RetryableHTTPError, _wait

    response = httpx.Response(429, headers={"X-RateLimit-Reset": str(int(time.time()) + 3)})
    state_ = RetryCallState(None, None, (), {})
    state_.set_exception((RetryableHTTPError, RetryableHTTPError(response), None))
    assert 1.5 < _wait(state_) <= 3.0


def test_a_stale_contact_id_in_a_list_removal_is_not_an_error(sandbox, monkeypatch):
    """DELETE …/lists/{id}/contacts answers 404 when an id no longer exists: the member is
    gone already, so the removal succeeded."""
    d = SendGridDestination(sandbox.url, KEY)
    d.add_to_list("vip", _people("a@x.io"))
    stale = d._contact_ids(["a@x.io"])
    httpx.post(f"{sandbox.url}/_sandbox/contacts/delete", json={"email": "a@x.io"})
    monkeypatch.setattr(d, "_contact_ids", lambda emails: stale)
    assert all(r.ok for r in d.remove_from_list("vip", _people("a@x.io")))


def test_an_absent_name_is_not_sent_and_does_not_blank_sendgrid(sandbox):
    d = SendGridDestination(sandbox.url, KEY)
    d.add_to_list("vip", [Contact("a", "ann@x.io", {"first_name": "Ann"})])
    d.add_to_list("vip", [Contact("a", "ann@x.io", {"first_name": "", "last_name": None})])
    got = httpx.get(f"{sandbox.url}/_sandbox/contacts/ann@x.io").json()
    assert got["first_name"] == "Ann" and "last_name" not in got
