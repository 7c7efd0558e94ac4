"""The segment report: one self-contained HTML file (``segwise report``; every ``segwise
run`` and the DAG write it too).

Charts are Vega-Lite specs built with Altair and rendered in the page by vega-embed, whose
runtime (Vega, Vega-Lite, vega-embed: about 0.9 MB) is inlined from vl-convert's bundle.
Nothing is fetched: no CDN script, style, font or image, and vega-embed's action menu (whose
links go to the Vega editor) is off. Data comes from the warehouse only, so the report of
a run can be rewritten at any time from what the run left there."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import yaml

from segwise.report.format import count, members_text, percent
from segwise.settings import Settings
from segwise.warehouse import connect, table_exists

REPORT_NAME = "report.html"
alt.data_transformers.disable_max_rows()


@cache
def _runtime() -> str:
    import vl_convert

    return vl_convert.javascript_bundle()


def _frame(con, schema: str, table: str, sql: str) -> pd.DataFrame:
    """The query's result, or an empty frame when the relation is not in this warehouse
    (a build that stopped early, a model that does not run on this engine)."""
    if not table_exists(con, schema, table):
        return pd.DataFrame()
    return con.execute(sql).df()


@dataclass
class ReportData:
    generated_at: str
    alert_pct: float
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)

    def get(self, name: str) -> pd.DataFrame:
        return self.frames.get(name, pd.DataFrame())


QUERIES: dict[str, tuple[str, str, str]] = {
    # name: (schema, relation that must exist, sql)
    "sizes": ("segmentation", "segment_sizes",
              "select s.segment_name, s.priority, s.members, s.holdout_members, s.min_size, "
              "s.is_activatable, c.description from segmentation.segment_sizes s "
              "left join segmentation.segment_catalog c on s.segment_name = c.segment_name "
              "order by s.priority, s.segment_name"),
    "size_history": ("segmentation", "segment_size_history",
                     "select segment_name, computed_at, members, size_delta_pct, is_alert "
                     "from segmentation.segment_size_history order by computed_at"),
    "overlap": ("segmentation", "segment_overlap",
                "select segment_a, segment_b, shared_members, share_of_a "
                "from segmentation.segment_overlap"),
    "rfm": ("marts", "customer_rfm",
            "select r_score, f_score, rfm_segment, count(*) as customers "
            "from marts.customer_rfm group by r_score, f_score, rfm_segment"),
    "engagement": ("marts", "customer_engagement",
                   "select engagement_tier, count(*) as customers "
                   "from marts.customer_engagement group by engagement_tier"),
    "lifecycle": ("marts", "customer_profile",
                  "select lifecycle_stage, count(*) as customers "
                  "from marts.customer_profile group by lifecycle_stage"),
    "quarantine": ("quarantine", "quarantine_summary",
                   "select source_table, reason, rows_quarantined "
                   "from quarantine.quarantine_summary order by source_table, reason"),
    "quarantine_history": ("quarantine", "quarantine_history",
                           "select source_table, computed_at, sum(rows_quarantined) as rows "
                           "from quarantine.quarantine_history "
                           "group by source_table, computed_at order by computed_at"),
    "validation": ("ops", "validation_results",
                   "select suite, batch, expectation, column_name, success, expected, "
                   "observed, detail, validated_at from ops.validation_results where run_id = "
                   "(select run_id from ops.validation_runs order by validated_at desc "
                   "limit 1) order by suite, batch, expectation, column_name"),
    "syncs": ("ops", "sync_runs",
              "select destination, segment_name, status, guard_outcome, mode, "
              "succeeded_adds, succeeded_removes, rejected_adds, suppressed, requests, "
              "finished_at from (select *, row_number() over (partition by destination, "
              "segment_name order by started_at desc) as n from ops.sync_runs) as r "
              "where n = 1 order by destination, segment_name"),
    "churn": ("staging", "stg_segwise_predictions__customer_churn_scores",
              "select churn_probability from "
              "staging.stg_segwise_predictions__customer_churn_scores"),
    "clv": ("staging", "stg_segwise_predictions__customer_clv",
            "select predicted_clv_365d from staging.stg_segwise_predictions__customer_clv"),
    "clusters": ("staging", "stg_segwise_predictions__customer_clusters",
                 "select cluster_label, count(*) as customers from "
                 "staging.stg_segwise_predictions__customer_clusters group by cluster_label"),
    "scorecard": ("measurement", "segment_scorecard",
                  "select * from measurement.segment_scorecard where computed_at = "
                  "(select max(computed_at) from measurement.segment_scorecard) "
                  "order by segment_name"),
    "experiments": ("measurement", "experiment_lift",
                    "select experiment_id, arm, control_arm, metric, absolute_lift, "
                    "absolute_lift_lower, absolute_lift_upper, p_value from "
                    "measurement.experiment_lift where dimension = 'all' and metric_kind = "
                    "'proportion' and experiment_id not like '%@%' "
                    "order by experiment_id, metric, arm"),
    "cohorts": ("measurement", "cohort_retention",
                "select cohort_month, months_since_acquisition, cohort_customers, "
                "retention_rate from measurement.cohort_retention"),
    "models": ("ops", "model_runs",
               "select model, status, detail, rows_scored, metrics_json, card_path, "
               "trained_at from (select *, row_number() over (partition by model order by "
               "trained_at desc) as n from ops.model_runs) as r where n = 1 order by model"),
}


def _alert_pct(settings: Settings) -> float:
    project = yaml.safe_load((settings.project_dir / "dbt_project.yml").read_text())
    return float(project.get("vars", {}).get("segment_size_alert_pct", 0))


def collect(settings: Settings) -> ReportData:
    data = ReportData(generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                      alert_pct=_alert_pct(settings))
    with connect(settings, read_only=True) as con:
        for name, (schema, table, sql) in QUERIES.items():
            data.frames[name] = _frame(con, schema, table, sql)
    return data


# ---- charts: each a Vega-Lite spec and the marks the browser test expects in its SVG


@dataclass
class Chart:
    name: str
    title: str
    spec: dict
    marks: tuple[str, ...]  # Vega mark types the rendered SVG must contain
    note: str = ""


def _spec(chart: alt.TopLevelMixin) -> dict:
    return chart.properties(width="container").to_dict()


def _iso(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    out = frame.copy()
    for c in columns:
        out[c] = pd.to_datetime(out[c]).dt.strftime("%Y-%m-%dT%H:%M:%S")
    return out


def _histogram(values: pd.Series, bins: int = 20) -> pd.DataFrame:
    values = values.dropna().astype(float)
    counts, edges = np.histogram(values, bins=bins)
    return pd.DataFrame({"start": edges[:-1], "end": edges[1:], "customers": counts})


def charts(data: ReportData) -> list[Chart]:  # noqa: C901 - one block per chart
    out: list[Chart] = []
    hist = data.get("size_history")
    if not hist.empty:
        hist = _iso(hist, "computed_at")
        base = alt.Chart(hist).encode(
            x=alt.X("computed_at:T", title="run", axis=alt.Axis(format="%Y-%m-%d %H:%M")),
            color=alt.Color("segment_name:N", title="segment",
                            scale=alt.Scale(scheme="category20")))
        lines = base.mark_line(point=True).encode(
            y=alt.Y("members:Q", title="members (holdout included)"),
            tooltip=["segment_name", "computed_at", "members", "size_delta_pct"])
        alerts = alt.Chart(hist[hist["is_alert"].astype(bool)]).mark_point(
            shape="triangle-up", size=160, color="#c0392b", filled=True).encode(
            x="computed_at:T", y="members:Q", tooltip=["segment_name", "size_delta_pct"])
        out.append(Chart("size_history", "Segment sizes over time", _spec(lines + alerts),
                         ("line", "symbol"),
                         f"Red triangles: a size alert (moved more than {data.alert_pct:g} % "
                         "since the previous run, or grew from 0)."))
        change = hist.dropna(subset=["size_delta_pct"])
        if not change.empty:
            band = pd.DataFrame({"pct": [data.alert_pct, -data.alert_pct]})
            points = alt.Chart(change).mark_circle(size=60).encode(
                x=alt.X("computed_at:T", title="run", axis=alt.Axis(format="%Y-%m-%d %H:%M")),
                y=alt.Y("size_delta_pct:Q", title="size change since previous run (%)"),
                color=alt.Color("segment_name:N", title="segment",
                                scale=alt.Scale(scheme="category20")),
                tooltip=["segment_name", "computed_at", "size_delta_pct"])
            rules = alt.Chart(band).mark_rule(color="#c0392b", strokeDash=[4, 4]).encode(
                y="pct:Q")
            out.append(Chart("size_change", "Size change per run against the alert threshold",
                             _spec(points + rules), ("symbol", "rule"),
                             f"Dashed lines: the alert threshold, ±{data.alert_pct:g} %."))
    overlap = data.get("overlap")
    if not overlap.empty:
        base = alt.Chart(overlap).encode(
            x=alt.X("segment_b:N", title="also in"), y=alt.Y("segment_a:N", title="members of"))
        cells = base.mark_rect().encode(
            color=alt.Color("share_of_a:Q", title="share", scale=alt.Scale(scheme="blues")),
            tooltip=["segment_a", "segment_b", "shared_members",
                     alt.Tooltip("share_of_a:Q", format=".1%")])
        labels = base.mark_text(fontSize=9).encode(text=alt.Text("share_of_a:Q", format=".0%"))
        out.append(Chart("overlap", "Segment overlap", _spec(cells + labels), ("rect", "text"),
                         "Share of the row segment's members that are also in the column "
                         "segment (holdouts included)."))
    rfm = data.get("rfm")
    if not rfm.empty:
        base = alt.Chart(rfm).encode(
            x=alt.X("f_score:O", title="frequency score"),
            y=alt.Y("r_score:O", title="recency score", sort="descending"))
        cells = base.mark_rect().encode(
            color=alt.Color("rfm_segment:N", title="RFM group"),
            tooltip=["rfm_segment", "r_score", "f_score", "customers"])
        labels = base.mark_text(fontSize=10).encode(text="customers:Q")
        out.append(Chart("rfm_grid", "R×F grid", _spec(cells + labels), ("rect", "text"),
                         "Customers per recency and frequency score, coloured by the named "
                         "RFM group (the rfm_segment_map seed)."))
    for name, column, title in (("engagement", "engagement_tier", "Engagement tiers"),
                                ("lifecycle", "lifecycle_stage", "Lifecycle stages")):
        frame = data.get(name)
        if not frame.empty:
            bars = alt.Chart(frame).mark_bar().encode(
                x=alt.X("customers:Q"), y=alt.Y(f"{column}:N", sort="-x", title=None),
                tooltip=[column, "customers"])
            out.append(Chart(name, title, _spec(bars), ("rect",)))
    quarantine = data.get("quarantine")
    if not quarantine.empty:
        bars = alt.Chart(quarantine).mark_bar().encode(
            x=alt.X("sum(rows_quarantined):Q", title="rows quarantined"),
            y=alt.Y("source_table:N", title=None), color=alt.Color("reason:N"),
            tooltip=["source_table", "reason", "rows_quarantined"])
        out.append(Chart("quarantine", "Quarantine by table and reason", _spec(bars),
                         ("rect",)))
    trend = data.get("quarantine_history")
    if not trend.empty:
        lines = alt.Chart(_iso(trend, "computed_at")).mark_line(point=True).encode(
            x=alt.X("computed_at:T", title="build"), y=alt.Y("rows:Q", title="rows quarantined"),
            color=alt.Color("source_table:N", title="table"),
            tooltip=["source_table", "computed_at", "rows"])
        out.append(Chart("quarantine_trend", "Quarantine per build", _spec(lines),
                         ("line", "symbol")))
    syncs = data.get("syncs")
    if not syncs.empty:
        base = alt.Chart(syncs).encode(x=alt.X("destination:N", title=None),
                                       y=alt.Y("segment_name:N", title=None))
        cells = base.mark_rect().encode(
            color=alt.Color("status:N", scale=alt.Scale(
                domain=["succeeded", "blocked", "failed", "partial"],
                range=["#27ae60", "#e67e22", "#c0392b", "#f1c40f"])),
            tooltip=["destination", "segment_name", "status", "guard_outcome",
                     "succeeded_adds", "succeeded_removes", "rejected_adds", "suppressed"])
        labels = base.mark_text(fontSize=9).encode(text="succeeded_adds:Q")
        out.append(Chart("sync_status", "Sync status per destination and segment",
                         _spec(cells + labels), ("rect", "text"),
                         "Latest sync of each segment to each destination; the number is the "
                         "members added."))
    for name, column, title, axis in (
            ("churn", "churn_probability", "Churn probability", "churn probability"),
            ("clv", "predicted_clv_365d", "Predicted CLV (365 days)", "predicted CLV")):
        frame = data.get(name)
        if not frame.empty:
            bars = alt.Chart(_histogram(frame[column])).mark_bar().encode(
                x=alt.X("start:Q", bin="binned", title=axis), x2="end:Q",
                y=alt.Y("customers:Q"), tooltip=["start", "end", "customers"])
            out.append(Chart(name, f"{title} distribution", _spec(bars), ("rect",)))
    clusters = data.get("clusters")
    if not clusters.empty:
        bars = alt.Chart(clusters).mark_bar().encode(
            x="customers:Q", y=alt.Y("cluster_label:N", sort="-x", title=None),
            tooltip=["cluster_label", "customers"])
        out.append(Chart("clusters", "Cluster personas", _spec(bars), ("rect",)))
    lift = _lift_rows(data)
    if not lift.empty:
        base = alt.Chart(lift).encode(y=alt.Y("label:N", title=None))
        bars = base.mark_rule(strokeWidth=2).encode(
            x=alt.X("lower:Q", title="conversion lift (percentage points)"), x2="upper:Q")
        points = base.mark_point(filled=True, size=70).encode(
            x="lift:Q", color=alt.Color("verdict:N"),
            tooltip=["label", "lift", "lower", "upper", "verdict"])
        zero = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(strokeDash=[3, 3]).encode(x="x:Q")
        out.append(Chart("lift", "Holdout lift with 95 % intervals", _spec(bars + points + zero),
                         ("rule", "symbol"),
                         "Treatment minus holdout conversion in the window after entering a "
                         "segment (Newcombe intervals); imported experiments: each arm "
                         "against its control."))
    cohorts = data.get("cohorts")
    if not cohorts.empty:
        grid = _iso(cohorts, "cohort_month")
        grid["cohort"] = grid["cohort_month"].str[:7]
        base = alt.Chart(grid).encode(
            x=alt.X("months_since_acquisition:O", title="months since acquisition"),
            y=alt.Y("cohort:O", title="cohort"))
        cells = base.mark_rect().encode(
            color=alt.Color("retention_rate:Q", title="retention",
                            scale=alt.Scale(scheme="greens")),
            tooltip=["cohort", "months_since_acquisition", "cohort_customers",
                     alt.Tooltip("retention_rate:Q", format=".1%")])
        out.append(Chart("cohorts", "Cohort retention", _spec(cells), ("rect",),
                         "Share of each monthly acquisition cohort ordering again k months "
                         "later."))
    return out


def _lift_rows(data: ReportData) -> pd.DataFrame:
    rows = []
    card = data.get("scorecard")
    for r in card.to_dict("records") if not card.empty else []:
        if pd.notna(r.get("holdout_lift")) and pd.notna(r.get("holdout_lift_lower")):
            rows.append({"label": r["segment_name"], "lift": 100 * r["holdout_lift"],
                         "lower": 100 * r["holdout_lift_lower"],
                         "upper": 100 * r["holdout_lift_upper"]})
    exp = data.get("experiments")
    for r in exp[exp["metric"] == "converted"].to_dict("records") if not exp.empty else []:
        if pd.notna(r["absolute_lift_lower"]):
            rows.append({"label": f"{r['experiment_id']}: {r['arm']} vs {r['control_arm']}",
                         "lift": 100 * r["absolute_lift"],
                         "lower": 100 * r["absolute_lift_lower"],
                         "upper": 100 * r["absolute_lift_upper"]})
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["verdict"] = np.where(frame["lower"] > 0, "works",
                                    np.where(frame["upper"] < 0, "harms", "inconclusive"))
    return frame


# ---- tables


def _table(headers: list[str], rows: list[list], numeric: set[int] = frozenset()) -> str:
    if not rows:
        return '<p class="none">none</p>'
    head = "".join(f"<th{' class=num' if i in numeric else ''}>{html.escape(h)}</th>"
                   for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{' class=num' if i in numeric else ''}>"
                         f"{html.escape('' if v is None else str(v))}</td>"
                         for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _na(value) -> bool:  # noqa: ANN001
    return value is None or (not isinstance(value, str) and pd.isna(value))


def not_applicable_segments(validation: pd.DataFrame) -> dict[str, str]:
    """Segments whose size expectation could not apply to this data set, with why (their
    inputs are empty): told apart from a segment that is merely empty today."""
    if validation.empty:
        return {}
    rows = validation[(validation["suite"] == "segments") & validation["success"].isna()
                      & validation["column_name"].notna()]
    return dict(zip(rows["column_name"], rows["detail"], strict=True))


def _sizes_table(data: ReportData) -> str:
    sizes = data.get("sizes")
    na = not_applicable_segments(data.get("validation"))
    rows = []
    for r in sizes.to_dict("records") if not sizes.empty else []:
        members = members_text(r["members"], r["holdout_members"])
        state = (f"not applicable: {na[r['segment_name']]}" if r["segment_name"] in na
                 else "empty" if r["members"] == 0
                 else "activatable" if r["is_activatable"] else f"below min size {r['min_size']:,}")
        rows.append([r["segment_name"], members, state, r["description"] or ""])
    return _table(["segment", "members (of which holdout)", "state", "description"], rows, {1})


def _validation_table(data: ReportData) -> str:
    val = data.get("validation")
    rows = [[{True: "pass", False: "FAIL"}.get(None if _na(r["success"]) else bool(r["success"]),
                                               "n/a"),
             f"{r['suite']}.{r['batch']}", r["expectation"].removeprefix("expect_"),
             r["column_name"] or "", r["expected"] or "", r["observed"] or "",
             r["detail"] or ""]
            for r in (val.to_dict("records") if not val.empty else [])]
    return _table(["result", "batch", "expectation", "column", "expected", "observed",
                   "detail"], rows)


def _sync_table(data: ReportData) -> str:
    syncs = data.get("syncs")
    rows = [[r["destination"], r["segment_name"], r["mode"], r["status"],
             count(r["succeeded_adds"]), count(r["succeeded_removes"]),
             count(r["rejected_adds"]), count(r["suppressed"]), r["guard_outcome"] or ""]
            for r in (syncs.to_dict("records") if not syncs.empty else [])]
    return _table(["destination", "segment", "mode", "status", "added", "removed",
                   "rejected", "suppressed", "guard"], rows, {4, 5, 6, 7})


def _quarantine_table(data: ReportData) -> str:
    q = data.get("quarantine")
    rows = [[r["source_table"], r["reason"], count(r["rows_quarantined"])]
            for r in (q.to_dict("records") if not q.empty else [])]
    return _table(["source table", "reason", "rows"], rows, {2})


def _models_html(data: ReportData) -> str:
    models = data.get("models")
    if models.empty:
        return '<p class="none">none (the scoring step has not run)</p>'
    from segwise.report.summary import _headline

    parts = []
    for r in models.to_dict("records"):
        metrics = json.loads(r["metrics_json"] or "{}")
        card = Path(r["card_path"]) if r["card_path"] else None
        text = card.read_text() if card and card.exists() else ""
        parts.append(
            f"<details><summary><b>{html.escape(r['model'])}</b> — {html.escape(r['status'])}, "
            f"{count(r['rows_scored'] or 0)} customers scored. "
            f"{html.escape(_headline(r['model'], metrics) or r['detail'] or '')}</summary>"
            f"<pre>{html.escape(text or json.dumps(metrics, indent=2, default=str))}</pre>"
            "</details>")
    return "".join(parts)


def _scorecard_table(data: ReportData) -> str:
    card = data.get("scorecard")
    rows = []
    for r in card.to_dict("records") if not card.empty else []:
        lift = r["holdout_lift"]
        rows.append([r["segment_name"], count(r["members"]),
                     "–" if _na(lift) else f"{100 * lift:+.1f} pp [{100 * r['holdout_lift_lower']:+.1f},"
                     f" {100 * r['holdout_lift_upper']:+.1f}]",
                     "–" if _na(r["holdout_contamination"])
                     else percent(r["holdout_contamination"]),
                     "does not work" if r["is_campaign_not_working"] else ""])
    return _table(["segment", "members", "holdout lift (95 %)", "contamination", "verdict"],
                  rows, {1})


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:16px 28px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c8cdd6}nav{padding:8px 28px;background:#e9ecf1}
nav a{margin-right:14px;color:#1d4ed8;text-decoration:none}
main{padding:8px 28px 40px;max-width:1200px}section{background:#fff;border:1px solid #dde1e8;
border-radius:6px;padding:12px 18px;margin:16px 0}h2{font-size:17px;margin:4px 0 10px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:16px}
figure{margin:0}figure .vis{width:100%}figcaption{font-size:12px;color:#5b6475;margin-top:4px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;
padding:4px 8px;border-bottom:1px solid #eceff3;vertical-align:top}th{background:#f1f3f6}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}.none{color:#5b6475}
pre{white-space:pre-wrap;font-size:12px;background:#f6f7f9;padding:8px}
.FAIL{color:#c0392b;font-weight:600}
"""

