"""The generic signed webhook destination against a receiver that checks signatures."""

from __future__ import annotations

import time

import httpx
import pytest

from segwise.sync.destinations.base import DestinationError
from segwise.sync.destinations.webhook import WebhookDestination, sign, verify
from segwise.sync.engine import sync_segment
from segwise.sync.sandboxes.common import SandboxServer
from segwise.sync.sandboxes.webhook import create_app
from test_sync_mailchimp import expected_emails

pytestmark = pytest.mark.xdist_group("sync")

SECRET = "whsec_test_123"
SEGMENT = "recent_purchasers_30d"


def test_signature_roundtrip_and_tampering():
    body = b'{"a": 1}'
    header = sign(SECRET, int(time.time()), body)
    assert verify(SECRET, header, body)
    assert not verify(SECRET, header, b'{"a": 2}')
    assert not verify("other", header, body)
    assert not verify(SECRET, sign(SECRET, int(time.time()) - 3600, body), body)


def test_webhook_sync_matches_segment_and_wrong_secret_is_refused(demo_copy):
    wh = demo_copy
    with SandboxServer(create_app(SECRET)) as server:
        result = sync_segment(wh, SEGMENT, WebhookDestination(server.url, SECRET))
        assert result.status == "succeeded"
        got = httpx.get(f"{server.url}/_sandbox/state").json()
        assert set(got["lists"][SEGMENT]) == {e.lower() for e in expected_emails(wh)}
        with pytest.raises(DestinationError, match="401"):
            WebhookDestination(server.url, "wrong").add_to_list(SEGMENT, [])
