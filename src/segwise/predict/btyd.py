"""Buy-till-you-die models fitted by maximum likelihood: BG/NBD (Fader, Hardie & Lee 2005,
"Counting Your Customers the Easy Way") for repeat purchases and P(alive), Gamma-Gamma
(Fader, Hardie & Lee 2005, "RFM and CLV") for the spend per repeat purchase.

Inputs per customer, in one time unit (segwise uses weeks, as the literature does):
``x`` repeat purchases (distinct purchase days after the first), ``t_x`` time from the
first to the last purchase, ``T`` time from the first purchase to the end of the
calibration period, and for Gamma-Gamma ``m`` the mean spend of the repeat purchases.

The likelihoods are the published closed forms, maximised with ``scipy.optimize`` over
log-parameters; identical ``(x, t_x, T)`` rows are grouped with weights first, so a fit
at a million customers costs a few thousand distinct rows. DECISIONLOG.md records why
this is not ``lifetimes`` or ``pymc-marketing`` (both measured against it).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import optimize, special


class FitError(RuntimeError):
    """The likelihood could not be maximised (too few customers or repeat buyers)."""


def _grouped(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.groupby(keys, sort=False).size().rename("weight").reset_index()


def _minimise(nll, start: np.ndarray) -> optimize.OptimizeResult:
    best = None
    for method in ("L-BFGS-B", "Nelder-Mead"):
        res = optimize.minimize(nll, start, method=method,
                                options={"maxiter": 20_000} if method == "Nelder-Mead" else {})
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
        if res.success:
            start = res.x
    if best is None:
        raise FitError("the likelihood is not finite anywhere the optimiser looked")
    return best


def _hessian(f, x: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of ``f`` at ``x`` (for the parameter covariance)."""
    n = len(x)
    h = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            ei, ej = np.eye(n)[i] * step, np.eye(n)[j] * step
            v = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * step**2)
            h[i, j] = h[j, i] = v
    return h


def _covariance(nll, log_params: np.ndarray) -> np.ndarray | None:
    """Covariance of the log-parameters from the observed information (None when the
    Hessian is not positive definite: no interval rather than a wrong one)."""
    try:
        cov = np.linalg.inv(_hessian(nll, log_params))
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(cov)) or np.any(np.linalg.eigvalsh((cov + cov.T) / 2) <= 0):
        return None
    return (cov + cov.T) / 2


def _draws(model, n: int, seed: int) -> list:
    """Parameter sets drawn from the MLE's asymptotic normal (log scale); none without a
    covariance."""
    if model.log_cov is None:
        return []
    names = list(model.params)
    mean = np.log([model.params[k] for k in names])
    rng = np.random.default_rng(seed)
    return [replace(model, **dict(zip(names, np.exp(p), strict=True)))
            for p in rng.multivariate_normal(mean, model.log_cov, size=n)]


@dataclass(frozen=True)
class BetaGeo:
    """A fitted BG/NBD model: r, alpha (purchase rate Gamma), a, b (dropout Beta)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int
    log_cov: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def params(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}

    def p_alive(self, x, t_x, T) -> np.ndarray:
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        return 1.0 / (1.0 + _odds_dead(r, alpha, a, b, x, t_x, T))

    def expected_purchases(self, t: float, x, t_x, T) -> np.ndarray:
        """E[X(T, T + t) | x, t_x, T]: repeat purchases expected in the next ``t``."""
        return _conditional_expectation(self.r, self.alpha, self.a, self.b, t, x, t_x, T)

    def expected_purchases_new(self, t) -> np.ndarray:
        """E[X(t)] for a customer just acquired (the unconditional curve)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        t = np.asarray(t, dtype=float)
        z = t / (alpha + t)
        return ((a + b - 1) / (a - 1)) * (
            1 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a + b - 1, z))

    def draws(self, n: int, seed: int) -> list[BetaGeo]:
        return _draws(self, n, seed)


