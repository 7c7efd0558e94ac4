"""The trigger refresh: `segwise refresh --select tag:trigger` and the segwise_triggers DAG
take newly landed events, rebuild only the trigger segments and their bookkeeping, and
sync only those segments."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import duckdb
import pytest

from segwise.lineage import load_manifest
from segwise.pipeline import ORDER_MODELS, orders_current, refresh_segments, step_refresh
from segwise.segments import definitions
from segwise.settings import project_root, project_vars
from segwise.transform.dbt import target_path
from segwise.warehouse import connect

from conftest import DEMO_AS_OF, insert_raw, query, quiet
from equivalence import rows

AS_OF = date(2026, 6, 30)
TRIGGERS = sorted(s.name for s in definitions(project_root()) if "trigger" in s.tags)
ESPS = ("mailchimp", "klaviyo", "hubspot", "sendgrid")


def land_cart_adds(path, customers: list[str], day: date = AS_OF) -> None:
    """Add-to-cart events for ``customers`` at 22:00 on ``day``, landed now as a new load."""
    at = f"{day.isoformat()} 22:00:00"
    con = duckdb.connect(str(path))
    try:
        insert_raw(con, "web_events", [
            {"event_id": f"trigger-{c}", "customer_id": c, "anonymous_id": f"anon-{c}",
             "event_type": "add_to_cart", "occurred_at": at, "product_id": "P0001",
             "category": "sports"} for c in customers],
            loaded_at=datetime.utcnow().isoformat(sep=" "))
    finally:
        con.close()


def quiet_customers(settings, n: int, day: date = AS_OF) -> list[str]:
    """Sendable customers with no order and no web event since the day before ``day``: a
    cart add late on ``day`` makes them 30-minute abandoners and nothing else changes."""
    since = (day - timedelta(days=1)).isoformat()
    return query(settings, f"""
        select distinct m.customer_id from activation.sync_esp_members as m
        where m.is_sendable and m.customer_id not in (
            select customer_id from intermediate.int_customer_events
            where occurred_at >= timestamp '{since} 00:00:00'
                and customer_id is not null)
        order by 1 limit {n}""")["customer_id"].tolist()


def test_the_trigger_segments_are_the_tagged_ones(demo_copy):
    assert "cart_abandoners_30m" in TRIGGERS
    assert refresh_segments(demo_copy, "tag:trigger") == TRIGGERS
    assert refresh_segments(demo_copy, "vip_customers, tag:trigger")[0] == "vip_customers"
    with pytest.raises(ValueError, match="names no segment"):
        refresh_segments(demo_copy, "tag:nope")
    with pytest.raises(ValueError, match="names no segment"):
        refresh_segments(demo_copy, "x'); drop table raw.orders; --")


def test_the_recent_events_are_the_stream_of_the_last_hours(demo):
    settings, _ = demo
    hours = project_vars(project_root())["recent_events_hours"]
    start = datetime.combine(DEMO_AS_OF + timedelta(days=1), datetime.min.time()) - \
        timedelta(hours=hours)
    _, recent = rows(settings, "intermediate.int_customer_events_recent")
    _, stream = rows(settings, f"(select * from intermediate.int_customer_events where "
                               f"occurred_at >= timestamp '{start}') as s")
    assert recent == stream
    kinds = query(settings, "select event_type, count(*) as n from "
                            "intermediate.int_customer_events_recent group by 1")
    assert {"add_to_cart", "order", "email_sent"} <= set(kinds["event_type"])
    # stitched visitors' events are in it: their customer comes from an older login
    stitched = query(settings, f"""
        select count(*) as n from intermediate.int_web_events_identified
        where is_stitched and occurred_at >= timestamp '{start}'""")["n"][0]
    assert stitched > 0


def test_a_refresh_takes_new_events_and_rebuilds_only_the_trigger_segments(demo_copy):
    wh = demo_copy
    before = query(wh, "select segment_name, count(*) as n, max(computed_at) as at "
                       "from segmentation.segment_memberships group by 1").set_index(
        "segment_name")
    members_before = query(wh, "select segment_name, customer_id, reason "
                               "from segmentation.segment_memberships")
    who = quiet_customers(wh, 6)
    assert len(who) == 6
    land_cart_adds(wh.duckdb_path, who)
    con = duckdb.connect(str(wh.duckdb_path))  # and a late copy of an event seen before
    try:
        con.execute("insert into raw.web_events select * replace (now()::timestamp as "
                    "_loaded_at) from raw.web_events where event_id is not null "
                    "order by event_id limit 1")
    finally:
        con.close()
    quarantined = query(wh, "select count(*) as n from quarantine.quarantine_rows")["n"][0]
    assert step_refresh(wh, "tag:trigger", AS_OF, quiet) == TRIGGERS
    results = json.loads((target_path(wh) / "run_results.json").read_text())["results"]
    built = {r["unique_id"].split(".")[-1] for r in results}
    tests = {r["unique_id"].split(".")[2] for r in results if r["unique_id"].startswith("test.")}
    assert {"base_web__events", "int_customer_events_recent", "cart_abandoners_30m",
            "segment_memberships", "quarantine_rows"} <= built
    # not the whole stream, nor the marts or the other segments
    assert not built & {"int_customer_events", "int_web_events_identified",
                        "int_identity_map", "customer_profile", "vip_customers"}
    # no order landed: the order models stay as the build left them
    assert not built & set(ORDER_MODELS)
    # it tests what it rebuilt, that nothing was lost and that nobody in the refreshed
    # rows of the feed is sendable without consent; the staging tests, which scan all of
    # history, and the feed's generic tests (each recomputes consent) are the daily build's
    assert {"assert_every_raw_row_accounted_for", "unique_cart_abandoners_30m_customer_id",
            "unique_int_customer_events_recent_customer_event_id",
            "unique_segment_memberships_membership_id",
            "assert_sendable_members_have_email_and_consent"} <= tests
    assert not {t for t in tests if "stg_" in t or "base_" in t or "sync_esp_members" in t}
    consent_test = next((target_path(wh) / "run").rglob(
        "assert_sendable_members_have_email_and_consent.sql")).read_text()
    assert "segment_name in ('" + "', '".join(TRIGGERS) + "')" in consent_test
    # the copy is quarantined as a duplicate (raw = staged + quarantined, a dbt test)
    assert query(wh, "select count(*) as n from quarantine.quarantine_rows")["n"][0] == \
        quarantined + 1
    after = query(wh, "select segment_name, count(*) as n, max(computed_at) as at "
                      "from segmentation.segment_memberships group by 1").set_index(
        "segment_name")
    abandoners = set(query(wh, "select customer_id from segmentation.segment_memberships "
                               "where segment_name = 'cart_abandoners_30m'")["customer_id"])
    assert set(who) <= abandoners
    assert after.loc["cart_abandoners_30m", "n"] >= before.loc["cart_abandoners_30m", "n"] + 6
    # the trigger segments' rows are new, every other segment's rows are the last build's
    for name in after.index:
        if name in TRIGGERS:
            assert after.loc[name, "at"] > before.loc[name, "at"], name
        else:
            assert after.loc[name, "at"] == before.loc[name, "at"], name
    untouched = members_before[~members_before["segment_name"].isin(TRIGGERS)]
    now = query(wh, "select segment_name, customer_id, reason from "
                    "segmentation.segment_memberships")
    now = now[~now["segment_name"].isin(TRIGGERS)]
    key = ["segment_name", "customer_id"]
    assert untouched.sort_values(key).values.tolist() == now.sort_values(key).values.tolist()
    # the bookkeeping follows: sizes and the activation feed see the new members
    size = query(wh, "select members from segmentation.segment_sizes "
                     "where segment_name = 'cart_abandoners_30m'")["members"].iloc[0]
    assert size == len(abandoners)
    feed = set(query(wh, "select customer_id from activation.sync_esp_members "
                         "where segment_name = 'cart_abandoners_30m'")["customer_id"])
    holdout = set(query(wh, "select customer_id from segments.cart_abandoners_30m "
                            "where is_holdout")["customer_id"])
    assert feed == abandoners - holdout


def land_order(path, customer: str, at: str) -> None:
    """A completed one-line order of ``customer`` at ``at``, landed now as a new load."""
    stamp = datetime.utcnow().isoformat(sep=" ")
    con = duckdb.connect(str(path))
    try:
        insert_raw(con, "orders", [{"order_id": f"trigger-order-{customer}",
                                    "customer_id": customer, "ordered_at": at,
                                    "status": "completed", "currency": "USD",
                                    "order_total": "42.00", "country": "US"}],
                   loaded_at=stamp)
        insert_raw(con, "order_items", [{"order_item_id": f"trigger-line-{customer}",
                                         "order_id": f"trigger-order-{customer}",
                                         "product_id": "P0001", "quantity": "1",
                                         "unit_price": "42.00"}], loaded_at=stamp)
    finally:
        con.close()


def test_a_refresh_rebuilds_the_orders_when_an_order_landed(demo_copy):
    """Keeping the last build's orders must never make a buyer an abandoner: an order that
    landed since the build (here ten minutes after the cart add) is seen by the refresh."""
    wh = demo_copy
    buyer, abandoner = quiet_customers(wh, 2)
    land_cart_adds(wh.duckdb_path, [buyer, abandoner])
    land_order(wh.duckdb_path, buyer, f"{AS_OF.isoformat()} 22:10:00")
    step_refresh(wh, "cart_abandoners_30m", AS_OF, quiet)
    results = json.loads((target_path(wh) / "run_results.json").read_text())["results"]
    assert set(ORDER_MODELS) <= {r["unique_id"].split(".")[-1] for r in results}
    members = set(query(wh, "select customer_id from segmentation.segment_memberships "
                            "where segment_name = 'cart_abandoners_30m'")["customer_id"])
    assert abandoner in members and buyer not in members
    assert query(wh, f"select count(*) as n from marts.fct_orders "
                     f"where order_id = 'trigger-order-{buyer}'")["n"][0] == 1


def test_the_orders_are_current_only_if_nothing_changed_since_the_build(demo_copy):
    wh = demo_copy
    manifest = load_manifest(wh)

    def current(as_of=AS_OF) -> bool:
        with connect(wh, read_only=True) as con:
            return orders_current(con, manifest, as_of)

    assert current()
    # the built orders stop at the end of the build's as-of day: an earlier one holds fewer
    assert not current(AS_OF - timedelta(days=30))
    assert not orders_current(None, None, AS_OF)  # no manifest of a build: rebuild
    con = duckdb.connect(str(wh.duckdb_path))
    try:  # a line deleted at the source
        con.execute("delete from raw.order_items where order_item_id = "
                    "(select min(order_item_id) from raw.order_items)")
    finally:
        con.close()
    assert not current()