SCRIPT = """
const charts = JSON.parse(document.getElementById('segwise-charts').textContent);
Promise.allSettled(charts.map(c => vegaEmbed('#vis-' + c.name, c.spec,
    {renderer: 'svg', actions: false}).then(() => {
      document.getElementById('vis-' + c.name).dataset.rendered = 'yes';
    }))).then(results => {
  results.filter(r => r.status === 'rejected').forEach(r => console.error(r.reason));
  document.body.dataset.chartsDone = String(results.length);
});
"""


def render(data: ReportData, title: str) -> str:
    chart_list = charts(data)
    by_name = {c.name: c for c in chart_list}

    def figure(*names: str) -> str:
        parts = []
        for n in names:
            c = by_name.get(n)
            if c:
                parts.append(f'<figure data-chart="{c.name}" data-marks="{",".join(c.marks)}">'
                             f"<h3>{html.escape(c.title)}</h3>"
                             f'<div class="vis" id="vis-{c.name}"></div>'
                             f"<figcaption>{html.escape(c.note)}</figcaption></figure>")
        return f'<div class="grid">{"".join(parts)}</div>' if parts else ""

    val = data.get("validation")
    failed = int((val["success"] == False).sum()) if not val.empty else 0  # noqa: E712
    verdict = ("not run" if val.empty else "passed" if failed == 0
               else f"FAILED ({failed} expectations)")
    sections = [
        ("segments", "Segments", _sizes_table(data) + figure("size_history", "size_change",
                                                             "overlap")),
        ("customers", "Customers", figure("rfm_grid", "engagement", "lifecycle")),
        ("quarantine", "Quarantine", _quarantine_table(data)
         + figure("quarantine", "quarantine_trend")),
        ("validation", f"Validation: {verdict}",
         "<p>Every expectation of the latest validation run, with what it expected and what "
         "it saw (Data Docs hold the same results; this report needs no network).</p>"
         + _validation_table(data)),
        ("sync", "Sync", _sync_table(data) + figure("sync_status")),
        ("models", "Models", _models_html(data) + figure("churn", "clv", "clusters")),
        ("measurement", "Measurement", _scorecard_table(data) + figure("lift", "cohorts")),
    ]
    nav = "".join(f'<a href="#{key}">{html.escape(label.split(":")[0])}</a>'
                  for key, label, _ in sections)
    body = "".join(f'<section id="{key}"><h2>{html.escape(label)}</h2>{content}</section>'
                   for key, label, content in sections)
    payload = json.dumps([{"name": c.name, "spec": c.spec} for c in chart_list],
                         default=str).replace("</", "<\\/")
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        # nothing may load from elsewhere: the page's own policy says so too
        "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; "
        "script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
        "img-src data:; font-src data:\">"
        f"<title>{html.escape(title)}</title><style>{CSS}</style>"
        f"<script>{_runtime()}</script></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>generated {data.generated_at}</p></header>"
        f"<nav>{nav}</nav><main>{body}</main>"
        f'<script type="application/json" id="segwise-charts">{payload}</script>'
        f"<script>{SCRIPT}</script></body></html>")


def write_html_report(settings: Settings, title: str = "segwise segment report",
                      out_dir: Path | None = None) -> Path:
    out_dir = out_dir or settings.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_NAME
    path.write_text(render(collect(settings), title), encoding="utf-8")
    return path
