"""Churn figures on a real data set at several as-of dates (rolling-origin time splits).

For each as-of date the whole pipeline runs in a fresh warehouse (`segwise run` with
`--as-of`), and the churn model's ROC-AUC and Brier score on its test cutoff (as-of − H)
are printed beside the recency-only baseline's. One split can be hard for reasons of the
calendar (UCI Online Retail's last test horizon is September–December, the peak season,
where occasional buyers come back); the rolling splits show how much of a figure is the
model and how much is the date. Not a test: it prints figures.

    .venv/bin/python scripts/churn_time_splits.py --dataset online_retail \
        --as-of 2011-10-09 2011-11-09 2011-12-09
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from datetime import date
from pathlib import Path

from segwise.pipeline import run
from segwise.report.summary import latest_model_runs
from segwise.settings import Settings
from segwise.warehouse import connect

DEFAULT_AS_OF = {"online_retail": ["2011-10-09", "2011-11-09", "2011-12-09"],
                 "cdnow": ["1998-04-30", "1998-05-31", "1998-06-30"]}


def churn_metrics(settings: Settings) -> dict:
    with connect(settings) as con:
        runs = {r["model"]: r for r in latest_model_runs(con)}
    churn = runs.get("churn")
    if churn is None or churn["status"] != "ok":
        raise SystemExit(f"churn model: {churn and churn['status']}: {churn and churn['detail']}")
    return churn["metrics"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="online_retail", choices=sorted(DEFAULT_AS_OF))
    parser.add_argument("--as-of", nargs="+", type=date.fromisoformat)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    dates = args.as_of or [date.fromisoformat(d) for d in DEFAULT_AS_OF[args.dataset]]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="segwise-churn-splits-"))
    print(f"{'as of':<12}{'test cutoff':<13}{'chosen':<22}{'ROC-AUC':>8}{'calibr.':>9}"
          f"{'baseline':>9}{'ratio':>7}{'Brier':>8}{'base Br.':>9}")
    for as_of in dates:
        folder = work / str(as_of)
        settings = replace(Settings.from_env(), duckdb_path=folder / "wh" / "segwise.duckdb",
                           output_dir=folder / "output")
        run(settings, dataset=args.dataset, as_of=as_of, say=lambda _m: None)
        m = churn_metrics(settings)
        chosen, calibrated = m["test"][m["chosen"]], m["test"][f"{m['chosen']}_calibrated"]
        base = m["test"]["recency_only_baseline"]
        print(f"{as_of!s:<12}{m['cutoffs']['test']:<13}{m['chosen']:<22}"
              f"{chosen['roc_auc']:>8.3f}{calibrated['roc_auc']:>9.3f}{base['roc_auc']:>9.3f}"
              f"{chosen['roc_auc'] / base['roc_auc']:>7.3f}{calibrated['brier']:>8.3f}"
              f"{base['brier']:>9.3f}")


if __name__ == "__main__":
    main()
