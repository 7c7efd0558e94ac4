"""Measurement marts on a real randomised experiment: Hillstrom's MineThatData e-mail test
(64,000 customers; men's e-mail, women's e-mail, no e-mail; two weeks of outcomes).

Every figure the dbt models compute in SQL is recomputed here independently, from the CSV
with pandas and with statsmodels / scipy (Wilson, Newcombe, pooled z-test, Katz, Welch):
per arm, and per customer segment (history_segment, newbie, channel, zip_code)."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)

from segwise.measure.experiments import hillstrom, import_experiment
from segwise.pipeline import EXPERIMENT_MODELS, step_import_experiment
from segwise.pipeline_vars import dbt_vars
from segwise.transform.dbt import build
from segwise.warehouse import connect

from conftest import DEMO_AS_OF, query, quiet

pytestmark = pytest.mark.xdist_group("demo")

CONTROL = "No E-Mail"
SEGMENTS = ("history_segment", "newbie", "channel", "zip_code")
Z = stats.norm.ppf(0.975)
Z_POWER = stats.norm.ppf(0.8)


@pytest.fixture
def imported(demo_copy, shared_data):
    step_import_experiment(demo_copy, "hillstrom", say=quiet)
    raw = pd.read_csv(shared_data / "hillstrom_email" / "hillstrom.csv",
                      dtype={"zip_code": str, "history_segment": str, "channel": str})
    return demo_copy, raw


def _independent_lift(treated: pd.DataFrame, control: pd.DataFrame, metric: str) -> dict:
    """The lift of one arm over the control, computed with statsmodels / scipy."""
    n1, n2 = len(treated), len(control)
    if metric in ("conversion", "visit"):
        k1, k2 = int(treated[metric].sum()), int(control[metric].sum())
        pooled = (k1 + k2) / (n1 + n2)
        lo, hi = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff")
        _, p = proportions_ztest([k1, k2], [n1, n2])  # pooled variance
        out = {"d": k1 / n1 - k2 / n2, "lo": lo, "hi": hi, "p": p,
               "mde": (Z + Z_POWER) * math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))}
        if k1 and k2:
            rlo, rhi = confint_proportions_2indep(k1, n1, k2, n2, method="log", compare="ratio")
            out |= {"rlo": rlo - 1, "rhi": rhi - 1}
        return out
    a, b = treated[metric].to_numpy(), control[metric].to_numpy()
    test = stats.ttest_ind(a, b, equal_var=False)
    ci = test.confidence_interval(0.95)
    se = math.sqrt(a.var(ddof=1) / n1 + b.var(ddof=1) / n2)
    return {"d": a.mean() - b.mean(), "lo": ci.low, "hi": ci.high, "p": test.pvalue,
            "mde": (Z + Z_POWER) * se}


METRICS = {"converted": "conversion", "visited": "visit", "revenue": "spend"}


def _check_lift_rows(lift: pd.DataFrame, raw: pd.DataFrame, dimension: str) -> int:
    checked = 0
    groups = [("all", raw)] if dimension == "all" else list(raw.groupby(dimension))
    for value, part in groups:
        control = part[part["segment"] == CONTROL]
        for arm in ("Mens E-Mail", "Womens E-Mail"):
            treated = part[part["segment"] == arm]
            for metric, column in METRICS.items():
                row = lift[(lift["dimension"] == dimension)
                           & (lift["dimension_value"] == str(value))
                           & (lift["arm"] == arm) & (lift["metric"] == metric)]
                assert len(row) == 1, (dimension, value, arm, metric)
                row = row.iloc[0]
                want = _independent_lift(treated, control, column)
                where = f"{dimension}={value} {arm} {metric}"
                assert row["treatment_units"] == len(treated), where
                assert row["control_units"] == len(control), where
                assert row["absolute_lift"] == pytest.approx(want["d"], abs=1e-12), where
                # Newcombe / Welch intervals: the t quantile is a 4-term Cornish-Fisher series
                assert row["absolute_lift_lower"] == pytest.approx(want["lo"], abs=2e-6), where
                assert row["absolute_lift_upper"] == pytest.approx(want["hi"], abs=2e-6), where
                # the normal tail is A&S 7.1.26 (< 1.5e-7), Student's t A&S 26.7.8
                assert row["p_value"] == pytest.approx(want["p"], abs=2e-4), where
                assert row["minimum_detectable_effect"] == pytest.approx(want["mde"], rel=1e-9)
                if "rlo" in want:
                    assert row["relative_lift_lower"] == pytest.approx(want["rlo"], abs=1e-9)
                    assert row["relative_lift_upper"] == pytest.approx(want["rhi"], abs=1e-9)
                checked += 1
    return checked


def test_hillstrom_arm_results_equal_an_independent_computation(imported):
    settings, raw = imported
    arms = query(settings, "select * from measurement.experiment_arm_results "
                           "where experiment_id = 'hillstrom' and dimension = 'all'")
    for arm, part in raw.groupby("segment"):
        for metric, column in METRICS.items():
            row = arms[(arms["arm"] == arm) & (arms["metric"] == metric)].iloc[0]
            assert row["units"] == len(part)
            assert row["metric_value"] == pytest.approx(part[column].mean(), abs=1e-12)
            assert bool(row["is_control"]) == (arm == CONTROL)
            if metric == "revenue":
                ci = stats.t.interval(0.95, len(part) - 1, loc=part[column].mean(),
                                      scale=stats.sem(part[column]))
            else:
                ci = proportion_confint(int(part[column].sum()), len(part), method="wilson")
            assert row["ci_lower"] == pytest.approx(ci[0], abs=1e-6)
            assert row["ci_upper"] == pytest.approx(ci[1], abs=1e-6)
    # the published figures (Hillstrom 2008): conversion 1.25 % / 0.88 % / 0.57 %
    conversion = arms[arms["metric"] == "converted"].set_index("arm")["metric_value"]
    assert conversion.round(4).to_dict() == {"Mens E-Mail": 0.0125, "Womens E-Mail": 0.0088,
                                             "No E-Mail": 0.0057}
    lift = query(settings, "select * from measurement.experiment_lift "
                           "where experiment_id = 'hillstrom'")
    assert _check_lift_rows(lift, raw, "all") == 6


def test_hillstrom_lift_per_segment_equals_an_independent_computation(imported):
    settings, raw = imported
    lift = query(settings, "select * from measurement.experiment_lift "
                           "where experiment_id = 'hillstrom'")
    checked = sum(_check_lift_rows(lift, raw, dimension) for dimension in SEGMENTS)
    assert checked == 6 * (7 + 2 + 3 + 3)


def test_hillstrom_segments_add_up_to_the_arms(imported):
    """Per segment and arm, units and totals add up to the arm's; the arm-level lift lies
    within the range of its segments' lifts (a weighted mix of them); every segment's
    interval is wider than the arm's (fewer units)."""
    settings, _ = imported
    arms = query(settings, "select * from measurement.experiment_arm_results "
                           "where experiment_id = 'hillstrom'")
    lift = query(settings, "select * from measurement.experiment_lift "
                           "where experiment_id = 'hillstrom'")
    whole = arms[arms["dimension"] == "all"].set_index(["arm", "metric"])
    for dimension in SEGMENTS:
        parts = arms[arms["dimension"] == dimension].groupby(["arm", "metric"])[
            ["units", "total"]].sum()
        pd.testing.assert_frame_equal(parts.sort_index(), whole[["units", "total"]].sort_index(),
                                      check_exact=False, rtol=1e-12)
        for (arm, metric), row in lift[lift["dimension"] == "all"].set_index(
                ["arm", "metric"]).iterrows():
            seg = lift[(lift["dimension"] == dimension) & (lift["arm"] == arm)
                       & (lift["metric"] == metric)]
            assert seg["absolute_lift"].min() <= row["absolute_lift"] <= seg["absolute_lift"].max()
            width = seg["absolute_lift_upper"] - seg["absolute_lift_lower"]
            assert (width > row["absolute_lift_upper"] - row["absolute_lift_lower"]).all()


