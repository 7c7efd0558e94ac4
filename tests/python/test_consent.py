"""Consent is decided once, in dbt, from every signal — attacked as a careless source would.

Issue #8, observations 3 and 4: each consent leak is reproduced on real segment members of
a built warehouse, then the member must be absent from the activation feed's sendable
rows, the file export, the ad-audience export and a real sync. A randomized property test
writes consent histories (withdrawals, re-consents, late, dirty, undated and duplicated
signals in every spelling) and compares the consent model with an independent oracle.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import duckdb
import httpx
import numpy as np
import pandas as pd
import pytest

from segwise.load.warehouse import load_frames
from segwise.pipeline import step_build, step_export, step_validate
from segwise.raw_schema import RAW_TABLES
from segwise.sync.destinations.files import normalised_sha256
from segwise.sync.destinations.mailchimp import MailchimpDestination
from segwise.sync.engine import sync_segment
from segwise.sync.runner import export
from segwise.sync.sandboxes.common import SandboxServer
from segwise.sync.sandboxes.mailchimp import create_app
from segwise.transform.dbt import run_dbt
from segwise.warehouse import connect

from conftest import DEMO_AS_OF, insert_raw, make_settings, query, quiet

pytestmark = pytest.mark.xdist_group("demo")

SEGMENT = "recent_purchasers_30d"
KEY = "sandbox-key-0123456789abcdef-us21"
LIST = "aud1"
LEAKS = ("newest_crm_row_withdraws_with_bad_email", "unsubscribe_by_email_without_customer_id",
         "unsubscribe_spelled_unsubscribed", "duplicate_event_id_open_over_unsubscribe",
         "unsubscribe_today_after_the_as_of_date")


@pytest.fixture(scope="module")
def leaked(module_demo_copy):
    """Five sendable members of SEGMENT, each given one of the observed leaks, rebuilt as
    of the demo date (so a signal from today is after the as-of date). Built once: the
    first test reads the feed, the second then validates, exports and syncs."""
    settings = module_demo_copy
    members = query(settings, f"""
        select f.customer_id, f.email, c.updated_at, c.email_consent_at
        from activation.sync_esp_members as f
        join staging.stg_crm__contacts as c using (customer_id)
        where f.segment_name = '{SEGMENT}' and f.is_sendable
        order by f.customer_id limit {len(LEAKS)}""")
    assert len(members) == len(LEAKS)
    victims = dict(zip(LEAKS, members.itertuples(), strict=True))
    today = (datetime.now(UTC) - timedelta(hours=2)).replace(tzinfo=None)
    campaign = query(settings, "select min(campaign_id) as c from staging.stg_email__campaigns")["c"][0]

    def event(key: str, v, event_type: str, **over) -> dict:
        return {"email_event_id": f"leak-{key}", "campaign_id": campaign,
                "customer_id": v.customer_id, "email": v.email, "event_type": event_type,
                "occurred_at": "2026-06-20 09:00:00", **over}

    v = victims["newest_crm_row_withdraws_with_bad_email"]
    crm = [{"customer_id": v.customer_id, "email": "not an email@@", "first_name": "X",
            "last_name": "Y", "country": "US", "signup_at": "2024-01-01",
            "loyalty_tier": "none", "email_consent": False, "email_consent_at": None,
            "sms_consent": False, "sms_consent_at": None,
            # newer than the customer's every signal (their consent may postdate updated_at)
            "updated_at": max(v.updated_at, v.email_consent_at).to_pydatetime() + timedelta(days=1)}]
    events = [
        event("byemail", victims["unsubscribe_by_email_without_customer_id"], "unsubscribe",
              customer_id=None),
        event("spelled", victims["unsubscribe_spelled_unsubscribed"], " Unsubscribed "),
        event("dup", victims["duplicate_event_id_open_over_unsubscribe"], "unsubscribe",
              _loaded_at="2026-06-30 10:00:00"),
        event("dup", victims["duplicate_event_id_open_over_unsubscribe"], "open",
              _loaded_at="2026-06-30 11:00:00"),  # later load: wins the staging dedup
        event("today", victims["unsubscribe_today_after_the_as_of_date"], "unsubscribe",
              occurred_at=today),
    ]
    with connect(settings.duckdb_path) as con:
        insert_raw(con, "crm_contacts", crm)
        insert_raw(con, "email_events", events)
    step_build(settings, "generated", DEMO_AS_OF, say=quiet)
    return settings, victims


def test_every_observed_leak_is_closed_in_the_feed(leaked):
    settings, victims = leaked
    feed = query(settings, f"select customer_id, is_sendable, exclusion_reason from "
                           f"activation.sync_esp_members where segment_name = '{SEGMENT}'")
    decided = dict(zip(feed["customer_id"], feed["exclusion_reason"], strict=True))
    for leak, v in victims.items():
        assert decided[v.customer_id] in ("no_consent", "unsubscribed"), (leak, decided[v.customer_id])


def test_no_destination_receives_a_withdrawn_member(leaked):
    settings, victims = leaked
    emails = {v.email for v in victims.values()}
    assert step_validate(settings, say=quiet).success
    step_export(settings, say=quiet)
    exported = pd.read_csv(settings.output_dir / "exports" / "file" / SEGMENT / "members.csv")
    assert emails.isdisjoint(set(exported["email"])) and len(exported) > 0
    (audience,) = export(settings, [SEGMENT], ("ad_audience",)).reports[0].outputs
    hashes = set(pd.read_csv(audience)["email_sha256"])
    assert {normalised_sha256(e) for e in emails}.isdisjoint(hashes) and hashes
    with SandboxServer(create_app(KEY)) as server:
        result = sync_segment(settings, SEGMENT, MailchimpDestination(server.url, KEY, LIST))
        state = httpx.get(f"{server.url}/_sandbox/lists/{LIST}/state").json()
    assert result.status == "succeeded" and result.succeeded_adds > 0
    assert emails.isdisjoint(state["members"]) and emails.isdisjoint(state["segments"][SEGMENT])


def test_an_esp_unsubscribe_seen_on_an_update_is_recorded_and_never_resent(demo_copy):
    """Observation 4: unsubscribed at the ESP, then renamed in the CRM: the update's reply
    carries the ESP's refusal, which is recorded; later syncs send nothing for them."""
    settings = demo_copy
    with SandboxServer(create_app(KEY)) as server:
        dest = MailchimpDestination(server.url, KEY, LIST)
        first = sync_segment(settings, SEGMENT, dest)
        assert first.succeeded_adds > 0
        victim = query(settings, "select customer_id, email from ops.destination_ledger "
                 "where destination not in ('file', 'ad_audience') "
                                 "order by customer_id limit 1").iloc[0]
        httpx.post(f"{server.url}/_sandbox/lists/{LIST}/members",
                   json={"email_address": victim.email, "status": "unsubscribed"})
        with connect(settings.duckdb_path) as con:
            con.execute("update raw.crm_contacts set first_name = 'Renamed' "
                        "where customer_id = ?", [victim.customer_id])
        step_build(settings, "generated", DEMO_AS_OF, say=quiet)
        step_validate(settings, say=quiet)
        second = sync_segment(settings, SEGMENT, dest)
        assert second.plan.updates["customer_id"].tolist() == [victim.customer_id]
        assert second.suppressed == 1
        sup = query(settings, "select email, remote_status from ops.destination_suppressions")
        assert sup.values.tolist() == [[victim.email, "unsubscribed"]]
        third = sync_segment(settings, SEGMENT, dest)
        assert third.requests == 0 and len(third.plan.updates) == 0
        state = httpx.get(f"{server.url}/_sandbox/lists/{LIST}/state").json()
    assert state["members"][victim.email] == "unsubscribed"
    feed = query(settings, f"select exclusion_reason from activation.sync_esp_members where "
                           f"customer_id = '{victim.customer_id}' and segment_name = '{SEGMENT}'")
    assert feed["exclusion_reason"].tolist() == ["unsubscribed"]


