"""Churn propensity: the probability that a customer places no valid order within the
horizon H after the as-of date.

Trained and evaluated on the point-in-time rows of ``features.customer_churn_features``
(train cutoffs from as-of − 2H back, test cutoff as-of − H, labels from the H days after
each — so every training label ends before the test cutoff):

* two candidates, fitted on the train cutoffs — gradient boosting
  (``HistGradientBoostingClassifier``) and a logistic regression on log-scaled,
  standardised features — and the recency-only baseline (a logistic regression on
  log recency);
* every candidate's ranking figures (ROC-AUC, PR-AUC, Brier score, expected calibration
  error) are measured on the whole test cutoff, which its training never saw;
* the test cutoff's customers are split at random (seeded) into two halves. The
  candidate with the higher ROC-AUC on the first half is chosen; calibration (isotonic
  from 1,000 customers per half, else Platt) is proved by cross-fitting: a calibrator
  fitted on each half predicts the other, and the pooled out-of-fold probabilities —
  every test customer once, never by a calibrator that saw them — give the calibrated
  figures and the 10-bin calibration table beside the uncalibrated ones. A base rate
  that moves between cutoffs (seasons) is then corrected by the newest period's data,
  not by the training period's;
* the scoring model is the ranking model those figures describe, calibrated on the whole
  test cutoff; it scores the customers at the as-of date.

Deterministic: every estimator and fold split has a fixed seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

SEED = 7
# columns of features.customer_churn_features
COLUMNS = [
    "recency_days", "tenure_days", "purchase_days", "orders_count", "monetary_total",
    "monetary_per_purchase_day", "purchase_days_30d", "purchase_days_90d",
    "purchase_days_180d", "purchase_days_365d", "monetary_90d", "monetary_365d",
    "email_sends_90d", "email_opens_90d", "email_clicks_90d", "web_views_90d",
    "cart_adds_90d",
]
# derived here: the customer's mean gap between purchase days, and recency in those gaps
DERIVED = ["mean_gap_days", "recency_in_gaps"]
FEATURES = COLUMNS + DERIVED
# features read from a source other than orders (see covered_features)
SOURCE_FEATURES = {
    "email": ["email_sends_90d", "email_opens_90d", "email_clicks_90d"],
    "web": ["web_views_90d", "cart_adds_90d"],
}
MIN_ROWS = 50  # per labelled cutoff, and at least 10 of each class


class NotEnoughHistory(RuntimeError):
    """The labelled cutoffs hold too few customers (or one class only) to train honestly."""


def _log1p(x):
    return np.log1p(np.clip(x, 0, None))


def candidates() -> dict[str, object]:
    return {
        "gradient_boosting": HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=40,
            l2_regularization=1.0, early_stopping=False, random_state=SEED),
        "logistic_regression": make_pipeline(
            FunctionTransformer(_log1p), StandardScaler(),
            LogisticRegression(max_iter=2000, random_state=SEED)),
    }


def recency_baseline():
    return make_pipeline(FunctionTransformer(_log1p), StandardScaler(),
                         LogisticRegression(max_iter=2000, random_state=SEED))


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict]:
    """Equal-width bins of the predicted probability: rows, mean predicted, observed rate."""
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        mask = idx == b
        if mask.any():
            out.append({"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "rows": int(mask.sum()),
                        "mean_predicted": float(p[mask].mean()),
                        "observed_rate": float(y[mask].mean())})
    return out


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    table = calibration_table(y, p, bins)
    n = sum(r["rows"] for r in table)
    return float(sum(r["rows"] / n * abs(r["mean_predicted"] - r["observed_rate"])
                     for r in table))


def metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {"roc_auc": float(roc_auc_score(y, p)),
            "pr_auc": float(average_precision_score(y, p)),
            "brier": float(brier_score_loss(y, p)),
            "ece": expected_calibration_error(y, p)}


@dataclass
class ChurnModel:
    chosen: str
    evaluation: dict[str, dict[str, float]]  # candidate / baseline -> test metrics
    calibration: dict[str, object]
    scores: pd.DataFrame  # customer_id, churn_probability
    rows: dict[str, int]
    cutoffs: dict[str, str]
    base_rates: dict[str, float] = field(default_factory=dict)


def _labelled(frame: pd.DataFrame, split: str) -> tuple[pd.DataFrame, np.ndarray]:
    part = frame[frame["split"] == split]
    y = part["churned"].astype(bool).to_numpy().astype(int)
    if len(part) < MIN_ROWS or min(y.sum(), len(y) - y.sum()) < 10:
        raise NotEnoughHistory(
            f"the {split} cutoff has {len(part)} customers ({int(y.sum())} churned): at "
            f"least {MIN_ROWS} with 10 of each outcome are needed — more history than two "
            "churn horizons before the as-of date")
    return part, y


def covered_features(frame: pd.DataFrame, ratio: float = 0.25) -> tuple[
        list[str], dict[str, str]]:
    """The features whose source covers every cutoff; the others, with why not.

    A source (email, web) covers a labelled cutoff when its features' mean per customer
    there is at least ``ratio`` of the mean at the score cutoff: a source that started
    (or was landed) after the train cutoff would otherwise teach the model that "no data"
    is behaviour, and every score would shift."""
    dropped = {}
    for source, columns in SOURCE_FEATURES.items():
        values = frame[columns].astype("float64").fillna(0.0)
        per_split = values.groupby(frame["split"]).mean().sum(axis=1)
        score = float(per_split.get("score", 0.0))
        if score <= 0:
            dropped.update({c: f"no {source} activity at the score cutoff" for c in columns})
            continue
        for split in ("train", "test"):
            have = float(per_split.get(split, 0.0))
            if have < ratio * score:
                why = (f"{source} activity per customer at the {split} cutoff is "
                       f"{have:.2f}, against {score:.2f} at the score cutoff (its data does "
                       "not cover the earlier windows)")
                dropped.update({c: why for c in columns})
                break
    return [f for f in FEATURES if f not in dropped], dropped


def derive(frame: pd.DataFrame) -> pd.DataFrame:
    """The feature columns as floats, plus DERIVED."""
    out = frame.copy()
    out[COLUMNS] = out[COLUMNS].astype("float64").fillna(0.0)
    gaps = out["purchase_days"] - 1
    out["mean_gap_days"] = np.where(gaps > 0, out["tenure_days"] / gaps.clip(lower=1),
                                    out["tenure_days"] + out["recency_days"])
    out["recency_in_gaps"] = out["recency_days"] / out["mean_gap_days"].clip(lower=1)
    return out


def _proba(model, x: np.ndarray) -> np.ndarray:
    return model.predict_proba(x)[:, 1]


def fit(frame: pd.DataFrame, features: list[str] | None = None) -> ChurnModel:
    """Train, evaluate, calibrate and score (see the module docstring)."""
    from sklearn.frozen import FrozenEstimator

    features = list(features or FEATURES)
    frame = derive(frame)
    train, y_train = _labelled(frame, "train")
    test, y_test = _labelled(frame, "test")
    score = frame[frame["split"] == "score"]
    halves = np.random.default_rng(SEED).random(len(test)) < 0.5
    if min(y_test[halves].sum(), (1 - y_test[halves]).sum(), y_test[~halves].sum(),
           (1 - y_test[~halves]).sum()) < 5:
        raise NotEnoughHistory("the test cutoff's halves need 5 customers of each outcome")
    x_train, x_test = train[features].to_numpy(), test[features].to_numpy()

    evaluation: dict[str, dict[str, float]] = {}
    fitted, on_test = {}, {}
    for name, estimator in candidates().items():
        fitted[name] = clone(estimator).fit(x_train, y_train)
        on_test[name] = _proba(fitted[name], x_test)
        evaluation[name] = metrics(y_test, on_test[name])
    base = recency_baseline().fit(train[["recency_days"]].to_numpy(), y_train)
    evaluation["recency_only_baseline"] = metrics(
        y_test, _proba(base, test[["recency_days"]].to_numpy()))
    chosen = max(fitted, key=lambda n: roc_auc_score(y_test[halves], on_test[n][halves]))

    method = "isotonic" if min(halves.sum(), (~halves).sum()) >= 1000 else "sigmoid"
    p_raw = on_test[chosen]
    p_cal = np.empty_like(p_raw)
    for fold in (halves, ~halves):  # fit on one half, predict the other
        cal = CalibratedClassifierCV(FrozenEstimator(fitted[chosen]), method=method)
        cal.fit(x_test[fold], y_test[fold])
        p_cal[~fold] = _proba(cal, x_test[~fold])
    calibration = {
        "method": method, "uncalibrated": metrics(y_test, p_raw),
        "calibrated": metrics(y_test, p_cal),
        "table_uncalibrated": calibration_table(y_test, p_raw),
        "table_calibrated": calibration_table(y_test, p_cal),
    }
    evaluation[f"{chosen}_calibrated"] = calibration["calibrated"]

    # the scoring model: the ranking model just evaluated, calibrated on the whole test
    # cutoff (the newest labelled period, which its training never saw)
    final = CalibratedClassifierCV(FrozenEstimator(fitted[chosen]), method=method).fit(
        x_test, y_test)
    probabilities = _proba(final, score[features].to_numpy()) if len(score) else np.array([])
    scores = pd.DataFrame({"customer_id": score["customer_id"].to_numpy(),
                           "churn_probability": probabilities})
    cutoffs = {s: ", ".join(sorted({str(pd.Timestamp(d).date()) for d in
                                    frame.loc[frame["split"] == s, "cutoff_date"]}))
               for s in ("train", "test", "score") if (frame["split"] == s).any()}
    return ChurnModel(chosen, evaluation, calibration, scores,
                      {"train": len(train), "test": len(test), "first_half": int(halves.sum()),
                       "second_half": int((~halves).sum()), "score": len(score)}, cutoffs,
                      {"train": float(y_train.mean()), "test": float(y_test.mean())})


def risk_band(p: pd.Series, high: float, medium: float) -> pd.Series:
    return pd.Series(np.where(p >= high, "high", np.where(p >= medium, "medium", "low")),
                     index=p.index)
