"""The scoring step: between the marts and the segment views, on any engine.

Reads ``features.customer_churn_features``, ``marts.customer_rfm`` and
``marts.customer_engagement``, fits the three model families, replaces the
``predictions`` tables, records each model run in ``ops.model_runs`` and writes a model
card per model under ``<output>/model_cards/``. A model that cannot be trained (too little
history, a fit that fails) is recorded with status ``skipped`` or ``failed`` and its table
is emptied — its traits are null rather than stale — and the other models still run: a
bad model never fails the build.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from segwise.ops import utcnow
from segwise.predict import btyd, cards, churn, clusters, clv
from segwise.predict.tables import ModelSettings, contract, read_frame, replace_table
from segwise.settings import Settings
from segwise.warehouse import connect, ensure_ops

Say = Callable[[str], None]
CARDS_DIR = "model_cards"


@dataclass
class ModelRun:
    model: str
    status: str = "ok"
    detail: str | None = None
    features: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    rows_trained: int = 0
    rows_scored: int = 0
    window: tuple[date | None, date | None] = (None, None)
    body: str = ""


def version_hash(modules: list, params: dict) -> str:
    h = hashlib.sha256()
    for module in modules:
        h.update(inspect.getsource(module).encode())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    return h.hexdigest()


class Inputs:
    """What the models read, each relation scanned once per scoring run however many
    models use it (rows in one engine-independent order)."""

    def __init__(self, con) -> None:
        self.con = con

    @cached_property
    def features(self) -> pd.DataFrame:
        return read_frame(self.con, "select * from features.customer_churn_features",
                          order=["cutoff_date", "customer_id"])

    @cached_property
    def customers(self) -> pd.DataFrame:
        """customer_rfm with the engagement columns the clusters use."""
        return read_frame(self.con, "select rfm.*, e.email_opens_90d, e.email_clicks_90d, "
                                    "e.web_sessions_90d from marts.customer_rfm rfm "
                                    "left join marts.customer_engagement e "
                                    "on rfm.customer_id = e.customer_id", order=["customer_id"])


def _window(frame: pd.DataFrame, as_of: date) -> tuple[date | None, date]:
    """From the first purchase of anyone in ``frame`` to the as-of date."""
    first = pd.to_datetime(frame["first_order_date"]).min() if len(frame) else None
    return (first.date() if first is not None and not pd.isna(first) else None, as_of)


def _as_of(con) -> date:
    rows = con.execute("select max(cutoff_date) from features.customer_churn_features "
                       "where split = 'score'").fetchall()
    value = rows[0][0] if rows else None
    if value is None:
        from segwise.ops import last_build

        found = last_build(con)
        value = found[0] if found and found[0] else utcnow().date()
    return pd.Timestamp(value).date()


def _churn(inputs: Inputs, config: ModelSettings, as_of: date) -> tuple[ModelRun, pd.DataFrame]:
    run = ModelRun("churn",
                   params={"horizon_days": config.churn_horizon_days,
                           "band_high": config.churn_band_high,
                           "band_medium": config.churn_band_medium,
                           "candidates": {n: str(e) for n, e in churn.candidates().items()},
                           "seed": churn.SEED})
    frame = inputs.features
    run.features, dropped = churn.covered_features(frame)
    run.params["features_dropped"] = dropped
    model = churn.fit(frame, run.features)
    scores = model.scores
    scores["churn_risk_band"] = churn.risk_band(scores["churn_probability"],
                                                config.churn_band_high,
                                                config.churn_band_medium)
    run.metrics = {"chosen": model.chosen, "test": model.evaluation,
                   "calibration": {k: v for k, v in model.calibration.items()},
                   "base_rates": model.base_rates, "cutoffs": model.cutoffs}
    run.rows_trained, run.rows_scored = model.rows["train"] + model.rows["test"], len(scores)
    run.window = (date.fromisoformat(model.cutoffs["train"].split(", ")[0]), as_of)
    run.body = cards.churn_body(model, config, dropped)
    out = scores.assign(as_of_date=as_of)[["customer_id", "as_of_date", "churn_probability",
                                           "churn_risk_band"]]
    return run, out


def _clv_backtest(inputs: Inputs, horizon_days: int) -> dict | None:
    """BG/NBD calibrated at the test cutoff (as-of − H) predicts purchase days in the H
    days up to the as-of date, against the naive repeat-rate baseline."""
    frame = inputs.features[inputs.features["split"] == "test"]
    if len(frame) < 10:
        return None
    x = frame["purchase_days"].to_numpy(float) - 1
    T = frame["tenure_days"].to_numpy(float) / clv.WEEK
    t_x = T - frame["recency_days"].to_numpy(float) / clv.WEEK
    try:
        out = clv.backtest(x, t_x, T, frame["purchase_days_after"].to_numpy(float),
                           horizon_days / clv.WEEK)
    except btyd.FitError:
        return None
    return {"calibration_end": str(pd.Timestamp(frame["cutoff_date"].iloc[0]).date()), **out}


def _clv(inputs: Inputs, config: ModelSettings, as_of: date) -> tuple[ModelRun, pd.DataFrame]:
    run = ModelRun("clv", features=["frequency_repeat", "recency_btyd_days", "tenure_days",
                                    "monetary_avg_repeat"],
                   params={"time_unit_days": clv.WEEK, "horizons_days": [90, 365],
                           "interval": "90% delta method on log CLV"})
    frame = inputs.customers
    model = clv.fit(frame)
    model.backtest = _clv_backtest(inputs, config.churn_horizon_days)
    run.metrics = {"bgnbd": {**model.bgnbd.params, "log_likelihood": model.bgnbd.log_likelihood},
                   "gamma_gamma": {**model.gamma_gamma.params,
                                   "log_likelihood": model.gamma_gamma.log_likelihood},
                   "spend_frequency_correlation": model.spend_frequency_correlation,
                   "backtest": model.backtest}
    run.rows_trained = run.rows_scored = len(frame)
    run.window = _window(frame, as_of)
    run.body = cards.clv_body(model)
    out = model.scores.assign(as_of_date=as_of)
    return run, out[["customer_id", "as_of_date", "expected_orders_90d", "p_alive",
                     "predicted_clv_365d", "predicted_clv_365d_lower",
                     "predicted_clv_365d_upper"]]


def _previous_clusters(con) -> clusters.Previous | None:
    rows = con.execute("select params_json from ops.model_runs where model = 'clusters' and "
                       "status = 'ok' order by trained_at desc limit 1").fetchall()
    if not rows:
        return None
    params = json.loads(rows[0][0])
    state = params.get("state")
    if not state:
        return None
    assigned = read_frame(con, "select customer_id, cluster_id from predictions.customer_clusters")
    series = assigned.set_index("customer_id")["cluster_id"].astype(int) if len(assigned) \
        else None
    return clusters.Previous(state["k"], state["features"], np.array(state["centroids_log"]),
                             state["ids"], series)


def _clusters(inputs: Inputs, config: ModelSettings,
              as_of: date) -> tuple[ModelRun, pd.DataFrame]:
    frame = inputs.customers
    previous = _previous_clusters(inputs.con)
    result = clusters.fit(frame, config.cluster_method, config.cluster_k_min,
                          config.cluster_k_max, previous)
    run = ModelRun("clusters", features=result.features,
                   params={"method": config.cluster_method, "k_min": config.cluster_k_min,
                           "k_max": config.cluster_k_max, "seed": clusters.SEED,
                           "state": {"k": result.k, "features": result.features,
                                     "centroids_log": result.centroids_log.tolist(),
                                     "ids": [int(i) for i in result.ids]}})
    run.metrics = {"k": result.k, "silhouette": result.silhouettes, "drift": result.drift,
                   "sizes": {str(r["cluster_id"]): int(r["size"])
                             for r in result.centroids.to_dict("records")}}
    run.rows_trained = run.rows_scored = len(frame)
    run.window = _window(frame, as_of)
    run.body = cards.clusters_body(result)
    out = result.assignments.assign(as_of_date=as_of)
    return run, out[["customer_id", "as_of_date", "cluster_id", "cluster_label"]]


MODELS = {
    "churn": (_churn, "customer_churn_scores", [churn]),
    "clv": (_clv, "customer_clv", [clv, btyd]),
    "clusters": (_clusters, "customer_clusters", [clusters]),
}
EXPECTED = (churn.NotEnoughHistory, btyd.FitError, clusters.TooFewCustomers)


def _record(con, run_id: str, run: ModelRun, as_of: date, card: Path, modules: list) -> dict:
    row = {"run_id": run_id, "model": run.model, "status": run.status, "detail": run.detail,
           "version_hash": version_hash(modules, {k: v for k, v in run.params.items()
                                                  if k != "state"}),
           "trained_at": utcnow(), "as_of_date": as_of,
           "training_window_start": run.window[0], "training_window_end": run.window[1],
           "features_json": json.dumps(run.features),
           "params_json": json.dumps(run.params, default=str),
           "metrics_json": json.dumps(run.metrics, default=_json_default),
           "rows_trained": int(run.rows_trained), "rows_scored": int(run.rows_scored),
           "card_path": str(card)}
    con.insert_frame("ops.model_runs", pd.DataFrame([row]))
    return row


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)


def score(settings: Settings, say: Say = print, models: tuple[str, ...] = tuple(MODELS),
          overrides: dict | None = None) -> list[dict]:
    """Run the scoring step; returns the ops.model_runs rows it recorded."""
    config = ModelSettings.from_project(settings.project_dir, overrides)
    run_id = uuid.uuid4().hex[:12]
    recorded = []
    with connect(settings) as con:
        ensure_ops(con)
        as_of = _as_of(con)
        inputs = Inputs(con)
        for name in models:
            build, table, modules = MODELS[name]
            try:
                run, out = build(inputs, config, as_of)
            except EXPECTED as exc:
                run, out = ModelRun(name, status="skipped", detail=str(exc)), None
            except Exception as exc:  # noqa: BLE001 - recorded; the other models still run
                run, out = ModelRun(name, status="failed",
                                    detail=f"{type(exc).__name__}: {exc}"), None
            if out is None:
                out = pd.DataFrame(columns=[c for c, _ in contract(settings.project_dir)[table]])
            else:
                out = out.assign(model_run_id=run_id)
            replace_table(con, settings.project_dir, table, out)
            card = settings.output_dir / CARDS_DIR / f"{name}.md"
            row = _record(con, run_id, run, as_of, card, modules)
            cards.write(card, row, run.body)
            recorded.append(row)
            say(f"  {name}: {run.status}" + (f" — {run.detail}" if run.detail else
                                             f", {run.rows_scored:,} customers scored"))
    return recorded