# ------------------------------------------------------------ the property test
NO_SPELLINGS = {"unsubscribe": ["unsubscribe", "Unsubscribed", "opt-out", "unsub",
                                "group_unsubscribe"],
                "complaint": ["complaint", "spamreport", "Marked Email as Spam", "abuse"],
                "bounce": ["bounce", "hard_bounce", "Bounced Email"]}
NEUTRAL = ["open", "click", "sent", "delivered", "Opened Email"]
NOW = datetime.now(UTC).replace(tzinfo=None)
MIN_PLAUSIBLE = datetime(1970, 1, 1)


def _when(rng) -> tuple[object, str]:
    """A timestamp and its kind: mostly plausible, sometimes missing, future or ancient."""
    kind = rng.choice(["ok"] * 8 + ["null", "future", "ancient"])
    if kind == "ok":
        return NOW - timedelta(days=float(rng.uniform(0, 900))), kind
    return {"null": None, "future": datetime(2099, 1, 1),
            "ancient": datetime(1969, 6, 1)}[kind], kind


def _histories(seed: int, customers: int):
    """Random consent histories and, for each customer, whether the latest signal is a
    "yes" — the oracle, written from the rule in words, not from the SQL."""
    rng = np.random.default_rng(seed)
    crm, events, expected = [], [], {}
    for i in range(customers):
        cid, email = f"p{seed}-{i:04d}", f"p{seed}.{i}@example.com"
        signals: list[tuple[float, int]] = []  # (time key, 1 for "no" / 0 for "yes")

        def yes(at, kind, signals=signals):
            signals.append(((at - MIN_PLAUSIBLE).total_seconds() if kind == "ok" else -1e18, 0))

        def no(at, kind, signals=signals):
            signals.append(((at - MIN_PLAUSIBLE).total_seconds() if kind == "ok" else 1e18, 1))

        # the customer's valid CRM row: the newest valid one, so it is the one staged
        consent = bool(rng.random() < 0.8)
        consent_at, consent_kind = _when(rng)
        if consent_kind in ("future", "ancient"):  # this row must stay valid (staged)
            consent_at, consent_kind = None, "null"
        crm.append({"customer_id": cid, "email": email, "email_consent": consent,
                    "email_consent_at": consent_at if consent else None,
                    "updated_at": NOW - timedelta(hours=3)})
        if consent:
            yes(consent_at, consent_kind)
        else:
            no(NOW - timedelta(hours=3), "ok")
        for _ in range(int(rng.integers(0, 4))):  # older or dirty CRM rows of the customer
            says = bool(rng.random() < 0.5)
            updated_at, updated_kind = _when(rng)
            if updated_kind == "ok":
                updated_at = min(updated_at, NOW - timedelta(hours=4))
            at, kind = _when(rng)
            bad_email = rng.random() < 0.5
            crm.append({"customer_id": cid, "email": "bad@@x" if bad_email else email,
                        "email_consent": says, "email_consent_at": at if says else None,
                        "updated_at": updated_at})
            if says:
                yes(at, kind)
            else:
                no(updated_at, updated_kind)
        if rng.random() < 0.1:  # a withdrawal known only by address
            at, kind = _when(rng)
            crm.append({"customer_id": None, "email": email, "email_consent": False,
                        "email_consent_at": None, "updated_at": at})
            no(at, kind)
        for j in range(int(rng.integers(0, 4))):
            at, kind = _when(rng)
            by_email_only = rng.random() < 0.3
            event_id = f"{cid}-e{j}" if rng.random() < 0.8 else f"{cid}-dup"
            if rng.random() < 0.5:
                family = str(rng.choice(list(NO_SPELLINGS)))
                spelled = str(rng.choice(NO_SPELLINGS[family]))
                no(at, kind)
            else:
                spelled = str(rng.choice(NEUTRAL))
            events.append({"email_event_id": event_id, "campaign_id": "c1",
                           "customer_id": None if by_email_only else cid, "email": email,
                           "event_type": spelled, "occurred_at": at})
        latest = max(signals, key=lambda s: (s[0], s[1]))  # a tie: the "no" wins
        expected[cid] = latest[1] == 0
    return crm, events, expected


