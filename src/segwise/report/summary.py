"""The run summary: what was loaded, quarantined, built, validated and exported."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from segwise.ops import list_segments
from segwise.report.format import members_text
from segwise.settings import Settings
from segwise.warehouse import connect, table_exists


@dataclass
class RunSummary:
    dataset: str
    as_of: str | None
    rows_loaded: dict[str, int] = field(default_factory=dict)
    quarantined: list[tuple[str, str, int]] = field(default_factory=list)
    segment_sizes: dict[str, int] = field(default_factory=dict)  # members, holdout included
    segment_holdouts: dict[str, int] = field(default_factory=dict)  # of them, in the holdout
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
    # measurement: the latest scorecard row per segment, and the cohort retention grid
    scorecard: list[dict] = field(default_factory=list)
    cohorts: list[dict] = field(default_factory=list)
    report_path: str | None = None
    html_report: str | None = None


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
        if table_exists(con, "segmentation", "segment_sizes"):
            summary.segment_holdouts = dict(con.execute(
                "select segment_name, holdout_members from segmentation.segment_sizes"
            ).fetchall())
        summary.scorecard = _records(con, "measurement", "segment_scorecard", (
            "select * from measurement.segment_scorecard where computed_at = "
            "(select max(computed_at) from measurement.segment_scorecard) "
            "order by segment_name"))
        summary.cohorts = _records(con, "measurement", "cohort_retention", (
            "select cohort_month, months_since_acquisition, cohort_customers, "
            "retention_rate from measurement.cohort_retention "
            "order by cohort_month, months_since_acquisition"))


def _records(con, schema: str, table: str, sql: str) -> list[dict]:
    if not table_exists(con, schema, table):
        return []
    frame = con.execute(sql).df()
    return [{k: (None if not isinstance(v, str) and pd.isna(v) else v) for k, v in row.items()}
            for row in frame.to_dict("records")]


def _interval(value, low, high) -> str:  # noqa: ANN001
    if value is None:
        return "–"
    return f"{100 * value:+.1f} pp [{100 * low:+.1f}, {100 * high:+.1f}]" if low is not None \
        else f"{100 * value:+.1f} pp"


def _scorecard_lines(rows: list[dict]) -> list[str]:
    lines = ["", "## Segment scorecard", "",
             "Conversion lift in the window after entering a segment, treatment against the "
             "holdout and against the universal control group (95 % Newcombe intervals, "
             "measurement.segment_scorecard); contamination: holdout members emailed anyway.",
             "", "| segment | members | holdout lift | contamination | universal control lift "
             "| last campaign | open rate | verdict |", "|---|---:|---|---:|---|---|---:|---|"]
    for r in rows:
        verdict = ("does not work" if r["is_campaign_not_working"] else
                   "works" if (r["holdout_lift_lower"] or 0) > 0 else
                   "inconclusive" if r["holdout_lift"] is not None else "no holdout")
        contamination = r["holdout_contamination"]
        opens = r["last_campaign_open_rate"]
        holdout, universal = (_interval(*(r[f"{p}_lift{end}"] for end in ("", "_lower", "_upper")))
                              for p in ("holdout", "universal_control"))
        lines.append(
            f"| {r['segment_name']} | {r['members']:,} | {holdout} | "
            f"{'–' if contamination is None else f'{100 * contamination:.0f} %'} | {universal} | "
            f"{r['last_campaign_id'] or '–'} | {'–' if opens is None else f'{100 * opens:.1f} %'}"
            f" | {verdict} |")
    return lines


def _cohort_lines(rows: list[dict], months: int = 6, cohorts: int = 12) -> list[str]:
    grid: dict = {}
    for r in rows:
        grid.setdefault(r["cohort_month"], {"size": r["cohort_customers"]})[
            r["months_since_acquisition"]] = r["retention_rate"]
    lines = ["", "## Cohort retention", "",
             "Share of each monthly acquisition cohort (first valid order) ordering again "
             "k months later (measurement.cohort_retention; the latest cohorts).", "",
             "| cohort | customers | " + " | ".join(f"m{k}" for k in range(months + 1)) + " |",
             "|---|---:|" + "---:|" * (months + 1)]
    for month in sorted(grid)[-cohorts:]:
        cells = grid[month]
        lines.append(f"| {str(month)[:7]} | {cells['size']:,} | " + " | ".join(
            f"{100 * cells[k]:.0f} %" if k in cells else "" for k in range(months + 1)) + " |")
    return lines


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
    lines += [f"| {t} | {r} | {n:,} |" for t, r, n in summary.quarantined] or ["| none | | |"]
    lines += ["", "## Segment sizes", "", "| segment | members (of which holdout) |",
              "|---|---:|"]
    lines += [f"| {s} | "
              + (f"n/a — cannot apply to this data set: {summary.segments_not_applicable[s]}"
                 if s in summary.segments_not_applicable
                 else members_text(n, summary.segment_holdouts.get(s, 0))) + " |"
              for s, n in summary.segment_sizes.items()]
    if summary.models:
        lines += ["", "## Models (scoring step)", "", "| model | status | customers | headline "
                  "| model card |", "|---|---|---:|---|---|"]
        lines += [f"| {m['model']} | {m['status']} | {m['rows_scored'] or 0:,} | "
                  f"{m['headline'] or m['detail'] or ''} | {m['card'] or ''} |"
                  for m in summary.models]
    if summary.scorecard:
        lines += _scorecard_lines(summary.scorecard)
    if summary.cohorts:
        lines += _cohort_lines(summary.cohorts)
    verdict = {True: "passed", False: "FAILED", None: "not run"}[summary.validation_success]
    lines += ["", f"## Validation: {verdict}", ""]
    lines += [f"- failed: {f}" for f in summary.validation_failures]
    lines += [f"- not applicable: {f}" for f in summary.validation_not_applicable]
    if summary.data_docs:
        lines += [f"- Data Docs: {summary.data_docs}"]
    lines += ["", "## Export", ""]
    if summary.export_refused:
        lines += [f"Refused: {summary.export_refused}"]
    lines += ["Exported: the members that may be pushed — holdout members and members "
              "without consent or email are not.", ""] if summary.exports else []
    lines += [f"- {e['segment']}: {e['members']:,} exported (+{e['added']:,} / "
              f"-{e['removed']:,}) → {e['path']}" for e in summary.exports]
    if summary.syncs:
        lines += ["", "## ESP sync (local sandboxes)", "",
                  "| destination | segment | mode | status | added | removed | rejected | "
                  "suppressed | requests |",
                  "|---|---|---|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {x['destination']} | {x['segment']} | {x.get('mode', '')} | "
                  f"{x['status']} | {x['added']:,} | {x['removed']:,} | {x['rejected']:,} | "
                  f"{x['suppressed']:,} | {x.get('requests', 0):,} |"
                  for x in summary.syncs]
    path.write_text("\n".join(lines) + "\n")
    (out_dir / "run_report.json").write_text(json.dumps(summary.__dict__, indent=2, default=str))
    return path
