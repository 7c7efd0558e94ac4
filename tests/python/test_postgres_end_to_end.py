"""PostgreSQL end to end: the whole pipeline — load, dbt build, GX validation, file export,
the four ESP sandboxes, the readers' published copy — runs on PostgreSQL
with the same generated (dirty) data as on DuckDB, and every mart, segment, the sync feed
and what each destination was sent are the same. Nothing writes a DuckDB file."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from dataclasses import replace
from datetime import date

import pytest

from segwise.generate.generator import LEAD_IN_DAYS
from segwise.pipeline import run
from segwise.postgres import START_HINT, WarehouseUnreachable, create_database, drop_database
from segwise.segments import definitions
from segwise.settings import project_root
from segwise.warehouse import WarehouseBusy, connect, exclusive

from conftest import make_settings, query, quiet
from equivalence import RUN_CLOCK, relations, rows

pytestmark = pytest.mark.xdist_group("postgres")

AS_OF = date(2026, 6, 30)
SEEDS = {"recent_purchasers_30d", "repeat_buyers_30d", "cart_abandoners_24h",
         "browsed_not_bought_48h", "highly_engaged_recent_buyers", "inactive_90d",
         "vip_customers", "at_risk_high_value"}
SEGMENTS = sorted(s.name for s in definitions(project_root()))
# a quarantined row's raw values as text, for people: each engine spells a double its own
# way (DuckDB 89.0, PostgreSQL 89)
TEXT_OF_RAW = {"payload"}


def pg_settings(tmp, db: str):
    return replace(make_settings(tmp), dbt_target="postgres",
                   extra_env={"SEGWISE_PG_DATABASE": db})


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    db = f"segwise_test_{uuid.uuid4().hex[:8]}"
    try:
        create_database(db)
    except WarehouseUnreachable as exc:  # a real failure: these machines promise PostgreSQL
        pytest.fail(f"PostgreSQL is part of `make test`: {exc}")
    duck_dir, pg_dir = tmp_path_factory.mktemp("duck"), tmp_path_factory.mktemp("pg")
    duck, pg = make_settings(duck_dir), pg_settings(pg_dir, db)
    try:
        # with the demo's lead-in build: the measurement marts have holdout entries to compare
        summaries = {name: run(s, dataset="generated", customers=800, seed=21, as_of=AS_OF,
                               dirty_rate=0.02, say=quiet, sync_sandboxes=True,
                               lead_in_days=LEAD_IN_DAYS)
                     for name, s in (("duckdb", duck), ("postgres", pg))}
        yield duck, pg, summaries, pg_dir
    finally:
        drop_database(db)


def test_the_whole_run_passes_on_postgres_and_writes_no_duckdb_file(both):
    duck, pg, summaries, pg_dir = both
    for name, summary in summaries.items():
        assert summary.validation_success, name
        assert summary.exports, name
        assert summary.syncs and not any(s["status"] == "failed" for s in summary.syncs), name
    assert summaries["postgres"].segment_sizes == summaries["duckdb"].segment_sizes
    assert summaries["postgres"].quarantined == summaries["duckdb"].quarantined
    assert not [p for p in pg_dir.rglob("*") if ".duckdb" in p.name]
    ops = set(relations(pg, "ops"))
    assert {"build_runs", "validation_runs", "sync_runs", "destination_ledger",
            "destination_suppressions", "sync_rejections", "model_runs"} <= ops
    statuses = query(pg, "select model, status from ops.model_runs")
    assert set(statuses["model"]) == {"churn", "clv", "clusters"}
    assert set(statuses["status"]) == {"ok"}


@pytest.mark.parametrize("schema", ["marts", "features", "predictions", "segmentation",
                                    "quarantine", "measurement"])
def test_every_table_of_a_schema_is_identical(both, schema):
    duck, pg, _, _ = both
    names = relations(duck, schema)
    assert names and names == relations(pg, schema)
    for name in names:
        d_cols, d = rows(duck, f"{schema}.{name}", RUN_CLOCK | TEXT_OF_RAW)
        p_cols, p = rows(pg, f"{schema}.{name}", RUN_CLOCK | TEXT_OF_RAW)
        assert d_cols == p_cols, name
        assert d == p, f"{schema}.{name} differs"


@pytest.mark.parametrize("segment", SEGMENTS)
def test_segment_members_identical(both, segment):
    duck, pg, _, _ = both
    sql = f"select customer_id, is_holdout, rule_version from segments.{segment}"
    d = set(map(tuple, query(duck, sql).values.tolist()))
    assert d or segment not in SEEDS, segment
    assert d == set(map(tuple, query(pg, sql).values.tolist()))
    published = set(map(tuple, query(pg, sql.replace("segments.", "bi_segments.")
                                     ).values.tolist()))
    assert published == d, "the readers' copy is the build's"


def test_the_feed_and_what_each_destination_was_sent_are_identical(both):
    duck, pg, _, _ = both
    _, d = rows(duck, "activation.sync_esp_members", RUN_CLOCK)
    _, p = rows(pg, "activation.sync_esp_members", RUN_CLOCK)
    assert d and d == p
    ledger = ("select destination, segment_name, customer_id, email, fields_hash, left_at "
              "from ops.destination_ledger")
    assert rows(duck, f"({ledger}) as l") == rows(pg, f"({ledger}) as l")
    assert len(rows(pg, f"({ledger}) as l")[1]) > 1000
    runs = ("select destination, segment_name, mode, status, planned_adds, succeeded_adds, "
            "rejected_adds, suppressed, desired_members from ops.sync_runs")
    assert rows(duck, f"({runs}) as r") == rows(pg, f"({runs}) as r")
    providers = {d.split(":")[0] for d in query(pg, runs)["destination"]}
    assert {"file", "mailchimp", "klaviyo", "hubspot", "sendgrid"} <= providers


def test_quarantine_identical(both):
    duck, pg, _, _ = both
    sql = ("select source_table, reason, rows_quarantined from quarantine.quarantine_summary "
           "order by 1, 2")
    d = query(duck, sql)
    p = query(pg, sql)
    assert len(d) > 5
    assert d.astype(str).values.tolist() == p.astype(str).values.tolist()


def test_rfm_and_engagement_identical(both):
    duck, pg, _, _ = both
    cols = ("customer_id, recency_days, orders_count, frequency_repeat, recency_btyd_days, "
            "tenure_days, r_score, f_score, m_score, rfm_segment")
    d = query(duck, f"select {cols} from marts.customer_rfm order by customer_id")
    p = query(pg, f"select {cols} from marts.customer_rfm order by customer_id")
    assert d.astype(str).values.tolist() == p.astype(str).values.tolist()
    e_sql = "select customer_id, engagement_tier from marts.customer_engagement order by 1"
    assert (query(duck, e_sql).values.tolist() == query(pg, e_sql).values.tolist())




def test_history_and_assignments_identical(both):
    duck, pg, _, _ = both
    for sql in ("select customer_id, primary_segment from segmentation.segment_assignments "
                "order by 1",
                "select segment_name, change_type, count(*) as n from "
                "segmentation.segment_changes group by 1, 2 order by 1, 2"):
        d = query(duck, sql).astype(str).values.tolist()
        assert d, sql
        assert d == query(pg, sql).astype(str).values.tolist(), sql


def test_sync_feed_identical(both):
    """The ESP sync feed (contract-enforced view) decides consent the same on both."""
    duck, pg, _, _ = both
    sql = ("select membership_id, coalesce(exclusion_reason, '-') as reason, is_sendable "
           "from activation.sync_esp_members order by 1")
    d = query(duck, sql).astype(str).values.tolist()
    assert d and any(r[1] != "-" for r in d) and any(r[1] == "-" for r in d)
    assert d == query(pg, sql).astype(str).values.tolist()


# ---- guarantees on PostgreSQL (these change the warehouse: they run last)

def test_a_second_run_on_the_same_postgres_warehouse_refuses_naming_the_holder(both):
    _, pg, _, _ = both
    code = ("import sys, time\n"
            "from segwise.settings import Settings\n"
            "from segwise.warehouse import exclusive\n"
            "with exclusive(Settings.from_env()):\n"
            "    print('held', flush=True); time.sleep(30)\n")
    env = {**__import__("os").environ, "SEGWISE_DBT_TARGET": "postgres", **pg.extra_env}
    holder = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseBusy) as err, exclusive(pg, wait_s=0.5):
            pass
        assert "segwise" in str(err.value) and "server pid" in str(err.value)
    finally:
        holder.kill()
        holder.wait()
    with exclusive(pg, wait_s=5):  # the server released it with the session
        pass


READER = """
import json, select, sys, time
import psycopg2
con = psycopg2.connect(**json.loads(sys.argv[1])); con.autocommit = True
cur = con.cursor()
print("ready", flush=True)
seen, errors, deadline = [], [], time.time() + float(sys.argv[2])
# until the test says the publishes are done (a line on stdin), at most the deadline
while time.time() < deadline and not select.select([sys.stdin], [], [], 0)[0]:
    try:
        cur.execute("select (select count(*) from bi_ops.build_runs), "
                    "(select count(*) from bi_segments.vip_customers)")
        seen.append(cur.fetchone())
    except Exception as exc:
        errors.append(repr(exc))
