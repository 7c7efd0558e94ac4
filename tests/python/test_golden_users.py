"""Golden users: synthetic customers (segments/golden/*.yml) run through the real dbt
project; each must be in, and must not be in, the segments the fixture names."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from segwise.load.warehouse import connect, load_frames
from segwise.pipeline import step_build
from segwise.settings import project_root

from conftest import make_settings, query, quiet

pytestmark = pytest.mark.xdist_group("golden")

GOLDEN = sorted((project_root() / "segments" / "golden").glob("*.yml"))


def _when(anchor: datetime, spec: dict) -> datetime:
    return anchor - timedelta(days=spec.get("days_ago", 0), hours=spec.get("hours_ago", 0))


def fixture_frames(docs: list[dict]) -> tuple[dict[str, pd.DataFrame], date]:
    as_ofs = {d["as_of"] for d in docs}
    assert len(as_ofs) == 1, "golden files must share one as_of"
    as_of = date.fromisoformat(as_ofs.pop())
    anchor = datetime.combine(as_of + timedelta(days=1), datetime.min.time())
    contacts, orders, items, web, sends, events = [], [], [], [], {}, []
    for doc in docs:
        for c in doc["customers"]:
            cid = c["id"]
            signup = anchor - timedelta(days=c.get("signup_days_ago", 365))
            contacts.append({"customer_id": cid, "email": f"{cid}@golden.example",
                             "first_name": cid, "last_name": "Golden", "country": "GB",
                             "signup_at": signup, "loyalty_tier": c.get("loyalty_tier", "none"),
                             "email_consent": True, "email_consent_at": signup,
                             "sms_consent": False, "sms_consent_at": None,
                             "updated_at": signup})
            for i, o in enumerate(c.get("orders", [])):
                oid = f"{cid}-o{i}"
                orders.append({"order_id": oid, "customer_id": cid, "ordered_at": _when(anchor, o),
                               "status": "completed", "currency": "EUR",
                               "order_total": o["amount"], "country": "GB"})
                items.append({"order_item_id": f"{oid}-0", "order_id": oid, "product_id": "P1",
                              "quantity": 1, "unit_price": o["amount"]})
            for i, w in enumerate(c.get("web", [])):
                web.append({"event_id": f"{cid}-w{i}", "anonymous_id": f"anon-{cid}",
                            "customer_id": cid, "event_type": w["type"],
                            "occurred_at": _when(anchor, w), "device": "desktop",
                            "product_id": "P1", "category": w.get("category", "outdoor"),
                            "page_duration_s": 30.0, "scroll_depth_pct": 50.0, "order_id": None})
            for i, m in enumerate(c.get("emails", [])):
                sent = _when(anchor, m)
                camp = f"CMP-{m.get('days_ago', 0)}-{m.get('hours_ago', 0)}"
                sends[camp] = sent
                kinds = [("sent", 0), ("delivered", 0.01)]
                kinds += [("open", 1)] if m.get("opened") else []
                kinds += [("click", 2)] if m.get("clicked") else []
                for kind, lag in kinds:
                    events.append({"email_event_id": f"{cid}-m{i}-{kind}", "campaign_id": camp,
                                   "customer_id": cid, "email": f"{cid}@golden.example",
                                   "event_type": kind,
                                   "occurred_at": sent + timedelta(hours=lag)})
    frames = {
        "crm_contacts": pd.DataFrame(contacts),
        "orders": pd.DataFrame(orders),
        "order_items": pd.DataFrame(items),
        "products": pd.DataFrame([{"product_id": "P1", "product_name": "Tent",
                                   "category": "outdoor", "list_price": 99.0}]),
        "web_events": pd.DataFrame(web),
        "email_campaigns": pd.DataFrame([{"campaign_id": k, "campaign_name": k, "subject": k,
                                          "sent_at": v} for k, v in sends.items()]),
        "email_events": pd.DataFrame(events),
    }
    for name in ("web_events", "email_events", "orders", "crm_contacts"):
        for col in ("occurred_at", "ordered_at", "signup_at", "updated_at", "email_consent_at",
                    "sms_consent_at"):
            if col in frames[name]:
                frames[name][col] = pd.to_datetime(frames[name][col])
    return frames, as_of


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    docs = [yaml.safe_load(p.read_text()) for p in GOLDEN]
    frames, as_of = fixture_frames(docs)
    settings = make_settings(tmp_path_factory.mktemp("golden"))
    with connect(settings.duckdb_path) as con:
        load_frames(con, frames)
    step_build(settings, "generated", as_of, say=quiet)
    memberships = query(settings, "select customer_id, segment_name, reason "
                                  "from segmentation.segment_memberships")
    return docs, memberships


def _cases() -> list:
    out = []
    for path in GOLDEN:
        for c in yaml.safe_load(path.read_text())["customers"]:
            out.append(pytest.param(c, id=f"{Path(path).stem}:{c['id']}"))
    return out


def test_golden_fixtures_exist():
    assert len(GOLDEN) >= 2
    assert len(_cases()) >= 10


@pytest.mark.parametrize("customer", _cases())
def test_golden_user(golden, customer):
    _, memberships = golden
    mine = memberships[memberships["customer_id"] == customer["id"]]
    segs = set(mine["segment_name"])
    for seg in customer.get("expect_in", []):
        assert seg in segs, f"{customer['id']} should be in {seg}; is in {sorted(segs)}"
        reason = mine[mine["segment_name"] == seg]["reason"].iloc[0]
        assert reason, f"{customer['id']} in {seg} without a reason"
    for seg in customer.get("expect_not_in", []):
        assert seg not in segs, (f"{customer['id']} should not be in {seg}: "
                                 f"{mine[mine['segment_name'] == seg]['reason'].tolist()}")
