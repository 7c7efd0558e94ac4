"""The dbt project keeps the habits in STYLE.md, checked on the parsed manifest: no
deprecated syntax, every model documented with its grain and its primary key tested
(or an explicit, reasoned exemption), every source with freshness, ESP-facing models
under an enforced contract with an exposure."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from segwise.settings import project_root
from segwise.transform.dbt import dbt_executable

ROOT = project_root()


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    work = tmp_path_factory.mktemp("parse")
    env = dict(os.environ, SEGWISE_DUCKDB_PATH=str(work / "parse.duckdb"),
               DBT_SEND_ANONYMOUS_USAGE_STATS="False")
    res = subprocess.run([dbt_executable(), "parse", "--show-all-deprecations", "--no-partial-parse",
                          "--project-dir", str(ROOT), "--profiles-dir", str(ROOT),
                          "--target-path", str(work / "target"), "--log-path", str(work / "logs")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:]
    return res.stdout, json.loads((work / "target" / "manifest.json").read_text())


def _models(manifest: dict) -> dict[str, dict]:
    return {uid: n for uid, n in manifest["nodes"].items()
            if n["resource_type"] == "model" and n["package_name"] == "segwise"}


def test_no_deprecated_dbt_syntax(parsed):
    out, _ = parsed
    assert "deprecat" not in out.lower(), out[-3000:]


def test_every_model_is_documented_with_its_grain(parsed):
    _, manifest = parsed
    models = _models(manifest)
    assert len(models) > 40
    bad = sorted(n["name"] for n in models.values()
                 if not n["description"].strip().startswith("One row per"))
    assert bad == []


def test_every_model_has_a_tested_primary_key_or_says_why_not(parsed):
    _, manifest = parsed
    tested: dict[str, dict[str, set[str]]] = {}
    for node in manifest["nodes"].values():
        meta = node.get("test_metadata") or {}
        if node["resource_type"] == "test" and meta.get("name") in ("unique", "not_null"):
            for dep in node["depends_on"]["nodes"]:
                tested.setdefault(dep, {}).setdefault(node.get("column_name"), set()).add(
                    meta["name"])
    missing = []
    for uid, node in _models(manifest).items():
        has_pk = any(v >= {"unique", "not_null"} for v in tested.get(uid, {}).values())
        exempt = str(node["config"].get("meta", {}).get("primary_key", "")).startswith("none")
        if not has_pk and not exempt:
            missing.append(node["name"])
    assert missing == []


def test_every_source_declares_freshness(parsed):
    """Every source a system outside segwise loads declares freshness; segwise's own ops
    tables (written when it syncs or erases), its predictions (written by the scoring
    step of the same run) and imported experiments (written by `segwise experiments
    import`) may instead give a reason."""
    _, manifest = parsed
    exempt = [s for s in manifest["sources"].values()
              if (s.get("meta") or s.get("config", {}).get("meta") or {}).get("freshness_exempt")]
    assert {s["source_name"] for s in exempt} == {"segwise_ops", "segwise_predictions",
                                                  "experiments"}
    for source in manifest["sources"].values():
        if source in exempt:
            continue
        assert source.get("loaded_at_field"), source["unique_id"]
        freshness = source.get("freshness") or {}
        assert freshness.get("error_after", {}).get("count"), source["unique_id"]


def test_esp_feed_is_a_public_api(parsed):
    _, manifest = parsed
    feed = next(n for n in _models(manifest).values() if n["name"] == "sync_esp_members")
    assert feed["config"]["contract"]["enforced"] is True
    assert all(c.get("data_type") for c in feed["columns"].values())
    synced_by = {e["name"] for e in manifest["exposures"].values()
                 if feed["unique_id"] in e["depends_on"]["nodes"]}
    assert synced_by == {"mailchimp_sync", "klaviyo_sync", "hubspot_sync", "sendgrid_sync"}


def test_models_the_compiler_and_the_sync_read_have_enforced_contracts(parsed):
    _, manifest = parsed
    models = {n["name"]: n for n in _models(manifest).values()}
    for name in ("customer_profile", "sync_esp_members"):
        node = models[name]
        assert node["config"]["contract"]["enforced"] is True, name
        assert all(c.get("data_type") for c in node["columns"].values()), name


def test_ops_tables_are_defined_once_on_the_ground_floor():
    """Every ops table's DDL lives in segwise.warehouse.OPS_DDL. The two that dbt reads as
    sources are also created by the `create_ops_sources` hook (so a standalone `dbt
    build` works on any engine): its columns must stay those of OPS_DDL, and no other
    module may create an ops table."""
    import re

    import duckdb

    from segwise.warehouse import ensure_ops

    con = duckdb.connect()
    ensure_ops(con)
    columns = {t: [r[0] for r in con.execute(
        "select column_name from information_schema.columns where table_schema = 'ops' "
        "and table_name = ? order by ordinal_position", [t]).fetchall()]
        for t in ("destination_suppressions", "erasure_requests")}
    macro = (project_root() / "macros" / "create_ops_sources.sql").read_text()
    for table, cols in columns.items():
        block = re.search(rf"'{table}': \[(.*?)\]\]", macro, re.S)
        assert block, table
        assert re.findall(r"\['([a-z0-9_]+)',", block.group(1)) == cols, table
    src = project_root() / "src" / "segwise"
    creators = sorted(str(p.relative_to(src)) for p in src.rglob("*.py")
                      if re.search(r"create table if not exists ops\.", p.read_text()))
    assert creators == ["warehouse.py"]


def test_the_raw_contract_is_rendered_into_the_sources_and_the_readme(parsed):
    """One place declares the raw tables: the sources YAML and the README are its
    rendering, current, and dbt sees every contract column with its data_type."""
    from segwise.contract import render
    from segwise.raw_schema import CONTRACT, DATA_TYPES

    assert render(ROOT, check=True) == [], "stale: run `segwise contract render`"
    _, manifest = parsed
    sources = {s["name"]: s for s in manifest["sources"].values()
               if s["package_name"] == "segwise"}
    for table in CONTRACT:
        columns = sources[table.name]["columns"]
        assert {c.name: DATA_TYPES[c.type] for c in table.columns}.items() <= {
            n: c["data_type"] for n, c in columns.items()}.items(), table.name
        assert all(columns[c.name]["description"] for c in table.columns)


def test_raw_row_count_expectations_follow_the_contract():
    """The gate demands rows exactly in the contract's required tables: an optional source
    a business lacks (products, web, email) never fails validation for being empty."""
    from segwise.raw_schema import CONTRACT

    suite = json.loads((ROOT / "expectations" / "raw_inputs.json").read_text())
    (counts,) = [b for b in suite["batches"] if b["name"] == "raw_row_counts"]
    minimum = {e["kwargs"]["column"].removesuffix("_rows"): e["kwargs"]["min_value"]
               for e in counts["expectations"]}
    required = {t.name for t in CONTRACT if t.required}
    assert {t for t, m in minimum.items() if m >= 1} == required


def test_every_column_of_every_built_relation_is_described(demo):
    """dbt docs describe 100 % of the columns: every column of every model, snapshot and
    source table as the built warehouse holds it (not only the ones the YAML declares)."""
    from segwise.warehouse import connect

    settings, _ = demo
    manifest = json.loads((settings.duckdb_path.parent / "dbt_target" / "manifest.json")
                          .read_text())
    with connect(settings, read_only=True) as con:
        built: dict[tuple[str, str], list[str]] = {}
        for schema, table, column in con.execute(
                "select table_schema, table_name, column_name from information_schema.columns "
                "where table_catalog = current_database()").fetchall():
            built.setdefault((schema.lower(), table.lower()), []).append(column.lower())
    nodes = [n for n in [*manifest["nodes"].values(), *manifest["sources"].values()]
             if n["package_name"] == "segwise"
             and n["resource_type"] in ("model", "snapshot", "source")]
    total, undescribed, unbuilt = 0, [], []
    for node in nodes:
        name = (node["identifier"] if node["resource_type"] == "source"
                else node.get("alias") or node["name"])
        relation = (node["schema"].lower(), name.lower())
        if relation not in built:
            unbuilt.append(node["unique_id"])
            continue
        described = {name.lower() for name, col in node["columns"].items()
                     if col.get("description", "").strip()}
        total += len(built[relation])
        undescribed += [f"{node['unique_id']}.{c}" for c in built[relation]
                        if c not in described]
    assert total > 800, total  # every layer was found in the warehouse
    assert not unbuilt, unbuilt
    assert not undescribed, f"{len(undescribed)} of {total} columns undescribed: {undescribed}"


def test_docs_have_an_overview_and_exposures_for_the_report_and_a_dashboard(parsed):
    _, manifest = parsed
    overview = manifest["docs"].get("doc.segwise.__overview__")
    assert overview, "models/overview.md defines no {% docs __overview__ %}"
    for part in ("## The layers", "## Querying segments", "segments.", "staging", "marts"):
        assert part in overview["block_contents"], part
    kinds = {e["name"]: e["type"] for e in manifest["exposures"].values()}
    assert kinds.get("segment_report") == "analysis", kinds
    assert "dashboard" in kinds.values(), kinds
