"""The model families against published figures and an implementation we did not write.

BG/NBD and Gamma-Gamma: the CDNOW sample's published maximum-likelihood estimates (Fader,
Hardie & Lee 2005), the `lifetimes` package's independent summaries and predictions, and
a backtest on the CDNOW master file. Clusters: stability of ids and assignments on the
project's generated data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segwise.predict import btyd, churn, clusters, clv

from conftest import query

PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}
CAL_END = pd.Timestamp("1997-09-30")


def _sample(shared_data) -> pd.DataFrame:
    tx = pd.read_csv(shared_data / "cdnow" / "CDNOW_sample.txt", sep=r"\s+", header=None,
                     names=["master_id", "customer_id", "date", "cds", "amount"],
                     dtype={"date": str})
    tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d")
    return tx


def _master(shared_data) -> pd.DataFrame:
    tx = pd.read_csv(shared_data / "cdnow" / "CDNOW_master.txt", sep=r"\s+",
                     dtype={"customer_id": str, "date": str})
    tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d")
    return tx


@pytest.fixture(scope="module")
def sample(shared_data):
    return btyd.summarise(_sample(shared_data), "customer_id", "date", "amount", CAL_END)


def test_bgnbd_and_gamma_gamma_reproduce_the_published_cdnow_sample_estimates(sample):
    assert len(sample) == 2357 and int((sample["x"] > 0).sum()) == 946
    bg = btyd.fit_bgnbd(sample["x"], sample["t_x"], sample["T"])
    for name, published in PUBLISHED_BGNBD.items():
        assert bg.params[name] == pytest.approx(published, rel=0.01), name
    assert bg.log_likelihood == pytest.approx(-9582.4, abs=0.1)  # FHL 2005, table 1
    gg = btyd.fit_gamma_gamma(sample["x"], sample["m"])
    assert gg.customers == 946
    for name, published in PUBLISHED_GG.items():
        assert gg.params[name] == pytest.approx(published, rel=0.01), name


def test_btyd_inputs_and_predictions_agree_with_lifetimes(shared_data, sample):
    """lifetimes (an implementation we did not write) summarises the same transactions and,
    fitted on its own, predicts the same purchases, P(alive) and spend."""
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    tx = _sample(shared_data)
    ref = summary_data_from_transaction_data(tx, "customer_id", "date", "amount",
                                             observation_period_end="1997-09-30", freq="D")
    ref = ref.loc[sample.index]
    assert np.array_equal(ref["frequency"].to_numpy(), sample["x"].to_numpy())
    assert np.allclose(ref["recency"].to_numpy() / 7, sample["t_x"].to_numpy())
    assert np.allclose(ref["T"].to_numpy() / 7, sample["T"].to_numpy())
    assert np.allclose(ref["monetary_value"].to_numpy(), sample["m"].to_numpy())

    ours = btyd.fit_bgnbd(sample["x"], sample["t_x"], sample["T"])
    theirs = BetaGeoFitter().fit(sample["x"], sample["t_x"], sample["T"])
    args = (sample["x"].to_numpy(), sample["t_x"].to_numpy(), sample["T"].to_numpy())
    for t in (4, 39, 52):
        assert np.allclose(ours.expected_purchases(t, *args),
                           theirs.conditional_expected_number_of_purchases_up_to_time(t, *args),
                           rtol=2e-3), t
    assert np.allclose(ours.p_alive(*args), theirs.conditional_probability_alive(*args),
                       rtol=2e-3, atol=1e-4)
    assert np.allclose(ours.expected_purchases_new(np.array([10.0, 39.0, 78.0])),
                       theirs.expected_number_of_purchases_up_to_time(
                           np.array([10.0, 39.0, 78.0])), rtol=2e-3)
    repeat = sample[sample["x"] > 0]
    gg = btyd.fit_gamma_gamma(repeat["x"], repeat["m"])
    ref_gg = GammaGammaFitter().fit(repeat["x"], repeat["m"])
    assert np.allclose(gg.expected_spend(repeat["x"], repeat["m"]),
                       ref_gg.conditional_expected_average_profit(repeat["x"], repeat["m"]),
                       rtol=2e-3)


def test_bgnbd_recovers_the_parameters_it_was_simulated_with():
    """Customers simulated by the BG/NBD story itself (exponential gaps, a coin after each
    purchase): the fit finds the parameters back."""
    rng = np.random.default_rng(3)
    n, truth = 40_000, {"r": 0.5, "alpha": 6.0, "a": 1.2, "b": 3.5}
    lam = rng.gamma(truth["r"], 1 / truth["alpha"], n)
    p = rng.beta(truth["a"], truth["b"], n)
    T = rng.uniform(20, 80, n)
    x, t_x, t = np.zeros(n), np.zeros(n), np.zeros(n)
    alive = np.ones(n, bool)
    for _ in range(200):
        nxt = t + rng.exponential(1 / lam)
        buy = alive & (nxt <= T)
        x[buy] += 1
        t_x[buy] = nxt[buy]
        t = np.where(buy, nxt, t)
        alive &= buy & (rng.random(n) >= p)
    fit = btyd.fit_bgnbd(x, t_x, T)
    for name, value in truth.items():
        assert fit.params[name] == pytest.approx(value, rel=0.12), (name, fit.params)


def test_clv_interval_matches_monte_carlo_over_the_parameter_covariance(sample):
    """The delta-method 90 % bounds against quantiles of CLV over parameter draws."""
    frame = pd.DataFrame({"customer_id": sample.index, "frequency_repeat": sample["x"],
                          "recency_btyd_days": sample["t_x"] * 7, "tenure_days": sample["T"] * 7,
                          "monetary_avg_repeat": sample["m"]})
    model = clv.fit(frame)
    s = model.scores
    assert (s["predicted_clv_365d_lower"] <= s["predicted_clv_365d"]).all()
    assert (s["predicted_clv_365d"] <= s["predicted_clv_365d_upper"]).all()
    assert (s["predicted_clv_365d_lower"] > 0).all()
    d = clv.inputs(frame)
    pick = np.argsort(s["predicted_clv_365d"].to_numpy())[[200, 1200, 2300]]
    sub = {k: v[pick] for k, v in d.items()}
    draws = np.array([clv._clv(b, g, sub, 365) for b, g in zip(
        model.bgnbd.draws(2000, 1), model.gamma_gamma.draws(2000, 2), strict=True)])
    lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
    assert np.allclose(s["predicted_clv_365d_lower"].to_numpy()[pick], lo, rtol=0.1)
    assert np.allclose(s["predicted_clv_365d_upper"].to_numpy()[pick], hi, rtol=0.1)


def test_clv_backtest_on_the_cdnow_master_beats_the_naive_baseline(shared_data):
    """Calibrate to 1997-09-30, predict each customer's repeat purchases to 1998-06-30."""
    tx = _master(shared_data)
    end = pd.Timestamp("1998-06-30")
    s = btyd.summarise(tx, "customer_id", "date", "dollar_value", CAL_END, observation_end=end)
    assert len(s) == 23_570
    weeks = (end - CAL_END).days / 7
    result = clv.backtest(s["x"], s["t_x"], s["T"], s["x_holdout"], weeks)
    assert result["mae_model"] < result["mae_naive"]
    # the aggregate (measured: model −14 %, naive +47 %): the model's error is under a third
    # of the naive baseline's
    model_error = abs(result["predicted_total"] / result["actual_total"] - 1)
    naive_error = abs(result["naive_total"] / result["actual_total"] - 1)
    assert model_error < 0.15 and naive_error > 0.4 and model_error < naive_error / 3
    # week by week (measured: within 17 % from week 5 on), and closer than the naive curve
    days = tx.assign(day=tx["date"].dt.normalize()).drop_duplicates(["customer_id", "day"])
    hold = days[(days["day"] > CAL_END) & (days["day"] <= end)]
    week_of = ((hold["day"] - CAL_END).dt.days - 1) // 7 + 1
    bg = btyd.fit_bgnbd(s["x"], s["t_x"], s["T"], with_covariance=False)
    curve = clv.weekly_curve(bg, s["x"], s["t_x"], s["T"], week_of.to_numpy(), int(weeks))
    late = curve[curve["week"] >= 5]
    model_gap = abs(late["predicted_cumulative"] / late["actual_cumulative"] - 1)
    naive_rate = float((s["x"] / s["T"]).sum())
    naive_gap = abs(naive_rate * late["week"] / late["actual_cumulative"] - 1)
    assert model_gap.max() < 0.2 and (model_gap < naive_gap).all()


