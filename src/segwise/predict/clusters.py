"""Discovered segments: clusters of customers on RFM and engagement features, with ids that
keep their meaning from run to run, and personas named from the centroids.

Features (customers with a valid order): recency, orders, spend, email opens and clicks
and web sessions in 90 days — each ``log1p``-transformed (all are skewed counts or
amounts), columns without variance dropped, then standardised.

Methods (dbt var ``cluster_method``):

* ``kmeans`` (default): k from ``cluster_k_min``..``cluster_k_max`` by the silhouette on a
  fixed sample of at most 5,000 customers; ``MiniBatchKMeans`` above 200,000 customers.
  When the previous run's k scores within 0.02 of the best, that k is kept and the fit
  starts from the previous centroids (so unchanged data gives the same clusters);
* ``ward``: agglomerative (Ward) on a fixed sample of at most 10,000, k by silhouette;
* ``dbscan``: on the same sample, ``min_samples`` = 2 × features, ``eps`` the 90th
  percentile of the distance to the ``min_samples``-th neighbour; noise is cluster -1.

Ward and DBSCAN assign everyone else to the nearest centroid (DBSCAN: to the cluster of
the nearest core sample within ``eps``, else noise).

**Stable ids**: the new centroids are matched to the previous run's (Hungarian assignment
on the distance between centroids, in this run's standardised space); a matched cluster
keeps its id, an unmatched one takes the next unused id. Without a previous run, ids are
1..k by descending mean spend. **Drift** per run: adjusted Rand index and per-cluster
Jaccard against the previous assignments (customers in both runs), centroid shift.

**Personas** from each centroid's standardised position (z: recency, frequency, spend,
engagement = mean z of the engagement columns present):

1. z(recency) < 0 (more recent than average) and z(engagement) > 0.5 → "Highly engaged recent buyers"
2. z(recency) < 0, z(frequency) > 0.5 and z(spend) > 0.5 → "Loyal high spenders"
3. z(recency) < 0 otherwise → "Recent occasional buyers"
4. z(recency) >= 0 and (z(spend) > 0 or z(frequency) > 0) → "Potential churn risks"
5. otherwise → "Dormant low value"

Two clusters with one persona are told apart by " (2)", " (3)" in descending size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import DBSCAN, AgglomerativeClustering, KMeans, MiniBatchKMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.neighbors import NearestNeighbors

SEED = 11
FEATURES = ["recency_days", "orders_count", "monetary_total", "email_opens_90d",
            "email_clicks_90d", "web_sessions_90d"]
ENGAGEMENT = ["email_opens_90d", "email_clicks_90d", "web_sessions_90d"]
SILHOUETTE_SAMPLE = 5_000
HIERARCHY_SAMPLE = 10_000
MINIBATCH_ABOVE = 200_000
KEEP_K_WITHIN = 0.02


class TooFewCustomers(ValueError):
    """Not enough customers (or no varying feature) to form the clusters asked for."""


@dataclass
class Previous:
    """What the last run left: its k, centroids (log features, unscaled), ids, assignments."""

    k: int
    features: list[str]
    centroids: np.ndarray
    ids: list[int]
    assignments: pd.Series | None = None  # customer_id -> cluster_id


@dataclass
class Clustering:
    method: str  # kmeans | ward | dbscan with its eps and min_samples
    k: int
    features: list[str]
    assignments: pd.DataFrame  # customer_id, cluster_id, cluster_label
    centroids: pd.DataFrame  # cluster_id, label, size, features in original units
    centroids_log: np.ndarray  # per cluster (ordered as ids), log features unscaled
    ids: list[int]
    silhouettes: dict[int, float]
    drift: dict


def _transform(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    logged = np.log1p(frame[FEATURES].astype(float).clip(lower=0).fillna(0.0))
    used = [c for c in FEATURES if logged[c].std(ddof=0) > 1e-12]
    return logged[used], used


def _sample(n: int, size: int) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(SEED).choice(n, size, replace=False))


def _kmeans(k: int, n: int, init=None):
    if n > MINIBATCH_ABOVE:
        return MiniBatchKMeans(n_clusters=k, random_state=SEED, batch_size=4096, n_init=3
                               if init is None else 1, init="k-means++" if init is None
                               else init)
    return KMeans(n_clusters=k, random_state=SEED, n_init=4 if init is None else 1,
                  init="k-means++" if init is None else init)


def _silhouette(z: np.ndarray, labels: np.ndarray, idx: np.ndarray) -> float:
    sub = labels[idx]
    if len(set(sub)) < 2:
        return -1.0
    return float(silhouette_score(z[idx], sub))


def _fit_kmeans(z: np.ndarray, k_range: range, previous_init: np.ndarray | None,
                previous_k: int | None):
    idx = _sample(len(z), SILHOUETTE_SAMPLE)
    scores, labels_by_k, centres_by_k = {}, {}, {}
    for k in k_range:
        if k >= len(z):
            break
        model = _kmeans(k, len(z)).fit(z)
        labels_by_k[k], centres_by_k[k] = model.labels_, model.cluster_centers_
        scores[k] = _silhouette(z, model.labels_, idx)
    if not scores:
        raise TooFewCustomers(f"too few customers ({len(z)}) for {k_range.start} clusters")
    best = max(scores, key=lambda k: (scores[k], -k))
    if previous_k in scores and previous_init is not None \
            and scores[previous_k] >= scores[best] - KEEP_K_WITHIN:
        model = _kmeans(previous_k, len(z), init=previous_init).fit(z)
        return previous_k, model.labels_, model.cluster_centers_, scores
    return best, labels_by_k[best], centres_by_k[best], scores


def _nearest(z: np.ndarray, centres: np.ndarray) -> np.ndarray:
    d = ((z[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    return d.argmin(axis=1)


def _fit_ward(z: np.ndarray, k_range: range):
    idx = _sample(len(z), HIERARCHY_SAMPLE)
    zs = z[idx]
    scores, centres_by_k = {}, {}
    for k in k_range:
        if k >= len(zs):
            break
        lab = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(zs)
        centres_by_k[k] = np.vstack([zs[lab == c].mean(axis=0) for c in range(k)])
        scores[k] = _silhouette(zs, lab, np.arange(len(zs)))
    best = max(scores, key=lambda k: (scores[k], -k))
    return best, _nearest(z, centres_by_k[best]), centres_by_k[best], scores


def _fit_dbscan(z: np.ndarray):
    idx = _sample(len(z), HIERARCHY_SAMPLE)
    zs = z[idx]
    min_samples = 2 * z.shape[1]
    dist, _ = NearestNeighbors(n_neighbors=min(min_samples, len(zs) - 1)).fit(zs).kneighbors(zs)
    eps = float(np.quantile(dist[:, -1], 0.9))
    model = DBSCAN(eps=max(eps, 1e-6), min_samples=min_samples).fit(zs)
    core = model.core_sample_indices_
    if len(core) == 0:
        raise TooFewCustomers("DBSCAN found no core samples")
    nn = NearestNeighbors(n_neighbors=1).fit(zs[core])
    d, j = nn.kneighbors(z)
    labels = np.where(d[:, 0] <= eps, model.labels_[core][j[:, 0]], -1)
    found = sorted(set(labels) - {-1})
    remap = {c: i for i, c in enumerate(found)}
    labels = np.array([remap.get(c, -1) for c in labels])
    centres = np.vstack([z[labels == c].mean(axis=0) for c in range(len(found))])
    clustered = idx[labels[idx] >= 0]  # the silhouette of what it found, noise left out
    score = _silhouette(z, labels, clustered) if len(clustered) else -1.0
    return len(found), labels, centres, {len(found): score}, \
        f"dbscan (eps {eps:.3f}, min_samples {min_samples})"


def _stable_ids(centres_z: np.ndarray, previous_z: np.ndarray | None,
                previous_ids: list[int] | None, spend_order: np.ndarray) -> list[int]:
    k = len(centres_z)
    if previous_z is None or not previous_ids:
        order = list(np.argsort(-spend_order, kind="stable"))
        return [order.index(i) + 1 for i in range(k)]
    cost = ((centres_z[:, None, :] - previous_z[None, :, :]) ** 2).sum(axis=2)
    rows, cols = linear_sum_assignment(cost)
    ids = [0] * k
    for r, c in zip(rows, cols, strict=True):
        ids[r] = previous_ids[c]
    nxt = max(previous_ids) + 1
    for i in range(k):
        if i not in set(rows):
            ids[i] = nxt
            nxt += 1
    return ids


def persona(z: dict[str, float]) -> str:
    rec, freq, spend = z.get("recency_days", 0.0), z.get("orders_count", 0.0), \
        z.get("monetary_total", 0.0)
    eng = [z[c] for c in ENGAGEMENT if c in z]
    engagement = float(np.mean(eng)) if eng else 0.0
    if rec < 0:
        if engagement > 0.5:
            return "Highly engaged recent buyers"
        if freq > 0.5 and spend > 0.5:
            return "Loyal high spenders"
        return "Recent occasional buyers"
    if spend > 0 or freq > 0:
        return "Potential churn risks"
    return "Dormant low value"


def _labels(centres_z: np.ndarray, used: list[str], sizes: np.ndarray) -> list[str]:
    names = [persona(dict(zip(used, c, strict=True))) for c in centres_z]
    out = list(names)
    for name in set(names):
        members = [i for i, n in enumerate(names) if n == name]
        if len(members) > 1:
            for rank, i in enumerate(sorted(members, key=lambda i: -sizes[i]), start=1):
                out[i] = name if rank == 1 else f"{name} ({rank})"
    return out


def drift(previous: Previous | None, assignments: pd.DataFrame, ids: list[int],
          centres_z: np.ndarray, previous_z: np.ndarray | None) -> dict:
    if previous is None or previous.assignments is None or previous.assignments.empty:
        return {"previous_run": False}
    new = assignments.set_index("customer_id")["cluster_id"]
    common = new.index.intersection(previous.assignments.index)
    if len(common) == 0:
        return {"previous_run": True, "common_customers": 0}
    a, b = previous.assignments.loc[common], new.loc[common]
    jaccard = {}
    for cid in sorted(set(a) | set(b)):
        inter = int(((a == cid) & (b == cid)).sum())
        union = int(((a == cid) | (b == cid)).sum())
        jaccard[str(cid)] = inter / union if union else 1.0
    shift = {}
    if previous_z is not None:
        for i, cid in enumerate(ids):
            if cid in previous.ids:
                j = previous.ids.index(cid)
                shift[str(cid)] = float(np.sqrt(((centres_z[i] - previous_z[j]) ** 2).sum()))
    return {"previous_run": True, "common_customers": int(len(common)),
            "adjusted_rand_index": float(adjusted_rand_score(a.to_numpy(), b.to_numpy())),
            "jaccard": jaccard, "centroid_shift": shift}


def fit(frame: pd.DataFrame, method: str = "kmeans", k_min: int = 3, k_max: int = 8,
        previous: Previous | None = None) -> Clustering:
    """``frame``: customer_id and FEATURES, one row per customer with an order."""
    frame = frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
    logged, used = _transform(frame)
    if not used:
        raise TooFewCustomers("no clustering feature varies across customers")
    mean, std = logged.mean().to_numpy(), logged.std(ddof=0).to_numpy()
    z = (logged.to_numpy() - mean) / std
    same_space = previous is not None and previous.features == used
    previous_z = (previous.centroids - mean) / std if same_space else None
    k_range = range(k_min, k_max + 1)
    if method == "kmeans":
        k, labels, centres, scores = _fit_kmeans(
            z, k_range, previous_z, previous.k if same_space else None)
    elif method == "ward":
        k, labels, centres, scores = _fit_ward(z, k_range)
    else:
        k, labels, centres, scores, method = _fit_dbscan(z)
    sizes = np.bincount(labels[labels >= 0], minlength=k)
    spend = centres[:, used.index("monetary_total")] if "monetary_total" in used else -sizes
    ids = _stable_ids(centres, previous_z, previous.ids if same_space else None, spend)
    names = _labels(centres, used, sizes)
    cluster_id = np.array([ids[c] if c >= 0 else -1 for c in labels])
    label = np.array([names[c] if c >= 0 else "Unclustered" for c in labels], dtype=object)
    assignments = pd.DataFrame({"customer_id": frame["customer_id"].to_numpy(),
                                "cluster_id": cluster_id, "cluster_label": label})
    centres_log = centres * std + mean
    centroids = pd.DataFrame(np.expm1(centres_log), columns=used)
    centroids.insert(0, "size", sizes)
    centroids.insert(0, "cluster_label", names)
    centroids.insert(0, "cluster_id", ids)
    return Clustering(method, k, used, assignments, centroids.sort_values("cluster_id"),
                      centres_log, ids, {int(a): float(b) for a, b in scores.items()},
                      drift(previous, assignments, ids, centres, previous_z))
