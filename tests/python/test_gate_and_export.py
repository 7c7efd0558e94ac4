"""The data gate: a failing validation exits non-zero and export refuses to run; a
rebuild after validation also closes the gate until validation runs again."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pandas as pd
import pytest

from segwise.ops import GateClosed, record_build
from segwise.sync.runner import export
from segwise.validate.gate import validate

from conftest import DEMO_AS_OF, query

pytestmark = pytest.mark.xdist_group("demo")




def _exec(settings, sql: str) -> None:
    con = duckdb.connect(str(settings.duckdb_path))
    try:
        con.execute(sql)
    finally:
        con.close()


def test_bad_mart_fails_validation_and_blocks_export(demo_copy):
    _exec(demo_copy, "update marts.fct_orders set order_amount = -5 "
                     "where order_id in (select order_id from marts.fct_orders limit 3)")
    result = validate(demo_copy)
    assert result.success is False
    failed = {(o.batch, o.expectation, o.column) for o in result.failed}
    assert ("fct_orders", "expect_column_values_to_be_between", "order_amount") in failed
    with pytest.raises(GateClosed, match="failed"):
        export(demo_copy)
    assert not (demo_copy.output_dir / "exports").exists()


def test_invalid_emails_in_marts_fail_validation(demo_copy):
    _exec(demo_copy, "update marts.dim_customers set email = 'not an email' "
                     "where customer_id in (select customer_id from marts.dim_customers limit 1)")
    result = validate(demo_copy)
    assert not result.success
    assert any(o.column == "email" for o in result.failed)


def test_rebuild_after_validation_closes_the_gate(demo_copy):
    assert validate(demo_copy).success
    record_build(demo_copy, "later", "generated", None, 1, 0)
    with pytest.raises(GateClosed, match="rebuilt"):
        export(demo_copy)
    assert validate(demo_copy).success
    result = export(demo_copy)
    assert result.reports


def test_export_diff_after_membership_change(demo_copy):
    assert validate(demo_copy).success
    export(demo_copy, segments=["vip_customers"])
    exported = pd.read_csv(demo_copy.output_dir / "exports" / "file" / "vip_customers" / "members.csv",
                           dtype=str)
    gone = exported["customer_id"].iloc[0]
    # a rebuild without one member: a held id that left must come out as removed
    _exec(demo_copy, "delete from segmentation.segment_memberships where segment_name = "
                     f"'vip_customers' and customer_id = '{gone}'")
    result = export(demo_copy, segments=["vip_customers"])
    (report,) = result.reports
    assert report.removed == 1 and report.added == 0
    removed = pd.read_csv(demo_copy.output_dir / "exports" / "file" / "vip_customers" / "removed.csv",
                          dtype=str)
    assert list(removed["customer_id"]) == [gone]
    again = export(demo_copy, segments=["vip_customers"])
    assert again.reports[0].removed == 0 and again.reports[0].added == 0


def test_files_and_ad_audiences_share_the_one_ledger_and_audit(demo_copy):
    """One activation wing: the file export and the ad audience are destinations of the
    sync engine — their state is rows of ops.destination_ledger (no second ledger), their
    runs rows of ops.sync_runs, and their members exactly the feed's sendable ones."""
    assert validate(demo_copy).success
    result = export(demo_copy, ["vip_customers"], ("file", "ad_audience"))
    assert [(r.destination, r.status) for r in result.reports] == [
        ("file", "succeeded"), ("ad_audience", "succeeded")]
    ledger = query(demo_copy, "select destination, count(*) as n from ops.destination_ledger "
                              "where segment_name = 'vip_customers' and left_at is null "
                              "group by 1 order by 1")
    sendable = query(demo_copy, "select count(*) as n from activation.sync_esp_members "
                                "where segment_name = 'vip_customers' and is_sendable")["n"][0]
    assert ledger.values.tolist() == [["ad_audience", sendable], ["file", sendable]]
    tables = set(query(demo_copy, "select table_name from information_schema.tables "
                                  "where table_schema = 'ops'")["table_name"])
    assert {"export_state", "export_runs"}.isdisjoint(tables)
    runs = query(demo_copy, "select destination, mode, desired_members from ops.sync_runs "
                            "where segment_name = 'vip_customers' and run_id in "
                            f"{tuple(r.run_id for r in result.reports)}")
    assert sorted(runs.values.tolist()) == [["ad_audience", "mirror", sendable],
                                            ["file", "mirror", sendable]]


def test_an_old_export_state_moves_into_the_ledger(demo_copy):
    """A warehouse from before the one ledger: its file-export state becomes ledger rows,
    so the next export diffs against it (nothing re-announced as added)."""
    assert validate(demo_copy).success
    export(demo_copy, ["vip_customers"])
    _exec(demo_copy, "create table ops.export_state as select destination, segment_name, "
                     "customer_id, synced_at as exported_at, run_id from ops.destination_ledger; "
                     "delete from ops.destination_ledger; "
                     "create table ops.export_runs (run_id varchar)")
    (report,) = export(demo_copy, ["vip_customers"]).reports
    assert report.status == "succeeded" and report.added == 0 and report.removed == 0
    tables = set(query(demo_copy, "select table_name from information_schema.tables "
                                  "where table_schema = 'ops'")["table_name"])
    assert {"export_state", "export_runs"}.isdisjoint(tables)