# ------------------------------------------------------------------ churn helpers
def test_a_source_that_starts_after_the_training_cutoffs_is_left_out():
    rows = []
    for split, opens in (("train", 0.0), ("test", 0.1), ("score", 3.0)):
        for i in range(20):
            rows.append({"split": split, **{c: 1.0 for c in churn.COLUMNS},
                         "email_sends_90d": opens, "email_opens_90d": opens,
                         "email_clicks_90d": 0.0, "web_views_90d": 5.0, "cart_adds_90d": 1.0,
                         "customer_id": f"c{i}"})
    kept, dropped = churn.covered_features(pd.DataFrame(rows))
    assert set(dropped) == set(churn.SOURCE_FEATURES["email"])
    assert "web_views_90d" in kept and "recency_days" in kept
    assert "train cutoff" in dropped["email_opens_90d"]


def test_calibration_table_and_error_are_computed_as_documented():
    y = np.array([0, 0, 1, 1, 1, 0, 1, 1])
    p = np.array([0.05, 0.15, 0.95, 0.85, 0.95, 0.55, 0.55, 0.85])
    table = churn.calibration_table(y, p)
    assert [r["rows"] for r in table] == [1, 1, 2, 2, 2]
    ece = sum(r["rows"] / 8 * abs(r["mean_predicted"] - r["observed_rate"]) for r in table)
    assert churn.expected_calibration_error(y, p) == pytest.approx(ece)
    assert ece == pytest.approx((0.05 + 0.15 + 2 * 0.05 + 2 * 0.15 + 2 * 0.05) / 8)


