"""The data gate: a failing validation exits non-zero and export refuses to run; a
rebuild after validation also closes the gate until validation runs again."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from segwise.export.engine import compute_delta, export
from segwise.export.file_destination import FileDestination
from segwise.ops import GateClosed, record_build
from segwise.validate.gate import validate

from conftest import query

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
    dest = FileDestination(demo_copy.output_dir / "exports")
    with pytest.raises(GateClosed, match="failed"):
        export(demo_copy, dest)
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
        export(demo_copy, FileDestination(demo_copy.output_dir / "exports"))
    assert validate(demo_copy).success
    result = export(demo_copy, FileDestination(demo_copy.output_dir / "exports"))
    assert result.reports


def test_export_diff_after_membership_change(demo_copy):
    assert validate(demo_copy).success
    dest = FileDestination(demo_copy.output_dir / "exports")
    export(demo_copy, dest, segments=["vip_customers"])
    exported = pd.read_csv(demo_copy.output_dir / "exports" / "vip_customers" / "members.csv",
                           dtype=str)
    gone = exported["customer_id"].iloc[0]
    # the view is rebuilt without one member; a held id that left must come out as removed
    _exec(demo_copy, "create or replace view segments.vip_customers as "
                     "select customer_id, 'vip_customers' as segment_name, 'test' as reason, "
                     "'v' as rule_version, false as is_holdout, "
                     "current_timestamp as computed_at from marts.customer_rfm "
                     f"where m_score = 5 and f_score >= 4 and customer_id <> '{gone}'")
    result = export(demo_copy, dest, segments=["vip_customers"])
    (report,) = result.reports
    assert report.removed == 1 and report.added == 0
    removed = pd.read_csv(demo_copy.output_dir / "exports" / "vip_customers" / "removed.csv",
                          dtype=str)
    assert list(removed["customer_id"]) == [gone]
    again = export(demo_copy, dest, segments=["vip_customers"])
    assert again.reports[0].removed == 0 and again.reports[0].added == 0


def test_compute_delta_is_a_pure_set_difference():
    members = pd.DataFrame({"customer_id": ["a", "b", "c"], "email": None,
                            "has_email_consent": True, "segment_name": "s", "reason": "r",
                            "computed_at": None})
    delta = compute_delta("s", members, held={"b", "z"})
    assert list(delta.added["customer_id"]) == ["a", "c"]
    assert list(delta.removed["customer_id"]) == ["z"]
    assert not delta.is_noop
    assert compute_delta("s", members, held={"a", "b", "c"}).is_noop


def test_ad_audience_hashes_normalised_consented_emails(demo_copy):
    import hashlib

    from segwise.export.ad_audience import export_ad_audiences, normalised_sha256

    assert normalised_sha256("  Ada@Example.COM ") == hashlib.sha256(b"ada@example.com").hexdigest()
    assert validate(demo_copy).success
    (path,) = export_ad_audiences(demo_copy, ["cart_abandoners_24h"])
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
        export(demo_copy, FileDestination(demo_copy.output_dir / "exports"))
    result = sync_segment(demo_copy, "vip_customers",
                          MailchimpDestination("http://127.0.0.1:9", "k-us1", "l"))
    assert result.status == "blocked" and "failing node" in result.guard_outcome


def test_a_stale_source_fails_validation_and_blocks_export_and_sync(demo_copy):
    """`dbt source freshness` is part of the gate: orders last loaded 10 days ago (past
    the shop source's error_after of 3 days) fail validation, naming the relation."""
    from segwise.sync.destinations.mailchimp import MailchimpDestination
    from segwise.sync.engine import sync_segment

    _exec(demo_copy, "update raw.orders set _loaded_at = _loaded_at - interval 10 days")
    result = validate(demo_copy)
    assert not result.success
    fresh = [o for o in result.outcomes if o.expectation == "dbt_source_freshness"]
    assert len(fresh) >= 7  # every source table is checked
    assert [(o.batch, o.relations) for o in fresh if not o.success] == [
        ("shop.orders", ["raw.orders"])]
    assert all(o.success for o in result.outcomes if o.suite != "source_freshness")
    with pytest.raises(GateClosed, match="raw.orders"):
        export(demo_copy, FileDestination(demo_copy.output_dir / "exports"))
    plan = sync_segment(demo_copy, "vip_customers",
                        MailchimpDestination("http://127.0.0.1:9", "k-us1", "l"), dry_run=True)
    assert plan.status == "blocked" and "raw.orders" in plan.guard_outcome
