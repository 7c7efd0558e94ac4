"""Customer lifetime value: BG/NBD (repeat purchases, P(alive)) × Gamma-Gamma (spend per
purchase), fitted on the RFM mart's BTYD columns (distinct purchase days; time in weeks).

``predicted_clv_365d`` = E[repeat purchase days in the next 365 days] × E[spend per
purchase | the customer's repeat spend], undiscounted. Its 90 % interval is the
parameters' sampling uncertainty carried through by the delta method on the log scale (the
observed-information covariance of both fits; the models are fitted separately, so their
parameters are taken as independent). It bounds the *expected* value, not what one
customer will actually spend.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from segwise.predict.btyd import BetaGeo, GammaGamma, fit_bgnbd, fit_gamma_gamma

WEEK = 7.0
Z90 = 1.6448536269514722


@dataclass
class ClvModel:
    bgnbd: BetaGeo
    gamma_gamma: GammaGamma
    scores: pd.DataFrame
    spend_frequency_correlation: float
    backtest: dict | None = None


def inputs(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """BTYD inputs in weeks from customer_rfm columns."""
    return {"x": frame["frequency_repeat"].astype(float).to_numpy(),
            "t_x": frame["recency_btyd_days"].astype(float).to_numpy() / WEEK,
            "T": frame["tenure_days"].astype(float).to_numpy() / WEEK,
            "m": frame["monetary_avg_repeat"].astype(float).to_numpy()}


def _clv(bg: BetaGeo, gg: GammaGamma, d: dict[str, np.ndarray], days: float) -> np.ndarray:
    return bg.expected_purchases(days / WEEK, d["x"], d["t_x"], d["T"]) * \
        gg.expected_spend(d["x"], d["m"])


def _log_sd(bg: BetaGeo, gg: GammaGamma, d: dict[str, np.ndarray], days: float,
            base: np.ndarray, step: float = 1e-4) -> np.ndarray | None:
    """Standard deviation of log CLV from the parameters' covariance (delta method)."""
    if bg.log_cov is None or gg.log_cov is None:
        return None
    log_base = np.log(np.maximum(base, 1e-300))
    variance = np.zeros_like(base)
    for model, cov in ((bg, bg.log_cov), (gg, gg.log_cov)):
        names = list(model.params)
        grads = []
        for name in names:
            bumped = replace(model, **{name: float(np.exp(np.log(model.params[name]) + step))})
            pair = (bumped, gg) if model is bg else (bg, bumped)
            grads.append((np.log(np.maximum(_clv(*pair, d, days), 1e-300)) - log_base) / step)
        g = np.vstack(grads)  # params × customers
        variance += np.einsum("ik,ij,jk->k", g, cov, g)
    return np.sqrt(np.maximum(variance, 0.0))


def fit(frame: pd.DataFrame) -> ClvModel:
    """``frame``: customer_rfm rows (customer_id and the BTYD columns)."""
    d = inputs(frame)
    bg = fit_bgnbd(d["x"], d["t_x"], d["T"])
    gg = fit_gamma_gamma(d["x"], d["m"])
    clv = _clv(bg, gg, d, 365)
    sd = _log_sd(bg, gg, d, 365, clv)
    lower = upper = np.full(len(clv), np.nan)
    if sd is not None:
        lower, upper = clv * np.exp(-Z90 * sd), clv * np.exp(Z90 * sd)
    repeat = (d["x"] > 0) & (d["m"] > 0)
    corr = float(np.corrcoef(d["x"][repeat], d["m"][repeat])[0, 1]) if repeat.sum() > 2 else \
        float("nan")
    scores = pd.DataFrame({
        "customer_id": frame["customer_id"].to_numpy(),
        "expected_orders_90d": bg.expected_purchases(90 / WEEK, d["x"], d["t_x"], d["T"]),
        "p_alive": bg.p_alive(d["x"], d["t_x"], d["T"]),
        "predicted_clv_365d": clv,
        "predicted_clv_365d_lower": lower,
        "predicted_clv_365d_upper": upper,
    })
    return ClvModel(bg, gg, scores, corr)


def backtest(x, t_x, T, actual, horizon_weeks: float) -> dict:
    """Fit BG/NBD on calibration inputs, predict each customer's repeat purchases in the
    next ``horizon_weeks`` and compare with ``actual``, beside the naive baseline (each
    customer repeats at their calibration rate x / T)."""
    x, t_x, T, actual = (np.asarray(v, float) for v in (x, t_x, T, actual))
    bg = fit_bgnbd(x, t_x, T, with_covariance=False)
    predicted = bg.expected_purchases(horizon_weeks, x, t_x, T)
    naive = np.where(T > 0, x / np.maximum(T, 1e-9), 0.0) * horizon_weeks
    return {
        "customers": int(len(x)), "horizon_weeks": float(horizon_weeks),
        "params": {k: float(v) for k, v in bg.params.items()},
        "actual_total": float(actual.sum()), "predicted_total": float(predicted.sum()),
        "naive_total": float(naive.sum()),
        "mae_model": float(np.abs(predicted - actual).mean()),
        "mae_naive": float(np.abs(naive - actual).mean()),
    }


def weekly_curve(bg: BetaGeo, x, t_x, T, holdout_weeks: np.ndarray,
                 weeks: int) -> pd.DataFrame:
    """Cumulative repeat purchases after the calibration end, week by week: the model's
    expectation summed over customers against what happened. ``holdout_weeks``: for each
    repeat purchase in the holdout, the week (1-based) it fell in."""
    x, t_x, T = (np.asarray(v, float) for v in (x, t_x, T))
    expected = [float(bg.expected_purchases(w, x, t_x, T).sum()) for w in range(1, weeks + 1)]
    counts = np.bincount(np.asarray(holdout_weeks, int), minlength=weeks + 1)[1:weeks + 1]
    return pd.DataFrame({"week": range(1, weeks + 1), "predicted_cumulative": expected,
                         "actual_cumulative": np.cumsum(counts)})