def _churn_frame(seed: int = 3, n: int = 2400) -> pd.DataFrame:
    """Customers whose churn depends on recency and frequency by a known logistic law;
    the test cutoff's base rate is shifted (a season), so raw probabilities are off."""
    rng = np.random.default_rng(seed)
    parts = []
    for split, shift in (("train", 0.0), ("test", 1.0), ("score", 0.0)):
        recency = rng.gamma(2.0, 40.0, n)
        days = rng.poisson(3.0, n) + 1
        logit = -1.0 + 0.02 * recency - 0.4 * days + shift
        frame = pd.DataFrame({c: 0.0 for c in churn.COLUMNS}, index=range(n))
        frame["recency_days"], frame["purchase_days"] = recency, days
        frame["tenure_days"] = recency + rng.gamma(2.0, 60.0, n)
        frame["orders_count"] = days
        frame["split"], frame["customer_id"] = split, [f"{split}{i}" for i in range(n)]
        frame["cutoff_date"] = pd.Timestamp({"train": "2020-01-01", "test": "2020-04-01",
                                             "score": "2020-07-01"}[split])
        frame["churned"] = (None if split == "score"
                            else rng.random(n) < 1 / (1 + np.exp(-logit)))
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def test_churn_figures_cover_the_whole_test_cutoff_and_calibration_is_out_of_fold():
    from sklearn.base import clone
    from sklearn.metrics import roc_auc_score

    frame = _churn_frame()
    model = churn.fit(frame)
    test = churn.derive(frame[frame["split"] == "test"])
    train = churn.derive(frame[frame["split"] == "train"])
    y = test["churned"].astype(int).to_numpy()
    # every candidate's figure is its ranking of all test customers, recomputed here
    for name, estimator in churn.candidates().items():
        fitted = clone(estimator).fit(train[churn.FEATURES].to_numpy(),
                                      train["churned"].astype(int).to_numpy())
        expected = roc_auc_score(y, fitted.predict_proba(test[churn.FEATURES].to_numpy())[:, 1])
        assert model.evaluation[name]["roc_auc"] == pytest.approx(expected)
    cal = model.calibration
    assert sum(r["rows"] for r in cal["table_calibrated"]) == len(test)
    assert model.rows["first_half"] + model.rows["second_half"] == len(test)
    # the shifted base rate is corrected by the newest period, measured out of fold
    assert cal["calibrated"]["ece"] < cal["uncalibrated"]["ece"] / 2
    assert cal["calibrated"]["brier"] < cal["uncalibrated"]["brier"]
    assert model.evaluation[model.chosen]["roc_auc"] > model.evaluation[
        "recency_only_baseline"]["roc_auc"]
    # deterministic, and the scores are probabilities for every score-cutoff customer
    again = churn.fit(frame)
    assert again.scores.equals(model.scores)
    assert len(model.scores) == (frame["split"] == "score").sum()
    assert model.scores["churn_probability"].between(0, 1).all()