def _odds_dead(r, alpha, a, b, x, t_x, T) -> np.ndarray:
    """delta(x>0) * a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x), computed in logs."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds = (np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                    + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)))
    return np.where(x > 0, np.exp(np.minimum(log_odds, 700)), 0.0)


def _conditional_expectation(r, alpha, a, b, t, x, t_x, T) -> np.ndarray:
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    z = t / (alpha + T + t)
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
    head = (a + b + x - 1) / (a - 1)
    body = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp
    return head * body / (1 + _odds_dead(r, alpha, a, b, x, t_x, T))


def _bgnbd_nll(log_params: np.ndarray, x, t_x, T, w) -> float:
    r, alpha, a, b = np.exp(log_params)
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = (special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b)
          - special.gammaln(a + b + x))
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                      - (r + x) * np.log(alpha + t_x), -np.inf)
    ll = a1 + a2 + np.logaddexp(a3, a4)
    value = -np.sum(w * ll)
    return float(value) if np.isfinite(value) else 1e300


def fit_bgnbd(x, t_x, T, with_covariance: bool = True) -> BetaGeo:
    frame = pd.DataFrame({"x": np.asarray(x, float), "t_x": np.asarray(t_x, float),
                          "T": np.asarray(T, float)})
    if len(frame) < 10 or (frame["x"] > 0).sum() < 5:
        raise FitError(f"BG/NBD needs at least 10 customers and 5 repeat buyers, got "
                       f"{len(frame)} customers, {(frame['x'] > 0).sum()} repeat buyers")
    if ((frame["t_x"] > frame["T"]) | (frame["t_x"] < 0) | (frame["x"] < 0)).any():
        raise FitError("BG/NBD inputs must satisfy 0 <= t_x <= T and x >= 0")
    g = _grouped(frame, ["x", "t_x", "T"])
    args = (g["x"].to_numpy(), g["t_x"].to_numpy(), g["T"].to_numpy(), g["weight"].to_numpy())
    nll = lambda p: _bgnbd_nll(p, *args)  # noqa: E731
    res = _minimise(nll, np.zeros(4))
    cov = _covariance(nll, res.x) if with_covariance else None
    r, alpha, a, b = np.exp(res.x)
    return BetaGeo(r, alpha, a, b, -res.fun, len(frame), cov)


@dataclass(frozen=True)
class GammaGamma:
    """A fitted Gamma-Gamma spend model: p, q, gamma."""

    p: float
    q: float
    gamma: float
    log_likelihood: float
    customers: int
    log_cov: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def params(self) -> dict[str, float]:
        return {"p": self.p, "q": self.q, "gamma": self.gamma}

    @property
    def population_mean(self) -> float:
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else float("nan")

    def expected_spend(self, x, m) -> np.ndarray:
        """E[M | x, m]: the expected spend per future purchase (population mean for
        customers without a repeat purchase)."""
        x, m = np.asarray(x, float), np.asarray(m, float)
        with np.errstate(invalid="ignore", divide="ignore"):
            cond = self.p * (self.gamma + x * m) / (self.p * x + self.q - 1)
        return np.where(x > 0, cond, self.population_mean)

    def draws(self, n: int, seed: int) -> list[GammaGamma]:
        return _draws(self, n, seed)


def _gg_nll(log_params: np.ndarray, x, m, w) -> float:
    p, q, gamma = np.exp(log_params)
    px = p * x
    ll = (special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q)
          + q * np.log(gamma) + (px - 1) * np.log(m) + px * np.log(x)
          - (px + q) * np.log(gamma + m * x))
    value = -np.sum(w * ll)
    return float(value) if np.isfinite(value) else 1e300


def fit_gamma_gamma(x, m, with_covariance: bool = True) -> GammaGamma:
    """Fitted on repeat buyers only (``x > 0`` and ``m > 0``); others are ignored."""
    frame = pd.DataFrame({"x": np.asarray(x, float), "m": np.asarray(m, float)})
    frame = frame[(frame["x"] > 0) & (frame["m"] > 0)]
    if len(frame) < 5:
        raise FitError(f"Gamma-Gamma needs at least 5 repeat buyers with spend, got {len(frame)}")
    g = _grouped(frame, ["x", "m"])
    args = (g["x"].to_numpy(), g["m"].to_numpy(), g["weight"].to_numpy())
    nll = lambda v: _gg_nll(v, *args)  # noqa: E731
    res = _minimise(nll, np.zeros(3))
    cov = _covariance(nll, res.x) if with_covariance else None
    p, q, gamma = np.exp(res.x)
    return GammaGamma(p, q, gamma, -res.fun, len(frame), cov)


def summarise(transactions: pd.DataFrame, customer: str, when: str, amount: str,
              calibration_end: pd.Timestamp, unit_days: float = 7.0,
              observation_end: pd.Timestamp | None = None) -> pd.DataFrame:
    """Per-customer BTYD inputs from a transactions frame, on distinct purchase days:
    ``x``, ``t_x``, ``T`` (in units of ``unit_days``), ``m`` (mean spend of the repeat
    purchase days) and, when ``observation_end`` is given, ``x_holdout``: the purchase days
    after the calibration end up to it. Customers whose first purchase is after the
    calibration end are left out (they were not yet customers)."""
    tx = transactions[[customer, when, amount]].copy()
    tx[when] = pd.to_datetime(tx[when]).dt.normalize()
    days = tx.groupby([customer, when], as_index=False)[amount].sum()
    first = days.groupby(customer)[when].min().rename("first")
    days = days.join(first, on=customer)
    days = days[days["first"] <= calibration_end]
    cal = days[days[when] <= calibration_end]
    repeat = cal[cal[when] > cal["first"]]
    out = pd.DataFrame({"first": cal.groupby(customer)["first"].min()})
    out["x"] = repeat.groupby(customer).size().reindex(out.index, fill_value=0).astype(float)
    last = cal.groupby(customer)[when].max()
    out["t_x"] = (last - out["first"]).dt.days / unit_days
    out["T"] = (calibration_end - out["first"]).dt.days / unit_days
    out["m"] = repeat.groupby(customer)[amount].mean().reindex(out.index, fill_value=0.0)
    if observation_end is not None:
        hold = days[(days[when] > calibration_end) & (days[when] <= observation_end)]
        out["x_holdout"] = hold.groupby(customer).size().reindex(out.index, fill_value=0)
    return out.drop(columns="first")