def test_ad_audience_hashes_normalised_consented_emails(demo_copy):
    import hashlib

    from segwise.sync.destinations.files import normalised_sha256

    assert normalised_sha256("  Ada@Example.COM ") == hashlib.sha256(b"ada@example.com").hexdigest()
    assert validate(demo_copy).success
    (path,) = export(demo_copy, ["cart_abandoners_24h"], ("ad_audience",)).reports[0].outputs
    got = set(pd.read_csv(path)["email_sha256"])
    emails = query(demo_copy, """
        select c.email, s.is_holdout, c.has_email_consent from segments.cart_abandoners_24h s
        join marts.customer_consent c using (customer_id) where c.email is not null""")
    allowed = emails[~emails["is_holdout"] & emails["has_email_consent"]]
    assert got <= {hashlib.sha256(e.encode()).hexdigest() for e in allowed["email"]}
    refused = emails[emails["is_holdout"] | ~emails["has_email_consent"]]
    assert got.isdisjoint({hashlib.sha256(e.encode()).hexdigest() for e in refused["email"]})
    assert len(got) > 0 and all(len(h) == 64 for h in got)


def test_failing_dbt_build_closes_the_gate_for_export_and_sync(demo_copy):
    """A failed dbt build (models or tests) blocks activation even after an older passing
    validation. Bad rows cannot fail it — staging quarantines them — so break an input."""
    from segwise.pipeline import step_build
    from segwise.sync.destinations.mailchimp import MailchimpDestination
    from segwise.sync.engine import sync_segment
    from segwise.transform.dbt import DbtError

    assert validate(demo_copy).success
    # a broken input (the orders table vanished from the raw load): models fail
    _exec(demo_copy, "drop table raw.orders")
    with pytest.raises(DbtError):
        step_build(demo_copy, "generated", None, say=lambda m: None)
    with pytest.raises(GateClosed, match="failing node"):
        export(demo_copy)
    result = sync_segment(demo_copy, "vip_customers",
                          MailchimpDestination("http://127.0.0.1:9", "k-us1", "l"))
    assert result.status == "blocked" and "failing node" in result.guard_outcome


def test_a_stale_source_fails_validation_and_blocks_export_and_sync(demo_copy):
    """`dbt source freshness` is part of the gate: orders last loaded 10 days before the
    end of the as-of day the warehouse was built for (past the shop source's error_after
    of 3 days) fail validation, naming the relation."""
    from segwise.sync.destinations.mailchimp import MailchimpDestination
    from segwise.sync.engine import sync_segment

    _exec(demo_copy, "update raw.orders set _loaded_at = "
                     f"timestamp '{DEMO_AS_OF.isoformat()}' - interval 9 days")
    result = validate(demo_copy)
    assert not result.success
    fresh = [o for o in result.outcomes if o.expectation == "dbt_source_freshness"]
    assert len(fresh) >= 7  # every source table is checked
    assert [(o.batch, o.relations) for o in fresh if not o.success] == [
        ("shop.orders", ["raw.orders"])]
    assert all(o.success for o in result.outcomes if o.suite != "source_freshness")
    with pytest.raises(GateClosed, match="raw.orders"):
        export(demo_copy)
    plan = sync_segment(demo_copy, "vip_customers",
                        MailchimpDestination("http://127.0.0.1:9", "k-us1", "l"), dry_run=True)
    assert plan.status == "blocked" and "raw.orders" in plan.guard_outcome


def test_freshness_is_measured_from_the_end_of_the_as_of_day(demo_copy):
    """The same landed data is fresh for a build as of the day it landed and stale for a
    build as of ten days later: `_loaded_at` comes from the load, not from the clock.
    (The marts' build is enough: it records the as-of the gate measures from.)"""
    from segwise.pipeline import step_build_marts

    _exec(demo_copy, "update raw.orders set _loaded_at = "
                     f"timestamp '{DEMO_AS_OF.isoformat()} 18:00'")
    shop = [o for o in validate(demo_copy).outcomes if o.batch == "shop.orders"]
    assert [o.success for o in shop] == [True], shop
    step_build_marts(demo_copy, "generated", DEMO_AS_OF + timedelta(days=10),
                     say=lambda _: None)
    (stale,) = [o for o in validate(demo_copy).outcomes if o.batch == "shop.orders"]
    assert stale.success is False and "before the end of the as-of day" in stale.detail


def test_export_refuses_between_the_marts_and_the_segments_built_on_new_scores(demo_copy):
    """The DAG builds in three tasks (marts → score → segments): after the first, the
    segment views are still the old ones, so nothing may leave until the last is done."""
    from segwise.pipeline import step_build_marts, step_build_segments, step_score

    step_build_marts(demo_copy, "generated", DEMO_AS_OF, say=lambda _m: None)
    validate(demo_copy)
    with pytest.raises(GateClosed, match="failing node"):
        export(demo_copy)
    runs = step_score(demo_copy, say=lambda _m: None)
    assert {r["model"]: r["status"] for r in runs} == {"churn": "ok", "clv": "ok",
                                                      "clusters": "ok"}
    with pytest.raises(GateClosed):
        export(demo_copy)
    step_build_segments(demo_copy, "generated", DEMO_AS_OF, say=lambda _m: None)
    assert validate(demo_copy).success
    assert export(demo_copy).reports
