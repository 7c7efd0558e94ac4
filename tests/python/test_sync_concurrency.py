"""Bounded parallel sync: batches in flight up to the provider's cap, client-side pacing
under its rate-limit window, creates that are never duplicated by a retry, per-run
accounting, failed runs recorded — against the running sandboxes."""

from __future__ import annotations

import httpx
import pytest

from segwise.sync.destinations.base import DestinationError, RateLimiter
from segwise.sync.destinations.hubspot import HubSpotDestination
from segwise.sync.destinations.klaviyo import KlaviyoDestination
from segwise.sync.destinations.mailchimp import MailchimpDestination
from segwise.sync.engine import sync_segment
from segwise.sync.sandboxes import hubspot, klaviyo, mailchimp
from segwise.sync.sandboxes.common import SandboxServer
from test_sync_mailchimp import KEY, LIST, SEGMENT, expected_emails

from conftest import ESP_RUNS, query
from conftest import sandbox_state as state

pytestmark = pytest.mark.xdist_group("sync_more")  # ESP tests: a second group, for balance


def _log(server) -> dict:
    return httpx.get(f"{server.url}/_sandbox/requests").json()


def test_batches_run_in_parallel_within_mailchimps_connection_cap(wh):
    with SandboxServer(mailchimp.create_app(KEY)) as server:
        httpx.post(f"{server.url}/_sandbox/faults", json={"delay_ms": 40})
        d = MailchimpDestination(server.url, KEY, LIST, batch_size=20)
        result = sync_segment(wh, SEGMENT, d)
        log = _log(server)
        members = httpx.get(f"{server.url}/_sandbox/lists/{LIST}/state").json()
    assert result.status == "succeeded"
    assert set(members["segments"][SEGMENT]) == expected_emails(wh)
    assert 2 <= log["peak_in_flight"] <= 10  # parallel, never above "10 simultaneous"
    assert log["rate_limited"] == 0 and result.rate_limited == 0
    run = query(wh, f"select requests, concurrency from {ESP_RUNS}")
    assert run["requests"][0] == result.requests == log["requests"]
    assert run["concurrency"][0] == 10
    with pytest.raises(ValueError, match="concurrency must be 1..10"):
        MailchimpDestination(server.url, KEY, LIST, concurrency=11)


def test_each_run_records_only_its_own_requests(wh):
    with SandboxServer(mailchimp.create_app(KEY)) as server:
        d = MailchimpDestination(server.url, KEY, LIST)  # one adapter, two runs
        first = sync_segment(wh, SEGMENT, d)
        again = sync_segment(wh, SEGMENT, d)
    assert first.requests > 0 and again.requests == 0
    runs = query(wh, f"select requests from {ESP_RUNS} order by started_at")
    assert list(runs["requests"]) == [first.requests, 0]


def test_client_paces_hubspots_rolling_window_instead_of_collecting_429s(wh):
    window = (15, 2.0)  # the private-app window, scaled down so the test is quick
    with SandboxServer(hubspot.create_app("pat-t", window=window)) as server:
        d = HubSpotDestination(server.url, "pat-t", batch_size=10, rate_limits=(window,))
        result = sync_segment(wh, SEGMENT, d)
        log, lists = _log(server), state(server)["lists"]
    assert result.status == "succeeded"
    assert set(lists[SEGMENT]) == expected_emails(wh)
    assert log["requests"] > 2 * window[0]  # the sync needed several windows ...
    # ... and was paced instead of colliding: without pacing every request past 15 in
    # 2 s is a 429. (At most a stray one or two when a loaded CI machine delays a
    # request between its slot and the wire by more than the limiter's slack.)
    assert log["rate_limited"] <= 2
    assert result.throttled_s > 0


def test_rate_limiter_never_exceeds_any_window():
    import time

    limiter, sent = RateLimiter(((3, 0.3), (5, 1.0))), []
    for _ in range(8):
        limiter.acquire("k")
        sent.append(time.monotonic())
    for limit, window in ((3, 0.3), (5, 1.0)):
        for i in range(len(sent) - limit):
            assert sent[i + limit] - sent[i] >= window - 0.01


def test_a_create_whose_reply_is_lost_is_not_repeated(wh):
    """Klaviyo allows duplicate list names: a retried POST /api/lists would create a
    second list. The adapter looks again instead."""
    with SandboxServer(klaviyo.create_app("pk_t")) as server:
        httpx.post(f"{server.url}/_sandbox/faults", json={"drop_next": 1})
        result = sync_segment(wh, SEGMENT, KlaviyoDestination(server.url, "pk_t"))
        by_path = _log(server)["by_path"]
        lists = state(server)["lists"]
    assert result.status == "succeeded"
    assert by_path["POST /api/lists"] == 1  # sent once; its reply was cut off
    assert list(lists) == [SEGMENT] and set(lists[SEGMENT]) == expected_emails(wh)


def test_a_run_that_gives_up_is_recorded_as_failed_and_a_rerun_completes(wh):
    with SandboxServer(mailchimp.create_app(KEY)) as server:
        d = MailchimpDestination(server.url, KEY, LIST, batch_size=50, max_attempts=2)
        httpx.post(f"{server.url}/_sandbox/faults", json={"error_next": 1000})
        with pytest.raises(DestinationError, match="gave up after 2 attempt"):
            sync_segment(wh, SEGMENT, d)
        httpx.post(f"{server.url}/_sandbox/faults", json={"error_next": 0})
        rerun = sync_segment(wh, SEGMENT, MailchimpDestination(server.url, KEY, LIST))
        members = httpx.get(f"{server.url}/_sandbox/lists/{LIST}/state").json()
    runs = query(wh, f"select status, error, requests from {ESP_RUNS} order by started_at")
    assert list(runs["status"]) == ["failed", "succeeded"]
    assert "gave up" in runs["error"][0] and runs["requests"][0] >= 2
    assert rerun.status == "succeeded"
    assert set(members["segments"][SEGMENT]) == expected_emails(wh)