def test_bad_experiment_rows_are_quarantined_and_a_reimport_replaces(demo_copy, shared_data):
    experiment = hillstrom(shared_data)
    units = experiment.units.head(2000).copy()
    bad = units.head(4).copy()
    bad["unit_id"] = ["1", "x1", "x2", "x3"]  # "1" duplicates a good unit
    bad.loc[bad.index[1], "arm"] = "  "
    bad.loc[bad.index[2], "revenue"] = -5.0
    bad.loc[bad.index[3], "revenue"] = float("inf")
    small = type(experiment)(**{**experiment.__dict__,
                                "units": pd.concat([units, bad], ignore_index=True),
                                "attributes": experiment.attributes[
                                    experiment.attributes["unit_id"].isin(units["unit_id"])]})
    for _ in range(2):  # the second import replaces the first's rows
        with connect(demo_copy) as con:
            written = import_experiment(con, demo_copy.project_dir, small)
        assert written["experiment_units"] == 2004
    build(demo_copy, dbt_vars(None, "generated"), select=EXPERIMENT_MODELS)
    rejected = query(demo_copy, "select record_key, reason from quarantine.quarantine_rows "
                                "where source_table = 'experiment_units'")
    assert sorted(zip(rejected["record_key"], rejected["reason"], strict=True)) == [
        ("hillstrom:1", "duplicate_unit"), ("hillstrom:x1", "missing_arm"),
        ("hillstrom:x2", "invalid_amount"), ("hillstrom:x3", "invalid_amount")]
    arms = query(demo_copy, "select sum(units) as n from measurement.experiment_arm_results "
                            "where experiment_id = 'hillstrom' and dimension = 'all' "
                            "and metric = 'converted'")
    assert arms["n"].iloc[0] == 2000
    lift = query(demo_copy, "select * from measurement.experiment_lift "
                            "where experiment_id = 'hillstrom'")
    bounds = lift[["absolute_lift_lower", "absolute_lift_upper"]]
    assert np.isfinite(bounds[lift["dimension"] == "all"].to_numpy()).all()
    # no interval only where neither arm varies (a mean over small breakdowns: all zero)
    open_ = lift[bounds.isna().any(axis=1)]
    assert len(open_) and (open_["metric_kind"] == "mean").all()
    assert (open_["absolute_lift"] == 0).all() and (open_["p_value"] == 1).all()