# ------------------------------------------------------------------ clusters
@pytest.fixture(scope="module")
def cluster_frame(demo):
    settings, _ = demo
    return query(settings, "select rfm.customer_id, rfm.recency_days, rfm.orders_count, "
                           "rfm.monetary_total, e.email_opens_90d, e.email_clicks_90d, "
                           "e.web_sessions_90d from marts.customer_rfm rfm left join "
                           "marts.customer_engagement e on rfm.customer_id = e.customer_id")


def _previous(result: clusters.Clustering) -> clusters.Previous:
    return clusters.Previous(result.k, result.features, result.centroids_log, result.ids,
                             result.assignments.set_index("customer_id")["cluster_id"])


def test_clusters_on_unchanged_data_are_the_same_clusters_with_the_same_ids(cluster_frame):
    first = clusters.fit(cluster_frame)
    shuffled = cluster_frame.sample(frac=1.0, random_state=5)
    second = clusters.fit(shuffled, previous=_previous(first))
    assert second.drift["adjusted_rand_index"] == 1.0
    merged = first.assignments.merge(second.assignments, on="customer_id")
    assert (merged["cluster_id_x"] == merged["cluster_id_y"]).all()
    assert (merged["cluster_label_x"] == merged["cluster_label_y"]).all()
    assert set(second.drift["jaccard"].values()) == {1.0}


def test_five_percent_new_customers_keep_the_old_ones_in_their_clusters(cluster_frame):
    rng = np.random.default_rng(9)
    new = rng.random(len(cluster_frame)) < 0.05
    old = cluster_frame[~new]
    first = clusters.fit(old)
    second = clusters.fit(cluster_frame, previous=_previous(first))
    assert second.drift["common_customers"] == len(old)
    assert second.drift["adjusted_rand_index"] >= 0.9
    assert sorted(second.ids) == sorted(first.ids)  # same personas, same ids


def test_stable_ids_follow_the_previous_centroids_whatever_their_numbers(cluster_frame):
    first = clusters.fit(cluster_frame)
    renumbered = _previous(first)
    mapping = {old: 100 + 7 * i for i, old in enumerate(first.ids)}
    renumbered.ids = [mapping[i] for i in first.ids]
    renumbered.assignments = renumbered.assignments.map(mapping)
    second = clusters.fit(cluster_frame, previous=renumbered)
    merged = first.assignments.merge(second.assignments, on="customer_id")
    assert (merged["cluster_id_x"].map(mapping) == merged["cluster_id_y"]).all()


@pytest.mark.parametrize("method", ["ward", "dbscan"])
def test_the_other_methods_cluster_everyone(cluster_frame, method):
    result = clusters.fit(cluster_frame, method=method)
    assert len(result.assignments) == len(cluster_frame)
    assert result.assignments["cluster_label"].notna().all()
    assert result.k >= 1


def test_personas_follow_the_documented_rules():
    assert clusters.persona({"recency_days": -1, "email_opens_90d": 1.0}) == \
        "Highly engaged recent buyers"
    assert clusters.persona({"recency_days": -1, "orders_count": 1, "monetary_total": 1}) == \
        "Loyal high spenders"
    assert clusters.persona({"recency_days": -0.2}) == "Recent occasional buyers"
    assert clusters.persona({"recency_days": 1, "monetary_total": 0.3}) == \
        "Potential churn risks"
    assert clusters.persona({"recency_days": 1, "monetary_total": -1, "orders_count": -1}) == \
        "Dormant low value"