print(json.dumps({"seen": seen, "errors": errors}))
"""


def test_a_reader_of_the_published_schemas_sees_old_then_new_and_never_an_error(both):
    import json

    from segwise.postgres import pg_dsn
    from segwise.warehouse import publish

    _, pg, _, _ = both
    (before,) = query(pg, "select count(*) as n from bi_ops.build_runs")["n"].tolist()
    (vip,) = query(pg, "select count(*) as n from segments.vip_customers")["n"].tolist()
    with connect(pg) as con:  # the next state differs from the published one
        con.execute("insert into ops.build_runs (run_id, built_at, dataset) values "
                    "('reader-test', now(), 'generated')")
    reader = subprocess.Popen([sys.executable, "-c", READER,
                               json.dumps(pg_dsn(env=pg.extra_env)), "600"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert reader.stdout.readline().strip() == "ready"
    publish(pg)
    publish(pg)  # twice: the second drops the copies the first replaced
    time.sleep(0.5)
    reader.stdin.write("done\n")
    reader.stdin.flush()
    out = json.loads(reader.stdout.readline())
    reader.wait()
    assert out["errors"] == []
    states = [tuple(s) for s in out["seen"]]
    assert set(states) <= {(before, vip), (before + 1, vip)}
    assert states[-1] == (before + 1, vip) and states[0] == (before, vip)
    leftovers = query(pg, "select nspname from pg_namespace where nspname like 'bi_old%' "
                          "or nspname like 'bi_next%'")
    assert leftovers.empty


def test_forget_on_postgres_erases_everywhere_it_was_written(both):
    from segwise.sync.erasure import forget

    _, pg, _, _ = both
    (email,) = query(pg, "select email from ops.destination_ledger where destination = "
                         "'hubspot' order by email limit 1")["email"].tolist()
    receipts = forget(pg, [email], destinations=[], reason="ticket-1")
    assert receipts == []
    for relation, column in (("raw.crm_contacts", "lower(trim(email))"),
                             ("marts.dim_customers", "email"),
                             ("ops.destination_ledger", "email"),
                             ("bi_marts.dim_customers", "email"),
                             ("bi_ops.destination_ledger", "email")):
        hits = query(pg, f"select count(*) as n from {relation} where {column} = '{email}'")
        assert hits["n"].tolist() == [0], relation
    assert query(pg, "select count(*) as n from ops.erasure_requests")["n"].tolist() == [1]


def test_an_unreachable_postgres_fails_with_how_to_start_it(tmp_path):
    bad = replace(pg_settings(tmp_path, "segwise"), extra_env={"SEGWISE_PG_PORT": "1"})
    with pytest.raises(WarehouseUnreachable) as err, connect(bad):
        pass
    assert START_HINT in str(err.value)


def test_load_mapping_on_postgres_rejects_per_row_appends_once_and_changes_nothing_on_error(
        tmp_path):
    """`segwise load --mapping` (the README's worked example) into PostgreSQL: the same
    rejections as on DuckDB, recorded in PostgreSQL's ops tables; append is idempotent; a
    file missing a mapped column changes no table."""
    import os

    import pandas as pd

    from test_bring_your_own import SEGWISE, _write_shop

    db = f"segwise_test_{uuid.uuid4().hex[:8]}"
    create_database(db)
    pg = pg_settings(tmp_path, db)
    env = dict(os.environ, SEGWISE_DBT_TARGET="postgres", SEGWISE_PG_DATABASE=db,
               SEGWISE_DUCKDB_PATH=str(tmp_path / "wh" / "segwise.duckdb"),
               SEGWISE_OUTPUT_DIR=str(tmp_path / "out"))

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([SEGWISE, "load", "--mapping", "segwise_load.yml", *args],
                              env=env, cwd=tmp_path, text=True, capture_output=True,
                              timeout=600)

    def count(relation: str) -> int:
        return int(query(pg, f"select count(*) as n from {relation}")["n"][0])

    try:
        truth = _write_shop(tmp_path)
        first = cli("--mode", "append")
        assert first.returncode == 0, first.stdout + first.stderr
        assert count("raw.orders") == len(truth) and count("raw.web_events") == 0
        assert count("raw.crm_contact_attributes") == 60 * 4  # unpivoted contact columns
        reasons = sorted(query(pg, "select reason from ops.load_rejections")["reason"])
        assert reasons == ["unparseable order_total: abc",
                           "unparseable ordered_at: 13/45/2024 (format %m/%d/%Y)"]
        again = cli("--mode", "append")
        assert again.returncode == 0 and "already loaded, skipped" in again.stdout
        assert count("raw.orders") == len(truth)
        assert count("ops.load_rejections") == 2
        lines = pd.read_csv(tmp_path / "exports" / "lines.csv").drop(columns=["QTY"])
        lines.to_csv(tmp_path / "exports" / "lines.csv", index=False)
        (tmp_path / "exports" / "transactions_2025.csv").write_text(
            "TXN_ID,CUST,TXN_DATE,TOTAL\nT5000,C001,1/2/2025,5.00\n")
        broken = cli()
        assert broken.returncode == 1 and "nothing was loaded" in " ".join(
            broken.stderr.split())
        assert count("raw.orders") == len(truth) and count("ops.load_files") == 4
        assert not [p for p in tmp_path.rglob("*") if ".duckdb" in p.name]
    finally:
        drop_database(db)