# ------------------------------------------------------------------ the demo's segments
def _bucket(salt: str, customer_id: str) -> int:
    return int(hashlib.md5(f"{salt}:{customer_id}".encode()).hexdigest()[:8], 16) % 10000


def _independent_segment_arms(settings, segment: str, holdout_pct: float) -> pd.DataFrame:
    """A segment's holdout experiment recomputed with pandas from the membership history,
    the valid orders and the sends: each customer's first entry whose 14-day window ended
    by the as-of time; arms by the documented hash; the universal control group left out."""
    history = query(settings, "select customer_id, valid_from "
                              "from segmentation.segment_membership_history "
                              f"where segment_name = '{segment}'")
    orders = query(settings, "select customer_id, ordered_at, order_amount from marts.fct_orders")
    sends = query(settings, "select customer_id, occurred_at from staging.stg_email__events "
                            "where event_type = 'sent'")
    end = pd.Timestamp(DEMO_AS_OF) + pd.Timedelta(days=1)
    window = pd.Timedelta(days=14)
    first = history[history["valid_from"] + window <= end].groupby("customer_id")[
        "valid_from"].min().rename("entered").reset_index()
    first = first[first["customer_id"].map(lambda c: _bucket("universal_control", c) >= 500)]
    first["arm"] = np.where(first["customer_id"].map(lambda c: _bucket(segment, c))
                            < holdout_pct * 100, "holdout", "treatment")

    def within(events: pd.DataFrame, at: str) -> pd.DataFrame:
        joined = first.merge(events, on="customer_id")
        return joined[(joined[at] >= joined["entered"]) & (joined[at] < joined["entered"] + window)]

    bought = within(orders, "ordered_at").groupby("customer_id")["order_amount"].agg(
        ["size", "sum"])
    emailed = set(within(sends, "occurred_at")["customer_id"])
    first["converted"] = first["customer_id"].isin(bought.index).astype(float)
    first["revenue"] = first["customer_id"].map(bought["sum"]).fillna(0).astype(float)
    first["emailed"] = first["customer_id"].isin(emailed).astype(float)
    return first


@pytest.mark.parametrize("segment, works", [("inactive_90d", True),
                                            ("engaged_non_buyers_90d", False)])