# the consent model and what it reads (seed, staging, ops), without data tests
CONSENT_ONLY = ["build", "--select", "+customer_consent", "--exclude", "resource_type:test",
                "resource_type:unit_test"]


def _frame(table: str, rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for col in RAW_TABLES[table].names:
        if col not in frame:
            frame[col] = None
    return frame


def _consent_warehouse(tmp_path, seed: int, customers: int):
    """A warehouse holding only random consent histories, with the consent model built;
    returns its settings and the oracle's verdicts."""
    crm, events, expected = _histories(seed, customers)
    settings = make_settings(tmp_path)
    with connect(settings.duckdb_path) as con:
        load_frames(con, {"crm_contacts": _frame("crm_contacts", crm),
                          "email_events": _frame("email_events", events)})
    run_dbt(settings, CONSENT_ONLY)
    return settings, expected


@pytest.mark.parametrize("seed", [11, 12])
def test_random_consent_histories_match_the_oracle(tmp_path, seed):
    settings, expected = _consent_warehouse(tmp_path, seed, customers=250)
    got = query(settings, "select customer_id, is_sendable, exclusion_reason "
                          "from marts.customer_consent")
    decided = dict(zip(got["customer_id"], got["is_sendable"], strict=True))
    assert set(decided) == set(expected)
    wrong = {c: (decided[c], expected[c]) for c in expected if decided[c] != expected[c]}
    assert not wrong, f"{len(wrong)} decisions differ from the oracle, e.g. {list(wrong.items())[:5]}"
    # both outcomes occur (the histories are not trivially all-yes or all-no)
    assert 0.1 < sum(expected.values()) / len(expected) < 0.9


def test_an_esp_suppression_and_an_erasure_exclude_everywhere_at_once(tmp_path):
    """Written by segwise while it syncs or erases, read by the consent view at once — no
    rebuild between the write and the next sync."""
    settings, _ = _consent_warehouse(tmp_path, 21, customers=40)
    sendable = query(settings, "select customer_id, email from marts.customer_consent "
                               "where is_sendable order by customer_id")
    a, b = sendable.iloc[0], sendable.iloc[1]
    con = duckdb.connect(str(settings.duckdb_path))
    try:
        con.execute("insert into ops.destination_suppressions values ('klaviyo', ?, "
                    "'unsubscribed', now(), 'r1')", [a.email.upper()])
        con.execute("insert into ops.erasure_requests values ('q1', ?, now(), '')",
                    [hashlib.sha256(b.email.encode()).hexdigest()])
    finally:
        con.close()
    after = query(settings, "select customer_id, exclusion_reason from marts.customer_consent")
    reasons = dict(zip(after["customer_id"], after["exclusion_reason"], strict=True))
    assert reasons[a.customer_id] == "unsubscribed" and reasons[b.customer_id] == "erased"
