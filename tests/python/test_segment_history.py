"""Membership history: an unchanged re-run changes nothing; new and removed orders move
exactly the right members, and the SCD2 history shows their entry and exit."""

from __future__ import annotations

import shutil
from dataclasses import replace

import duckdb
import pandas as pd
import pytest

from segwise.pipeline import step_build

from conftest import DEMO_AS_OF, query, quiet

pytestmark = pytest.mark.xdist_group("demo")

REF = pd.Timestamp(DEMO_AS_OF) + pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def history_copy(demo, tmp_path_factory):
    settings, _ = demo
    target = tmp_path_factory.mktemp("history") / "wh" / "segwise.duckdb"
    target.parent.mkdir(parents=True)
    shutil.copy(settings.duckdb_path, target)
    return replace(settings, duckdb_path=target)


def test_history_and_changes(history_copy):
    s = history_copy
    periods_before = query(s, "select count(*) as n from segmentation.segment_membership_history")
    step_build(s, "generated", DEMO_AS_OF, say=quiet)  # unchanged data
    assert query(s, "select count(*) as n from segmentation.segment_changes")["n"][0] == 0
    periods = query(s, "select count(*) as n from segmentation.segment_membership_history")
    assert periods["n"][0] == periods_before["n"][0]
    sizes = query(s, "select * from segmentation.segment_size_history where computed_at = "
                     "(select max(computed_at) from segmentation.segment_size_history)")
    assert len(sizes) > 0 and (sizes["size_delta"] == 0).all() and not sizes["is_alert"].any()

    recent = set(query(s, "select customer_id from segments.recent_purchasers_30d")["customer_id"])
    everyone = query(s, "select customer_id from marts.dim_customers order by customer_id")
    newcomer = next(c for c in everyone["customer_id"] if c not in recent)
    leaver = sorted(recent)[0]
    when = REF - pd.Timedelta(days=2)
    con = duckdb.connect(str(s.duckdb_path))
    con.execute("insert into raw.orders values (?, ?, ?, 'completed', 'EUR', 42.0, 'GB', "
                "current_timestamp::timestamp)", ["TEST-ORDER-1", newcomer, when])
    con.execute("insert into raw.order_items values ('TEST-ORDER-1-0', 'TEST-ORDER-1', 'P0001', "
                "1, 42.0, current_timestamp::timestamp)")
    con.execute("delete from raw.orders where customer_id = ? and ordered_at >= ?",
                [leaver, REF - pd.Timedelta(days=30)])
    con.close()
    step_build(s, "generated", DEMO_AS_OF, say=quiet)

    changes = query(s, "select customer_id, segment_name, change_type "
                       "from segmentation.segment_changes")
    recent_changes = changes[changes["segment_name"] == "recent_purchasers_30d"]
    assert set(map(tuple, recent_changes[["customer_id", "change_type"]].values)) == {
        (newcomer, "added"), (leaver, "removed")}
    # nothing else moves, except through the population-relative RFM scores (one new order
    # can shift a quintile boundary for others) and the model scores (the models are refitted
    # on the changed data, so every customer's score may move)
    rank_based = {"vip_customers", "at_risk_high_value", "valuable_churn_risks",
                  "loyal_high_spenders_persona"}
    others = changes[~changes["segment_name"].isin(rank_based)]
    assert set(others["customer_id"]) <= {newcomer, leaver}

    hist = query(s, "select * from segmentation.segment_membership_history "
                    "where segment_name = 'recent_purchasers_30d' "
                    "and customer_id in ('" + newcomer + "', '" + leaver + "')")
    new_period = hist[hist["customer_id"] == newcomer]
    assert len(new_period) == 1 and new_period["is_current"].all()
    old_period = hist[hist["customer_id"] == leaver]
    assert len(old_period) == 1 and old_period["valid_to"].notna().all()
    assert (old_period["valid_to"] > old_period["valid_from"]).all()
    # periods are stamped in the data's time: the first build at the end of its as-of day,
    # a re-run of the same day a second after the last stamp (never backwards)
    assert (old_period["valid_from"] == REF).all()
    assert (old_period["valid_to"] == REF + pd.Timedelta(seconds=1)).all()
    assert (new_period["valid_from"] == REF + pd.Timedelta(seconds=1)).all()