def test_segment_holdout_lift_shows_which_campaign_works(demo, segment, works):
    """The demo's win-back campaign (to inactive_90d's treatment members) works: the
    conversion lift's interval lies above zero. The browse reminder (to
    engaged_non_buyers_90d's) does nothing: its interval holds zero. Units, conversions,
    revenue and contamination (holdout members emailed anyway) equal a pandas
    recomputation."""
    settings, _ = demo
    want = _independent_segment_arms(settings, segment, 15)
    arms = query(settings, "select * from measurement.experiment_arm_results "
                           f"where experiment_id = '{segment}'")
    for (arm, metric), row in arms.set_index(["arm", "metric"]).iterrows():
        part = want[want["arm"] == arm]
        assert row["units"] == len(part), (arm, metric)
        column = "converted" if metric == "orders" else metric
        if metric == "orders":
            continue  # orders per member: checked through converted and revenue
        assert row["total"] == pytest.approx(part[column].sum(), abs=1e-6), (arm, metric)
    holdout = want[want["arm"] == "holdout"]
    assert len(holdout) >= 30 and holdout["emailed"].mean() > 0  # contamination, measured
    lift = query(settings, "select * from measurement.experiment_lift "
                           f"where experiment_id = '{segment}' and metric = 'converted'").iloc[0]
    assert lift["control_arm"] == "holdout" and lift["arm"] == "treatment"
    if works:
        assert lift["absolute_lift_lower"] > 0 and lift["lift_verdict"] == "positive"
        assert lift["p_value"] < 0.001
    else:
        assert lift["absolute_lift_lower"] < 0 < lift["absolute_lift_upper"]
        assert lift["lift_verdict"] == "inconclusive"


def test_the_generator_targets_the_segments_declared_holdouts():
    """The demo generator withholds its targeted campaigns from the same holdouts and
    universal control group the project declares."""
    from segwise.generate.generator import TARGETED, UNIVERSAL_CONTROL
    from segwise.segments import definitions
    from segwise.settings import project_root, project_vars

    specs = {s.name: s for s in definitions(project_root())}
    for campaign in TARGETED:
        assert specs[campaign.segment].holdout_pct == campaign.holdout_pct
        assert specs[campaign.segment].holdout_salt == campaign.segment
    variables = project_vars(project_root())
    assert (variables["universal_control_salt"],
                                 float(variables["universal_control_pct"])) == UNIVERSAL_CONTROL


def test_campaign_performance_takes_the_membership_at_send_time(demo):
    """The win-back campaign × inactive_90d, recomputed with pandas from the events, the
    membership history and the valid orders; many of its converted recipients have left
    the segment since (they bought), so today's membership would miss them."""
    settings, _ = demo
    row = query(settings, "select * from measurement.campaign_segment_performance "
                          "where campaign_id = 'CMP-WINBACK' and segment_name = 'inactive_90d'"
                ).iloc[0]
    events = query(settings, "select customer_id, event_type, occurred_at "
                             "from staging.stg_email__events where campaign_id = 'CMP-WINBACK'")
    sends = events[events["event_type"] == "sent"].groupby("customer_id")["occurred_at"].min()
    history = query(settings, "select customer_id, valid_from, valid_to "
                              "from segmentation.segment_membership_history "
                              "where segment_name = 'inactive_90d'")
    joined = history.merge(sends.rename("sent_at").reset_index(), on="customer_id")
    held = joined[(joined["valid_from"] <= joined["sent_at"])
                  & (joined["valid_to"].isna() | (joined["sent_at"] < joined["valid_to"]))]
    members = set(held["customer_id"])
    assert row["recipients"] == len(members) > 100
    opened = set(events.loc[events["event_type"] == "open", "customer_id"])
    assert row["opens"] == len(members & opened)
    orders = query(settings, "select customer_id, ordered_at, order_amount from marts.fct_orders")
    o = orders.merge(held[["customer_id", "sent_at"]], on="customer_id")
    o = o[(o["ordered_at"] >= o["sent_at"])
          & (o["ordered_at"] < o["sent_at"] + pd.Timedelta(days=14))]
    assert row["converted_recipients"] == o["customer_id"].nunique() > 0
    assert float(row["revenue_after_send"]) == pytest.approx(float(o["order_amount"].sum()),
                                                             abs=0.01)
    assert row["holdout_recipients"] == 0  # the campaign skipped the segment's holdout
    current = set(query(settings, "select customer_id from segments.inactive_90d")["customer_id"])
    assert len(set(o["customer_id"]) - current) > 0
    everyone = query(settings, "select recipients from measurement.campaign_segment_performance "
                               "where campaign_id = 'CMP-WINBACK' "
                               "and segment_name = '(all recipients)'")
    assert everyone["recipients"].iloc[0] == len(sends)


