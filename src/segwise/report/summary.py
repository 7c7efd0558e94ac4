"""The run summary: what was loaded, quarantined, built, validated and exported."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from segwise.ops import list_segments
from segwise.settings import Settings
from segwise.warehouse import connect, table_exists


@dataclass
class RunSummary:
    dataset: str
    as_of: str | None
    rows_loaded: dict[str, int] = field(default_factory=dict)
    quarantined: list[tuple[str, str, int]] = field(default_factory=list)
    segment_sizes: dict[str, int] = field(default_factory=dict)
    # segments that cannot apply to this data (their inputs are empty), with why
    segments_not_applicable: dict[str, str] = field(default_factory=dict)
    validation_success: bool | None = None
    validation_failures: list[str] = field(default_factory=list)
    validation_not_applicable: list[str] = field(default_factory=list)
    data_docs: str | None = None
    exports: list[dict] = field(default_factory=list)
    export_refused: str | None = None
    syncs: list[dict] = field(default_factory=list)
    # the scoring step's latest run per model: status, headline metric, model card
    models: list[dict] = field(default_factory=list)
    report_path: str | None = None


def collect_warehouse_facts(settings: Settings, summary: RunSummary) -> None:
    with connect(settings, read_only=True) as con:
        summary.quarantined = [tuple(r) for r in con.execute(
            "select source_table, reason, rows_quarantined from quarantine.quarantine_summary "
            "order by source_table, reason").fetchall()]
        summary.models = latest_model_runs(con)
        names = list_segments(con)
        summary.segment_sizes = {
            n: con.execute(f'select count(*) from segments."{n}"').fetchall()[0][0] for n in names
        }


def latest_model_runs(con) -> list[dict]:
    """The newest ops.model_runs row per model: its metrics and a one-line headline."""
    if not table_exists(con, "ops", "model_runs"):
        return []
    rows = con.execute(
        "select model, status, detail, rows_scored, metrics_json, card_path from ("
        "select *, row_number() over (partition by model order by trained_at desc) as n "
        "from ops.model_runs) as r where n = 1 order by model").fetchall()
    out = []
    for m, st, d, n, mj, card in rows:
        metrics = json.loads(mj or "{}")
        out.append({"model": m, "status": st, "detail": d, "rows_scored": n,
                    "metrics": metrics, "headline": _headline(m, metrics), "card": card})
    return out


def _headline(model: str, metrics: dict) -> str:
    if model == "churn" and metrics.get("chosen"):
        got = metrics["test"].get(f"{metrics['chosen']}_calibrated", {})
        base = metrics["test"].get("recency_only_baseline", {})
        return (f"{metrics['chosen']}: ROC-AUC {got.get('roc_auc', 0):.3f} (recency only "
                f"{base.get('roc_auc', 0):.3f}), Brier {got.get('brier', 0):.3f}")
    if model == "clv" and metrics.get("bgnbd"):
        back = metrics.get("backtest") or {}
        text = "BG/NBD " + ", ".join(f"{k} {metrics['bgnbd'][k]:.3f}"
                                      for k in ("r", "alpha", "a", "b"))
        if back:
            text += f"; backtest MAE {back['mae_model']:.3f} (naive {back['mae_naive']:.3f})"
        return text
    if model == "clusters" and metrics.get("k"):
        ari = (metrics.get("drift") or {}).get("adjusted_rand_index")
        return f"k = {metrics['k']}" + (f", ARI vs previous run {ari:.3f}" if ari is not None
                                        else "")
    return ""


def write_report(summary: RunSummary, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "run_report.md"
    summary.report_path = str(path)
    lines = [f"# segwise run — dataset `{summary.dataset}`, as of {summary.as_of or 'now'}", ""]
    lines += ["## Rows loaded", "", "| table | rows |", "|---|---:|"]
    lines += [f"| {t} | {n:,} |" for t, n in summary.rows_loaded.items()]
    lines += ["", "## Rows quarantined", "", "| source table | reason | rows |", "|---|---|---:|"]
    lines += [f"| {t} | {r} | {n:,} |" for t, r, n in summary.quarantined] or ["| – | – | 0 |"]
    lines += ["", "## Segment sizes", "", "| segment | members |", "|---|---:|"]
    lines += [f"| {s} | {n:,}"
              + (f" (not applicable: {summary.segments_not_applicable[s]})"
                 if s in summary.segments_not_applicable else "") + " |"
              for s, n in summary.segment_sizes.items()]
    if summary.models:
        lines += ["", "## Models (scoring step)", "", "| model | status | customers | headline "
                  "| model card |", "|---|---|---:|---|---|"]
        lines += [f"| {m['model']} | {m['status']} | {m['rows_scored'] or 0:,} | "
                  f"{m['headline'] or m['detail'] or ''} | {m['card'] or ''} |"
                  for m in summary.models]
    verdict = {True: "passed", False: "FAILED", None: "not run"}[summary.validation_success]
    lines += ["", f"## Validation: {verdict}", ""]
    lines += [f"- failed: {f}" for f in summary.validation_failures]
    lines += [f"- not applicable: {f}" for f in summary.validation_not_applicable]
    if summary.data_docs:
        lines += [f"- Data Docs: {summary.data_docs}"]
    lines += ["", "## Export", ""]
    if summary.export_refused:
        lines += [f"Refused: {summary.export_refused}"]
    lines += [f"- {e['segment']}: {e['members']:,} members (+{e['added']:,} / -{e['removed']:,})"
              f" → {e['path']}" for e in summary.exports]
    if summary.syncs:
        lines += ["", "## ESP sync (local sandboxes)", "",
                  "| destination | segment | mode | status | added | removed | rejected | "
                  "suppressed | requests |",
                  "|---|---|---|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {x['destination']} | {x['segment']} | {x.get('mode', '')} | "
                  f"{x['status']} | {x['added']} | {x['removed']} | {x['rejected']} | "
                  f"{x['suppressed']} | {x.get('requests', 0)} |"
                  for x in summary.syncs]
    path.write_text("\n".join(lines) + "\n")
    (out_dir / "run_report.json").write_text(json.dumps(summary.__dict__, indent=2, default=str))
    return path
