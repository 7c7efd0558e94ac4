"""The data gate, scoped per segment: failures in what a segment is built from block its
sync; failures elsewhere don't; unknown lineage blocks everything."""

from __future__ import annotations

import duckdb
import pytest

from segwise.lineage import failed_relations, load_manifest, upstream_relations
from segwise.ops import record_build, record_validation
from segwise.sync.destinations.mailchimp import MailchimpDestination
from segwise.sync.engine import sync_segment
from segwise.validate.gate import validate
from test_sync_mailchimp import KEY, LIST

pytestmark = pytest.mark.xdist_group("sync")

VIP, RECENT = "vip_customers", "recent_purchasers_30d"


def _plan(settings, segment: str):
    """A dry run: the gate and guards are evaluated, nothing is sent (no server needed)."""
    return sync_segment(settings, segment, MailchimpDestination("http://127.0.0.1:9", KEY, LIST),
                        dry_run=True)


def test_lineage_of_a_segment_comes_from_the_manifest(wh):
    manifest = load_manifest(wh)
    vip = upstream_relations(manifest, VIP)
    assert {"segments.vip_customers", "marts.customer_rfm", "raw.orders"} <= vip
    assert "segments.recent_purchasers_30d" not in vip
    feed = upstream_relations(manifest, VIP, feed="sync_esp_members")  # what a sync reads
    assert {"activation.sync_esp_members", "segmentation.segment_memberships",
            "marts.customer_engagement"} <= feed and vip < feed
    assert "segments.recent_purchasers_30d" not in feed  # other segments feed the union only
    assert upstream_relations(manifest, "no_such_segment") is None
    assert upstream_relations(None, VIP) is None
    test_id = next(uid for uid, n in manifest["nodes"].items()
                   if n["resource_type"] == "test"
                   and n["depends_on"]["nodes"] == ["model.segwise.customer_rfm"])
    assert failed_relations(manifest, [test_id]) == ["marts.customer_rfm"]
    assert failed_relations(manifest, ["test.segwise.gone"]) is None


def test_a_real_gx_failure_blocks_the_segments_built_from_that_mart(wh):
    con = duckdb.connect(str(wh.duckdb_path))
    con.execute("update marts.fct_orders set order_amount = -5 "
                "where order_id in (select order_id from marts.fct_orders limit 3)")
    con.close()
    assert not validate(wh).success
    for segment in (VIP, RECENT):  # both are built from orders
        result = _plan(wh, segment)
        assert result.status == "blocked", segment
        assert "marts.fct_orders" in result.guard_outcome


def test_a_failure_elsewhere_does_not_block_an_unrelated_segment(wh):
    record_validation(wh, "v1", False, [{"expectation": "expect_table_row_count_to_be_between",
                                         "relations": ["segments.vip_customers"]}])
    assert _plan(wh, VIP).status == "blocked"
    assert _plan(wh, RECENT).status == "dry_run"
    # a failure that names no relation can't be placed: it blocks everything
    record_validation(wh, "v2", False, [{"expectation": "x"}])
    assert _plan(wh, RECENT).status == "blocked"


def test_a_failing_dbt_test_blocks_only_downstream_segments(wh):
    record_validation(wh, "ok", True, [])
    record_build(wh, "b1", "generated", None, 10, 1, ["segments.vip_customers"])
    vip = _plan(wh, VIP)
    assert vip.status == "blocked" and "dbt build had 1 failing node" in vip.guard_outcome
    assert _plan(wh, RECENT).status == "blocked"  # the build is newer than the validation
    record_validation(wh, "ok2", True, [])
    assert _plan(wh, RECENT).status == "dry_run"
    assert _plan(wh, VIP).status == "blocked"
    record_build(wh, "b2", "generated", None, 0, 3, None)  # failures of unknown nodes
    record_validation(wh, "ok3", True, [])
    assert _plan(wh, RECENT).status == "blocked"


def test_a_failing_size_expectation_blocks_only_that_segment(wh):
    """The segment_sizes GX batch reads every segment view; its per-segment columns are
    named after the segment, so an empty cart_abandoners_24h blocks that segment's sync
    and nobody else's."""
    con = duckdb.connect(str(wh.duckdb_path))
    sql = con.execute("select sql from duckdb_views() where schema_name = 'segments' and "
                      "view_name = 'cart_abandoners_24h'").fetchall()[0][0]
    con.execute("alter view segments.cart_abandoners_24h rename to cart_abandoners_24h_full")
    con.execute("create view segments.cart_abandoners_24h as "
                "select * from segments.cart_abandoners_24h_full where false")
    con.close()
    assert sql
    result = validate(wh)
    failed = [(o.batch, o.column, o.relations) for o in result.failed]
    assert ("segment_sizes", "cart_abandoners_24h", ["segments.cart_abandoners_24h"]) in failed
    assert _plan(wh, "cart_abandoners_24h").status == "blocked"
    assert _plan(wh, VIP).status == "dry_run"
