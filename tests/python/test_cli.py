"""The command line: clear errors for user mistakes, non-zero exit when the gate closes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.xdist_group("demo")

SEGWISE = [str(Path(sys.executable).with_name("segwise"))]


def _run(args, env_extra, cwd=None):
    env = dict(os.environ, **env_extra)
    return subprocess.run(SEGWISE + args, env=env, text=True, capture_output=True, cwd=cwd)


def test_unknown_dataset_is_a_clear_error(tmp_path):
    res = _run(["run", "--dataset", "nope"], {"SEGWISE_DUCKDB_PATH": str(tmp_path / "w.duckdb")})
    assert res.returncode != 0
    assert "unknown dataset 'nope'" in res.stderr


def test_missing_shared_data_names_the_path(tmp_path):
    res = _run(["load", "--dataset", "cdnow"], {
        "SEGWISE_DUCKDB_PATH": str(tmp_path / "w.duckdb"),
        "SEGWISE_SHARED_DATA": str(tmp_path / "nowhere")})
    assert res.returncode == 1
    assert "nowhere" in res.stderr and "SEGWISE_SHARED_DATA" in res.stderr


def test_a_landed_run_on_an_empty_warehouse_says_what_to_do(tmp_path):
    res = _run(["run", "--dataset", "landed"], {
        "SEGWISE_DUCKDB_PATH": str(tmp_path / "wh" / "w.duckdb"),
        "SEGWISE_OUTPUT_DIR": str(tmp_path / "out")})
    assert res.returncode == 1, res.stdout + res.stderr
    assert "no raw tables have landed" in " ".join(res.stderr.split())
    assert "Traceback" not in res.stderr


def test_a_landed_run_builds_on_the_raw_tables_and_loads_nothing(demo, tmp_path):
    """`segwise run --dataset landed`: what is in raw (here: the demo warehouse with one
    source dropped, as a business without web tracking) is built, validated and exported
    as it is — nothing generated, nothing loaded, the missing source created empty."""
    settings, _ = demo
    db = tmp_path / "wh" / "segwise.duckdb"
    db.parent.mkdir(parents=True)
    shutil.copy(settings.duckdb_path, db)
    con = duckdb.connect(str(db))
    try:
        con.execute("drop table raw.web_events")
        before = {t: con.execute(f"select count(*) from raw.{t}").fetchall()[0][0]
                  for t in ("orders", "crm_contacts", "email_events")}
    finally:
        con.close()
    res = _run(["run", "--dataset", "landed", "--as-of", "2026-06-30", "--sync-sandboxes"], {
        "SEGWISE_DUCKDB_PATH": str(db), "SEGWISE_OUTPUT_DIR": str(tmp_path / "out"),
        "COLUMNS": "80"})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "raw.web_events has not landed: created empty" in res.stdout
    # an 80-column terminal: every line fits, no header or cell is cut
    assert max(map(len, res.stdout.splitlines())) <= 80
    assert "…" not in res.stdout, [line for line in res.stdout.splitlines() if "…" in line]
    assert "rows quarantined: none" in res.stdout  # the demo data is clean
    segments = res.stdout[res.stdout.index("members (of which holdout)"):]
    assert re.search(r"inactive_90d +[0-9,]+ \([0-9,]+ holdout\)", segments), segments[:2000]
    sync = res.stdout[res.stdout.index("ESP sync (local sandboxes)"):]
    header = sync.splitlines()[1].split()
    assert header == ["destination", "lists", "added", "removed", "rejected", "suppressed",
                      "blocked", "failed"], header
    table = res.stdout[res.stdout.index("models (scoring step"):]
    for model in ("churn", "clv", "clusters"):  # each scored, named in the summary
        assert any(line.split()[:2] == [model, "ok"] for line in table.splitlines()
                   if line.strip()), table[:1500]
    assert (tmp_path / "out" / "report.html").exists()
    assert not (db.parent / "raw").exists()  # nothing generated
    con = duckdb.connect(str(db), read_only=True)
    try:
        after = {t: con.execute(f"select count(*) from raw.{t}").fetchall()[0][0]
                 for t in before}
        web = con.execute("select count(*) from raw.web_events").fetchall()[0][0]
        build = con.execute("select dataset, as_of_date from ops.build_runs "
                            "order by built_at desc limit 1").fetchall()[0]
    finally:
        con.close()
    assert after == before and web == 0
    assert build[0] == "landed" and str(build[1]) == "2026-06-30"
    assert (tmp_path / "out" / "exports" / "file" / "vip_customers" / "members.csv").exists()


def test_bad_as_of_date_is_rejected(tmp_path):
    res = _run(["build", "--as-of", "30/06/1998"], {"SEGWISE_DUCKDB_PATH": str(tmp_path / "w")})
    assert res.returncode != 0
    assert "YYYY-MM-DD" in res.stderr + res.stdout


def test_validate_exits_non_zero_and_export_refuses(demo, tmp_path):
    settings, _ = demo
    db = tmp_path / "wh" / "segwise.duckdb"
    db.parent.mkdir()
    shutil.copy(settings.duckdb_path, db)
    con = duckdb.connect(str(db))
    con.execute("update marts.customer_rfm set r_score = 9")
    con.close()
    env = {"SEGWISE_DUCKDB_PATH": str(db), "SEGWISE_OUTPUT_DIR": str(tmp_path / "out")}
    val = _run(["validate"], env)
    assert val.returncode == 1, val.stdout + val.stderr
    assert "r_score" in val.stderr
    exp = _run(["export"], env)
    assert exp.returncode == 2
    assert "export refused" in exp.stderr
    assert not (tmp_path / "out" / "exports").exists()


def test_segments_diff_and_preview_on_a_built_warehouse(demo, tmp_path):
    settings, _ = demo
    db = tmp_path / "wh" / "segwise.duckdb"
    db.parent.mkdir()
    shutil.copy(settings.duckdb_path, db)
    env = {"SEGWISE_DUCKDB_PATH": str(db), "COLUMNS": "200"}
    same = _run(["segments", "diff", "--exit-code"], env)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "+0 -0" in same.stdout and "~" not in same.stdout

    defs = tmp_path / "defs"
    shutil.copytree(Path(__file__).resolve().parents[2] / "segments", defs)
    value = defs / "value.yml"
    value.write_text(value.read_text().replace("value: 4\n", "value: 3\n", 1))
    changed = _run(["segments", "diff", "vip_customers", "--exit-code", "--definitions",
                    str(defs)], env)
    assert changed.returncode == 3, changed.stdout + changed.stderr
    assert "rule_version" in changed.stdout and "f_score=3 >= 3" in changed.stdout

    preview = _run(["segments", "preview", "vip_customers", "--sample", "2"], env)
    assert preview.returncode == 0, preview.stderr
    con = duckdb.connect(str(db), read_only=True)
    size = con.execute("select count(*) from segments.vip_customers").fetchall()[0][0]
    con.close()
    assert f"vip_customers: {size:,} members" in preview.stdout


def test_segments_validate_reports_file_segment_and_path(tmp_path):
    (tmp_path / "bad.yml").write_text(
        "segments:\n  - name: oops\n    description: d\n    owner: o\n"
        "    rule: {trait: nope, op: '=', value: 1}\n")
    res = _run(["segments", "validate", "--definitions", str(tmp_path)], {})
    assert res.returncode == 1
    assert "segment 'oops' at rule.trait: unknown trait 'nope'" in " ".join(res.stderr.split())


def test_sync_cli_dry_run_then_sync_and_secrets_never_logged(demo, tmp_path):
    from segwise.sync.sandboxes.common import SandboxServer
    from segwise.sync.sandboxes.mailchimp import create_app

    settings, _ = demo
    db = tmp_path / "wh" / "segwise.duckdb"
    db.parent.mkdir()
    shutil.copy(settings.duckdb_path, db)
    key = "s3cr3t-KEY-5f2e9c1d7a-us21"
    with SandboxServer(create_app(key)) as server:
        env = {"SEGWISE_DUCKDB_PATH": str(db), "SEGWISE_MAILCHIMP_API_KEY": key,
               "SEGWISE_MAILCHIMP_URL": server.url, "COLUMNS": "200"}
        dry = _run(["sync", "--segment", "vip_customers", "--dry-run"], env)
        assert dry.returncode == 0, dry.stderr
        assert "would add" in dry.stdout
        assert server.app.state.sandbox.log.summary()["requests"] == 0
        real = _run(["sync", "--segment", "vip_customers"], env)
        assert real.returncode == 0, real.stderr
        assert "succeeded" in real.stdout
        wrong = _run(["sync", "--segment", "at_risk_high_value"],
                     {**env, "SEGWISE_MAILCHIMP_API_KEY": key + "-wrong"})
        assert wrong.returncode != 0 and "API Key Invalid" in wrong.stderr + wrong.stdout
    logs = [real.stdout, real.stderr, dry.stdout, dry.stderr, wrong.stdout, wrong.stderr]
    logs += [p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file()
             and p.suffix in (".log", ".json", ".md", ".txt")]
    assert all(key not in text for text in logs)
    con = duckdb.connect(str(db), read_only=True)
    dump = " ".join(str(r) for r in con.execute("select * from ops.sync_runs").fetchall())
    con.close()
    assert key not in dump


def test_preview_of_a_hostile_definition_runs_as_data_and_writes_nothing(demo, tmp_path):
    """Observation 1 of issue #8, end to end: a value that used to become ``{{ … }}`` after
    validation is previewed (size 0: nobody has that loyalty tier) and no table appears."""
    settings, _ = demo
    db = tmp_path / "wh" / "segwise.duckdb"
    db.parent.mkdir()
    shutil.copy(settings.duckdb_path, db)
    defs = tmp_path / "defs"
    defs.mkdir()
    payload = """{'{ run_query("create table raw.x as select 1") }'}"""
    (defs / "attack.yml").write_text(
        "segments:\n  - name: attack\n    description: d\n    owner: o\n"
        f"    rule: {{trait: loyalty_tier, op: '=', value: {json.dumps(payload)}}}\n")
    env = {"SEGWISE_DUCKDB_PATH": str(db), "COLUMNS": "200"}
    assert _run(["segments", "validate", "--definitions", str(defs)], env).returncode == 0
    before = _tables(db)
    res = _run(["segments", "preview", "attack", "--definitions", str(defs)], env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "attack: 0 members" in res.stdout
    assert _tables(db) == before and "raw.x" not in before


def test_preview_renders_through_a_read_only_connection(demo, tmp_path):
    """Even template code that reached the renderer could not write: dbt opens the
    warehouse read-only for preview and diff."""
    from segwise.segments.preview import render
    from segwise.transform.dbt import DbtError

    settings, _ = demo
    db = tmp_path / "wh" / "segwise.duckdb"
    db.parent.mkdir()
    shutil.copy(settings.duckdb_path, db)
    ro = replace(settings, duckdb_path=db)
    with pytest.raises(DbtError, match="read-only"):
        render(ro, "{{ run_query('create table raw.x as select 1') }} select 1")
    assert "raw.x" not in _tables(db)


def _tables(db: Path) -> set[str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {f"{s}.{t}" for s, t in con.execute(
            "select schema_name, table_name from duckdb_tables()").fetchall()}
    finally:
        con.close()


def test_score_rescores_the_same_marts_into_the_same_clusters(demo_copy):
    """`segwise score` re-runs the models on the marts as built and rebuilds what reads
    them: on unchanged data every customer keeps its cluster (ARI 1 against the first run)."""
    import json

    import pandas as pd

    from conftest import DEMO_AS_OF, query

    scores = "select * exclude (model_run_id) from predictions.customer_churn_scores " \
             "order by customer_id"
    before = query(demo_copy, scores)
    res = _run(["score", "--as-of", DEMO_AS_OF.isoformat()],
               {"SEGWISE_DUCKDB_PATH": str(demo_copy.duckdb_path),
                "SEGWISE_OUTPUT_DIR": str(demo_copy.output_dir)})
    assert res.returncode == 0, res.stderr[-2000:]
    assert [line.split()[:2] for line in res.stdout.splitlines() if line.strip()][-3:] == [
        ["churn", "ok"], ["clv", "ok"], ["clusters", "ok"]]
    runs = query(demo_copy, "select model, metrics_json from ops.model_runs "
                            "where model = 'clusters' order by trained_at")
    assert len(runs) == 3  # the demo's lead-in build, its build, this rescoring
    drift = json.loads(runs["metrics_json"].iloc[-1])["drift"]
    assert drift["adjusted_rand_index"] == 1.0 and set(drift["jaccard"].values()) == {1.0}
    pd.testing.assert_frame_equal(query(demo_copy, scores), before)  # fixed seeds
    built = query(demo_copy, "select count(*) as n from marts.customer_profile p join "
                             "predictions.customer_clusters c on p.customer_id = c.customer_id "
                             "and p.cluster_id = c.cluster_id")
    assert built["n"][0] == len(query(demo_copy, "select * from predictions.customer_clusters"))


def test_an_unexpected_error_is_one_line_and_a_traceback_only_with_debug(demo, tmp_path):
    """A warehouse file that is not a database: one line saying what failed and what to
    do; --debug shows the traceback."""
    bad = tmp_path / "wh" / "segwise.duckdb"
    bad.parent.mkdir()
    bad.write_text("not a database")
    env = {"SEGWISE_DUCKDB_PATH": str(bad), "SEGWISE_OUTPUT_DIR": str(tmp_path / "out")}
    res = _run(["report"], env)
    assert res.returncode == 1
    assert "Traceback" not in res.stderr and res.stderr.startswith("error: ")
    assert "--debug" in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    debug = _run(["--debug", "report"], env)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
