"""The full job on generated demo data: every seeds segment is non-empty and its members
are exactly what the rule, recomputed independently in pandas, says."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import DEMO_AS_OF, query
from independent import (
    browsed_not_bought,
    cart_abandoners,
    inactive,
    orders_in_window,
    read,
    rfm,
)

pytestmark = pytest.mark.xdist_group("demo")

SEEDS_SEGMENTS = [
    "recent_purchasers_30d", "cart_abandoners_24h", "browsed_not_bought_48h",
    "repeat_buyers_30d", "highly_engaged_recent_buyers", "inactive_90d", "vip_customers",
    "at_risk_high_value",
]
REF = pd.Timestamp(DEMO_AS_OF) + pd.Timedelta(days=1)


def members(settings, segment: str) -> set[str]:
    return set(query(settings, f"select customer_id from segments.{segment}")["customer_id"])


def test_run_passes_validation_and_exports(demo):
    settings, summary = demo
    assert summary.validation_success is True
    assert summary.export_refused is None
    assert {e["segment"] for e in summary.exports} >= set(SEEDS_SEGMENTS)
    assert summary.rows_loaded["orders"] > 0
    assert (settings.output_dir / "run_report.md").exists()
    assert summary.data_docs and (settings.output_dir / "gx").exists()


@pytest.mark.parametrize("segment", SEEDS_SEGMENTS)
def test_every_seeds_segment_is_non_empty(demo, segment):
    settings, _ = demo
    assert len(members(settings, segment)) > 0


def test_recent_and_repeat_purchasers_match_independent_rule(demo):
    settings, _ = demo
    counts = orders_in_window(settings.raw_dir, REF, 30)
    assert members(settings, "recent_purchasers_30d") == set(counts.index)
    assert members(settings, "repeat_buyers_30d") == set(counts[counts >= 2].index)


def test_cart_abandoners_match_independent_rule(demo):
    settings, _ = demo
    assert members(settings, "cart_abandoners_24h") == cart_abandoners(settings.raw_dir, REF)


def test_browse_abandoners_match_independent_rule(demo):
    settings, _ = demo
    expected = browsed_not_bought(settings.raw_dir, REF)
    assert members(settings, "browsed_not_bought_48h") == expected


def test_inactive_match_independent_rule(demo):
    settings, _ = demo
    assert members(settings, "inactive_90d") == inactive(settings.raw_dir, REF)


def test_rfm_scores_and_value_segments_match_independent_computation(demo):
    settings, _ = demo
    orders = read(settings.raw_dir, "orders").rename(columns={"order_total": "amount"})
    expected = rfm(orders, DEMO_AS_OF.isoformat())
    got = query(settings, "select * from marts.customer_rfm").set_index("customer_id")
    assert set(got.index) == set(expected.index)
    sample = expected.sample(n=min(300, len(expected)), random_state=1).index
    for col in ("recency_days", "orders_count", "frequency_repeat", "recency_btyd_days",
                "tenure_days", "r_score", "f_score", "m_score"):
        assert (got.loc[sample, col].astype(int) == expected.loc[sample, col].astype(int)).all(), col
    for col in ("monetary_total", "monetary_avg_repeat"):
        assert (got.loc[sample, col].astype(float) - expected.loc[sample, col]).abs().max() < 1e-6
    vip = set(expected[(expected["m_score"] >= 5) & (expected["f_score"] >= 4)].index)
    at_risk = set(expected[(expected["m_score"] >= 4) & (expected["r_score"] <= 2)].index)
    assert members(settings, "vip_customers") == vip
    assert members(settings, "at_risk_high_value") == at_risk


def test_segment_rows_carry_reasons(demo):
    settings, _ = demo
    df = query(settings, "select * from segments.repeat_buyers_30d limit 5")
    assert list(df.columns) == ["customer_id", "segment_name", "reason", "rule_version",
                                "is_holdout", "variant", "computed_at"]
    assert df["reason"].str.fullmatch(r"order_30d=\d+ >= 2").all()


def test_export_files_hold_members_and_re_export_is_idempotent(demo):
    from segwise.sync.runner import export

    settings, summary = demo
    folder = settings.output_dir / "exports" / "file"
    for segment in SEEDS_SEGMENTS:
        exported = pd.read_csv(folder / segment / "members.csv", dtype={"customer_id": str})
        # what the activation feed allows: outside the holdout, consent decided in dbt
        allowed = set(query(settings, "select customer_id from activation.sync_esp_members "
                                      f"where segment_name = '{segment}' and is_sendable"
                                      )["customer_id"])
        assert set(exported["customer_id"]) == allowed
        holdout = set(query(settings, f"select customer_id from segments.{segment} "
                                      "where is_holdout")["customer_id"])
        assert allowed.isdisjoint(holdout)
        assert len(pd.read_parquet(folder / segment / "members.parquet")) == len(exported)
    again = export(settings)
    assert all(r.added == 0 and r.removed == 0 for r in again.reports)
    for segment in SEEDS_SEGMENTS:
        assert pd.read_csv(folder / segment / "added.csv").empty


def test_holdout_is_the_documented_salted_hash(demo):
    """is_holdout reproduces in plain Python: md5(salt:id)[:8] as int, mod 10000 < pct*100."""
    import hashlib

    settings, _ = demo
    df = query(settings, "select customer_id, is_holdout from segments.cart_abandoners_24h")
    expected = df["customer_id"].map(
        lambda c: int(hashlib.md5(f"cart_abandoners_24h:{c}".encode()).hexdigest()[:8], 16)
        % 10000 < 1000)
    assert (df["is_holdout"] == expected).all()
    assert 0 < df["is_holdout"].sum() < len(df)
    treatment = members(settings, "cart_abandoners_treatment")
    assert treatment == set(df[~df["is_holdout"]]["customer_id"])


def test_the_run_scores_every_model_and_reports_it_with_its_card(demo):
    """The scoring step ran inside the run: three model runs recorded, their cards beside
    the report, the report naming each, and the scores usable as traits."""
    settings, summary = demo
    assert {m["model"]: m["status"] for m in summary.models} == {
        "churn": "ok", "clv": "ok", "clusters": "ok"}
    report = (settings.output_dir / "run_report.md").read_text()
    assert "## Models (scoring step)" in report
    for m in summary.models:
        card = settings.output_dir / "model_cards" / f"{m['model']}.md"
        assert m["card"] == str(card) and card.exists()
        text = card.read_text()
        assert text.startswith(f"# Model card — {m['model']}")
        assert "## Limitations" in text and "## Features" in text
        assert m["headline"] in report
    runs = query(settings, "select model, version_hash, features_json, params_json, "
                           "metrics_json, rows_trained, rows_scored, training_window_start, "
                           "training_window_end from ops.model_runs "
                           f"where training_window_end = '{DEMO_AS_OF.isoformat()}'")
    # the run scored twice: the lead-in build (14 days earlier) and the build as of the as-of
    assert len(runs) == 3 and runs["version_hash"].str.len().eq(64).all()
    assert (runs["rows_scored"] > 0).all() and runs["training_window_start"].notna().all()
    profile = query(settings, "select count(churn_probability) as churn, count(cluster_label) "
                              "as clusters, count(predicted_clv_365d) as clv, "
                              "count(orders_count) as buyers from marts.customer_profile "
                              "where orders_count > 0")
    assert profile.iloc[0].nunique() == 1  # every buyer has every score
