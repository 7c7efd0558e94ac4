"""Golden users: synthetic customers (segments/golden/*.yml) run through the real dbt
project; each must be in, and must not be in, the segments the fixture names."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from segwise.load.warehouse import load_frames
from segwise.pipeline import step_build
from segwise.settings import project_root
from segwise.warehouse import connect

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
    _declared_predictions(settings, docs, as_of)
    memberships = query(settings, "select customer_id, segment_name, reason "
                                  "from segmentation.segment_memberships")
    return docs, memberships, settings


def _declared_predictions(settings, docs: list[dict], as_of: date) -> None:
    """Golden users' declared scores into the predictions tables (the few golden customers
    are too few to train on: the scoring step skipped), then rebuild what reads them."""
    from segwise.pipeline_vars import dbt_vars
    from segwise.predict.churn import risk_band
    from segwise.predict.tables import ModelSettings, contract, replace_table
    from segwise.transform.dbt import PREDICTIONS, build

    declared = [(c["id"], c["predictions"]) for d in docs for c in d["customers"]
                if c.get("predictions")]
    columns = contract(settings.project_dir)
    bands = ModelSettings.from_project(settings.project_dir)
    with connect(settings.duckdb_path) as con:
        for table, cols in columns.items():
            names = [c for c, _ in cols]
            rows = [{"customer_id": cid, "as_of_date": as_of, "model_run_id": "golden",
                     **{k: v for k, v in p.items() if k in names}} for cid, p in declared]
            frame = pd.DataFrame(rows).reindex(columns=names)
            if "churn_risk_band" in names:  # the band of the declared probability
                frame["churn_risk_band"] = risk_band(frame["churn_probability"],
                                                     bands.churn_band_high,
                                                     bands.churn_band_medium)
            if "cluster_id" in names:
                frame["cluster_id"] = 1
            replace_table(con, settings.project_dir, table, frame)
    build(settings, dbt_vars(as_of, "generated"), select=PREDICTIONS)


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
    _, memberships, _ = golden
    mine = memberships[memberships["customer_id"] == customer["id"]]
    segs = set(mine["segment_name"])
    for seg in customer.get("expect_in", []):
        assert seg in segs, f"{customer['id']} should be in {seg}; is in {sorted(segs)}"
        reason = mine[mine["segment_name"] == seg]["reason"].iloc[0]
        assert reason, f"{customer['id']} in {seg} without a reason"
    for seg in customer.get("expect_not_in", []):
        assert seg not in segs, (f"{customer['id']} should not be in {seg}: "
                                 f"{mine[mine['segment_name'] == seg]['reason'].tolist()}")


LANGUAGE_RULES = """
segments:
  - name: kw_contains
    description: d
    owner: test
    rule: {trait: loyalty_tier, op: contains, value: "ol"}
  - name: kw_in
    description: d
    owner: test
    rule: {trait: loyalty_tier, op: in, value: [gold, silver]}
  - name: kw_between_days_ago
    description: d
    owner: test
    rule: {event: order, within: {between_days_ago: [5, 25]}}
  - name: kw_minutes
    description: d
    owner: test
    rule: {event: add_to_cart, within: {last: 240, unit: minutes}}
  - name: kw_where_books
    description: d
    owner: test
    rule: {event: product_view, where: {category: [books, toys]}, within: {last: 7, unit: days}}
  - name: kw_is_null
    description: d
    owner: test
    rule: {trait: recency_days, op: is null}
  - name: kw_any_not
    description: d
    owner: test
    rule:
      any:
        - {trait: loyalty_tier, op: "=", value: gold}
        - not: {event: order, within: {last: 365, unit: days}}
  - name: kw_injection
    description: d
    owner: test
    rule: {trait: loyalty_tier, op: "=", value: "x'; drop table marts.dim_customers; --"}
"""


def test_language_features_on_golden_users(golden, tmp_path):
    """Operators the production segments do not use, evaluated for real on the golden
    warehouse through `segments diff` (compiled in memory, read-only)."""
    from segwise.segments import definitions
    from segwise.segments.preview import diff

    docs, _, settings = golden
    customers = [c for d in docs for c in d["customers"]]
    (tmp_path / "rules.yml").write_text(LANGUAGE_RULES)
    got = {d.segment: set(d.added["customer_id"])
           for d in diff(settings, definitions(project_root(), tmp_path), report_deleted=False)}
    tier = {c["id"]: c.get("loyalty_tier", "none") for c in customers}
    no_orders = {c["id"] for c in customers if not c.get("orders")}
    assert got["kw_contains"] == {c for c, t in tier.items() if "ol" in t}
    assert got["kw_in"] == {c for c, t in tier.items() if t in ("gold", "silver")}
    assert got["kw_between_days_ago"] == {
        c["id"] for c in customers
        if any(5 < o.get("days_ago", 0) + o.get("hours_ago", 0) / 24 <= 25
               for o in c.get("orders", []))}
    assert got["kw_minutes"] == {"g_cart_too_fresh"}
    assert got["kw_where_books"] == {"g_silver_viewer"}
    assert got["kw_is_null"] == no_orders
    assert got["kw_any_not"] == no_orders | {c for c, t in tier.items() if t == "gold"}
    assert got["kw_injection"] == set()
    assert query(settings, "select count(*) as n from marts.dim_customers")["n"][0] == len(tier)
