"""Model cards: one Markdown page per model run, written beside the run report."""

from __future__ import annotations

import json
from pathlib import Path


def _table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return "_none_\n"
    head = "| " + " | ".join(columns) + " |\n| " + " | ".join("---" for _ in columns) + " |\n"
    return head + "".join("| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |\n"
                          for r in rows)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return "" if v is None else str(v)


def _metrics_rows(evaluation: dict[str, dict[str, float]]) -> list[dict]:
    return [{"model": name, **vals} for name, vals in evaluation.items()]


def write(path: Path, run: dict, body: str) -> Path:
    """``run``: the ops.model_runs row as a dict; ``body``: model-specific sections."""
    path.parent.mkdir(parents=True, exist_ok=True)
    features = json.loads(run.get("features_json") or "[]")
    text = (
        f"# Model card — {run['model']}\n\n"
        f"- run: `{run['run_id']}` ({run['status']}), version `{run['version_hash'][:12]}`\n"
        f"- as of: {run['as_of_date']}; training window {run['training_window_start']} … "
        f"{run['training_window_end']}\n"
        f"- rows trained: {run['rows_trained']}, rows scored: {run['rows_scored']}\n"
        + (f"- detail: {run['detail']}\n" if run.get("detail") else "")
        + "\n## Features\n\n" + (", ".join(f"`{f}`" for f in features) or "_none_") + "\n\n"
        + body
    )
    path.write_text(text)
    return path


def churn_body(model, config, dropped: dict[str, str] | None = None) -> str:
    cal = model.calibration
    left_out = "".join(f"- `{f}`: {why}\n" for f, why in (dropped or {}).items())
    return (
        "## Data\n\n"
        f"Point-in-time rows of `features.customer_churn_features`: train cutoffs "
        f"{model.cutoffs.get('train')} ({model.rows['train']} customer-cutoffs, churn rate "
        f"{model.base_rates['train']:.3f}), test cutoff {model.cutoffs.get('test')} "
        f"({model.rows['test']} customers, churn rate {model.base_rates['test']:.3f}, every "
        f"figure below; split at random into halves of {model.rows['first_half']} and "
        f"{model.rows['second_half']} for choosing and calibrating); label: no valid order within "
        f"{config.churn_horizon_days} days after the cutoff. The scoring model is the "
        f"ranking model these figures describe, calibrated on the whole test cutoff; it "
        f"scores the {model.rows['score']} customers at {model.cutoffs.get('score')}.\n\n"
        + ("Features left out (their source does not cover every cutoff):\n\n"
           + left_out + "\n" if left_out else "")
        + "## Metrics (whole test cutoff; trained on the train cutoffs)\n\n"
        + _table(_metrics_rows(model.evaluation), ["model", "roc_auc", "pr_auc", "brier", "ece"])
        + f"\nChosen: **{model.chosen}** (higher ROC-AUC on the first half), calibrated "
        f"with **{cal['method']}**; the calibrated row is cross-fitted (a calibrator fitted "
        "on each half predicts the other).\n\n"
        "## Calibration (whole test cutoff, cross-fitted)\n\n"
        f"Brier {cal['uncalibrated']['brier']:.4f} → {cal['calibrated']['brier']:.4f}; "
        f"expected calibration error {cal['uncalibrated']['ece']:.4f} → "
        f"{cal['calibrated']['ece']:.4f}.\n\n"
        + _table(cal["table_calibrated"], ["bin", "rows", "mean_predicted", "observed_rate"])
        + "\n## Risk bands\n\n"
        f"high: p >= {config.churn_band_high}; medium: p >= {config.churn_band_medium}; "
        "else low.\n\n"
        "## Limitations\n\n"
        "- Customers without a valid order are not scored (churn needs a purchase history).\n"
        "- Trained on earlier cutoffs and checked on the next: when the base rate moves "
        "between them (seasons), the ranking holds up better than the level, which is why "
        "the calibration uses the newest labelled period.\n"
        "- Engagement features are zero where a business lands no email or web data.\n"
    )


def clv_body(model) -> str:
    bg, gg = model.bgnbd, model.gamma_gamma
    back = model.backtest
    return (
        "## Data\n\n"
        f"`marts.customer_rfm` BTYD columns (distinct purchase days; weeks): {bg.customers} "
        f"customers, {gg.customers} repeat buyers for the spend model.\n\n"
        "## Parameters (maximum likelihood)\n\n"
        + _table([{"model": "BG/NBD", **bg.params, "log_likelihood": bg.log_likelihood}],
                 ["model", "r", "alpha", "a", "b", "log_likelihood"])
        + "\n" + _table([{"model": "Gamma-Gamma", **gg.params,
                          "log_likelihood": gg.log_likelihood}],
                        ["model", "p", "q", "gamma", "log_likelihood"])
        + f"\nCorrelation of repeat frequency and mean repeat spend (Gamma-Gamma assumes none):"
        f" {model.spend_frequency_correlation:.3f}.\n\n"
        "## Backtest (in this warehouse)\n\n"
        + (_table([back], ["calibration_end", "customers", "horizon_weeks", "actual_total",
                           "predicted_total", "naive_total", "mae_model", "mae_naive"])
           if back else "_not enough history for a backtest_\n")
        + "\n## Limitations\n\n"
        "- `predicted_clv_365d` is undiscounted spend in the order currency; the interval "
        "covers parameter uncertainty only (the expected value), not one customer's outcome.\n"
        "- BG/NBD assumes a stationary purchase rate while alive; one-off promotions and "
        "subscriptions break it.\n"
    )


def clusters_body(result) -> str:
    rows = result.centroids.to_dict("records")
    cols = ["cluster_id", "cluster_label", "size", *result.features]
    sil = [{"k": k, "silhouette": v} for k, v in sorted(result.silhouettes.items())]
    d = result.drift
    rounded = {name: json.dumps({k: round(v, 3) for k, v in d.get(name, {}).items()})
               for name in ("jaccard", "centroid_shift")}
    drift_text = ("_first run: nothing to compare_\n" if not d.get("previous_run") else
                  f"adjusted Rand index {d.get('adjusted_rand_index', float('nan')):.4f} on "
                  f"{d.get('common_customers')} customers in both runs; Jaccard per cluster "
                  f"{rounded['jaccard']}; centroid shift {rounded['centroid_shift']}\n")
    return (
        f"## Method\n\n{result.method}, k = {result.k} "
        "(features log1p-transformed and standardised; see segwise.predict.clusters).\n\n"
        "## Centroids (original units) and personas\n\n" + _table(rows, cols)
        + "\n## Silhouette by k\n\n" + _table(sil, ["k", "silhouette"])
        + "\n## Drift against the previous run\n\n" + drift_text
        + "\n## Limitations\n\n- Personas are named by fixed rules on the centroids; a "
        "cluster near a rule's threshold can change name when the data moves.\n"
    )