def test_the_scorecard_carries_each_segments_lift_and_flags(demo):
    settings, _ = demo
    every = query(settings, "select * from measurement.segment_scorecard")
    # one row per segment per run: the lead-in build's and the latest build's
    assert every["computed_at"].nunique() == 2
    card = every[every["computed_at"] == every["computed_at"].max()].set_index("segment_name")
    sizes = query(settings, "select segment_name, count(*) as n "
                            "from segmentation.segment_memberships group by 1").set_index(
        "segment_name")["n"]
    assert (card.loc[sizes.index, "members"] == sizes).all()
    lift = query(settings, "select * from measurement.experiment_lift "
                           "where metric = 'converted' and dimension = 'all'").set_index(
        "experiment_id")
    for segment in ("inactive_90d", "engaged_non_buyers_90d", "cart_abandoners_24h"):
        for prefix, experiment in (("holdout", segment),
                                   ("universal_control", f"{segment}@universal_control")):
            for end in ("lower", "upper"):
                assert card.loc[segment, f"{prefix}_lift_{end}"] == pytest.approx(
                    lift.loc[experiment, f"absolute_lift_{end}"])
    assert card["holdout_lift"].notna().sum() == 4  # the four segments with a holdout
    assert (card["is_campaign_not_working"]
            == (card["holdout_lift_upper"] <= 0).fillna(False)).all()
    assert card.loc["inactive_90d", "last_campaign_id"] is not None


def test_the_run_report_shows_the_scorecard_and_the_cohorts(demo):
    settings, summary = demo
    report = (settings.output_dir / "run_report.md").read_text()
    scorecard = report.split("## Segment scorecard")[1].split("\n## ")[0]
    inactive = next(line for line in scorecard.splitlines() if line.startswith("| inactive_90d "))
    assert inactive.rstrip().endswith("| works |")
    browse = next(line for line in scorecard.splitlines()
                  if line.startswith("| engaged_non_buyers_90d "))
    assert browse.rstrip().endswith("| inconclusive |")
    cohorts = report.split("## Cohort retention")[1].split("\n## ")[0]
    assert cohorts.count("| 100 % |") >= 10  # month 0 is every cohort's whole
    assert summary.cohorts and summary.scorecard


def test_ab_variants_are_the_documented_hash_and_measured_against_control(demo):
    """A/B/n: the variant is the holdouts' hash of '<salt>:variant:<id>' cut at the
    cumulative weights (45, 90, 100 %), in SQL as in Python; the variant experiment
    compares each variant with the control variant among the members who get emails."""
    settings, _ = demo
    members = query(settings, "select customer_id, variant, is_holdout "
                              "from segments.cart_abandoners_24h")

    def variant(customer_id: str) -> str:
        bucket = _bucket("cart_abandoners_24h:variant", customer_id)
        return "subject_a" if bucket < 4500 else "subject_b" if bucket < 9000 else "control"

    assert len(members) > 100
    assert (members["customer_id"].map(variant) == members["variant"]).all()
    assert query(settings, "select count(*) as n from segments.inactive_90d "
                           "where variant is not null")["n"].iloc[0] == 0
    lift = query(settings, "select * from measurement.experiment_lift "
                           "where experiment_id = 'cart_abandoners_24h@variants'")
    assert set(lift["arm"]) == {"subject_a", "subject_b"}
    assert set(lift["control_arm"]) == {"control"} and set(lift["experiment_kind"]) == {"variant"}
    arms = query(settings, "select arm, units from measurement.experiment_arm_results "
                           "where experiment_id = 'cart_abandoners_24h@variants' "
                           "and metric = 'converted'").set_index("arm")["units"]
    holdout = query(settings, "select sum(units) as n from measurement.experiment_arm_results "
                              "where experiment_id = 'cart_abandoners_24h' "
                              "and metric = 'converted' and arm = 'treatment'")["n"].iloc[0]
    assert arms.sum() == holdout  # the same members: treated, outside the control groups
