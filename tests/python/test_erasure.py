"""`segwise forget`: an address is erased from every ESP sandbox through each provider's
real erasure call, with a receipt per destination; segwise keeps only a hash, and no
later sync pushes the person again."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from segwise.sync.destinations.hubspot import HubSpotDestination
from segwise.sync.destinations.klaviyo import KlaviyoDestination
from segwise.sync.destinations.mailchimp import MailchimpDestination
from segwise.sync.destinations.sendgrid import SendGridDestination
from segwise.sync.engine import sync_segment
from segwise.sync.erasure import forget
from segwise.sync.sandboxes import hubspot, klaviyo, mailchimp, sendgrid
from segwise.sync.sandboxes.common import SandboxServer
from test_sync_mailchimp import SEGMENT, expected_emails

from conftest import query
from conftest import sandbox_state as state

pytestmark = pytest.mark.xdist_group("sync")

KEY = "erase-key-0000-us21"
PROVIDERS = {
    "mailchimp": (mailchimp.create_app, lambda url: MailchimpDestination(url, KEY, "aud"),
                  "erased"),
    "klaviyo": (klaviyo.create_app, lambda url: KlaviyoDestination(url, KEY), "accepted"),
    "hubspot": (hubspot.create_app, lambda url: HubSpotDestination(url, KEY), "erased"),
    "sendgrid": (sendgrid.create_app, lambda url: SendGridDestination(url, KEY), "accepted"),
}


def _held(server, provider: str) -> tuple[set[str], set[str]]:
    """(members of the segment's list, every contact the destination knows)."""
    if provider == "mailchimp":
        s = httpx.get(f"{server.url}/_sandbox/lists/aud/state").json()
        return set(s["segments"][SEGMENT]), set(s["members"])
    s = state(server)
    known = s.get("profiles") or s.get("contacts")  # keyed by email, or a list of emails
    return set(s["lists"][SEGMENT]), set(known)


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_forget_erases_everywhere_keeps_only_a_hash_and_is_never_resynced(wh, provider):
    create_app, make, done = PROVIDERS[provider]
    with SandboxServer(create_app(KEY)) as server:
        first = sync_segment(wh, SEGMENT, make(server.url))
        assert first.status == "succeeded"
        victim = sorted(expected_emails(wh))[3]
        members, known = _held(server, provider)
        assert victim in members and victim in known
        receipts = forget(wh, [victim.upper(), "nobody@nowhere.example"], [make(server.url)],
                          reason="ticket-42")
        members, known = _held(server, provider)
        again = sync_segment(wh, SEGMENT, make(server.url))
        members_after, _ = _held(server, provider)
    assert victim not in members and victim not in known
    by_status = {r.status for r in receipts if r.email_sha256 == hashlib.sha256(
        victim.encode()).hexdigest()}
    assert by_status == {done}
    unknown = [r.status for r in receipts if r.email_sha256 != hashlib.sha256(
        victim.encode()).hexdigest()]
    # an unknown address: Mailchimp 404 / SendGrid search finds nothing → not_found; Klaviyo
    # accepts any deletion request; HubSpot blocklists the address anyway (documented)
    assert unknown == [{"mailchimp": "not_found", "sendgrid": "not_found",
                        "klaviyo": "accepted", "hubspot": "erased"}[provider]]
    # segwise keeps no plaintext trace of the address
    for table in ("destination_ledger", "destination_suppressions", "sync_rejections"):
        assert query(wh, f"select count(*) as n from ops.{table} where email = '{victim}'"
                     )["n"][0] == 0, table
    stored = query(wh, "select * from ops.erasure_requests").astype(str).values.ravel()
    assert victim not in " ".join(stored) and len(stored) > 0
    # and the next sync does not bring the person back
    assert again.sent_adds == 0 and again.plan.excluded_suppressed >= 1
    assert victim not in members_after


def test_mailchimp_refuses_to_reimport_a_forgotten_address():
    with SandboxServer(mailchimp.create_app(KEY)) as server:
        d = MailchimpDestination(server.url, KEY, "aud")
        from segwise.sync.destinations.base import Contact

        assert d.upsert_contacts([Contact("1", "gone@example.com")])[0].ok
        assert d.erase(["gone@example.com"])[0].status == "erased"
        again = d.upsert_contacts([Contact("1", "gone@example.com")])[0]
        assert not again.ok and "permanently deleted" in again.error
        assert d.erase(["gone@example.com"])[0].status == "not_found"


def test_forget_from_the_cli_against_all_sandboxes(wh):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, SEGWISE_DUCKDB_PATH=str(wh.duckdb_path))
    cli = str(Path(sys.executable).with_name("segwise"))
    res = subprocess.run([cli, "forget", "someone@example.com", "--sandbox",
                          "--reason", "DSR-7"], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    receipts = query(wh, "select destination, status from ops.erasure_receipts order by 1")
    assert sorted(receipts["destination"]) == ["hubspot", "klaviyo", "mailchimp:segwise",
                                               "sendgrid"]
    assert "someone@example.com" not in res.stdout
