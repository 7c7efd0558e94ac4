"""The same dbt project on PostgreSQL (dbt-postgres): the same generated (dirty) data
gives the same quarantine, marts and segment members as on DuckDB."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date

import pandas as pd
import psycopg2
import pytest

from segwise.generate import generate
from segwise.load import load_generated
from segwise.load.postgres import (
    create_database,
    drop_database,
    load_parquet_dir_postgres,
    pg_dsn,
)
from segwise.pipeline import step_build
from segwise.segments import definitions
from segwise.settings import project_root

from conftest import make_settings, query, quiet

pytestmark = pytest.mark.xdist_group("postgres")

AS_OF = date(2026, 6, 30)
SEEDS = {"recent_purchasers_30d", "repeat_buyers_30d", "cart_abandoners_24h",
         "browsed_not_bought_48h", "highly_engaged_recent_buyers", "inactive_90d",
         "vip_customers", "at_risk_high_value"}
SEGMENTS = sorted(s.name for s in definitions(project_root()))


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    try:
        psycopg2.connect(**pg_dsn("postgres")).close()
    except psycopg2.OperationalError as exc:  # a real failure: the machine promises PostgreSQL
        pytest.fail(f"PostgreSQL not reachable at {pg_dsn('postgres')['host']}: start it with "
                    f"`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
                    f" ({exc})")
    duck = make_settings(tmp_path_factory.mktemp("duck"))
    generate(duck.raw_dir, customers=800, seed=21, as_of=AS_OF, dirty_rate=0.02)
    load_generated(duck)
    step_build(duck, "generated", AS_OF, say=quiet)

    db = f"segwise_test_{uuid.uuid4().hex[:8]}"
    create_database(db)
    pg = replace(make_settings(tmp_path_factory.mktemp("pg")), dbt_target="postgres",
                 extra_env={"SEGWISE_PG_DATABASE": db})
    try:
        load_parquet_dir_postgres(duck.raw_dir, db)
        step_build(pg, "generated", AS_OF, say=quiet)
        yield duck, db
    finally:
        drop_database(db)


def pg_query(db: str, sql: str) -> pd.DataFrame:
    con = psycopg2.connect(**pg_dsn(db))
    try:
        with con.cursor() as cur:
            cur.execute(sql)
            cols = [c.name for c in cur.description]
            return pd.DataFrame(cur.fetchall(), columns=cols)
    finally:
        con.close()


@pytest.mark.parametrize("segment", SEGMENTS)
def test_segment_members_identical(both, segment):
    duck, db = both
    sql = f"select customer_id, is_holdout from segments.{segment}"
    d = set(map(tuple, query(duck, sql).values.tolist()))
    p = set(map(tuple, pg_query(db, sql).values.tolist()))
    assert d or segment not in SEEDS, segment
    assert d == p


def test_quarantine_identical(both):
    duck, db = both
    sql = ("select source_table, reason, rows_quarantined from quarantine.quarantine_summary "
           "order by 1, 2")
    d = query(duck, sql)
    p = pg_query(db, sql)
    assert len(d) > 5
    assert d.astype(str).values.tolist() == p.astype(str).values.tolist()


def test_rfm_and_engagement_identical(both):
    duck, db = both
    cols = ("customer_id, recency_days, orders_count, frequency_repeat, recency_btyd_days, "
            "tenure_days, r_score, f_score, m_score, rfm_segment")
    d = query(duck, f"select {cols} from marts.customer_rfm order by customer_id")
    p = pg_query(db, f"select {cols} from marts.customer_rfm order by customer_id")
    assert d.astype(str).values.tolist() == p.astype(str).values.tolist()
    e_sql = "select customer_id, engagement_tier from marts.customer_engagement order by 1"
    assert (query(duck, e_sql).values.tolist() == pg_query(db, e_sql).values.tolist())




def test_history_and_assignments_identical(both):
    duck, db = both
    for sql in ("select customer_id, primary_segment from segmentation.segment_assignments "
                "order by 1",
                "select segment_name, change_type, count(*) as n from "
                "segmentation.segment_changes group by 1, 2 order by 1, 2"):
        d = query(duck, sql).astype(str).values.tolist()
        assert d, sql
        assert d == pg_query(db, sql).astype(str).values.tolist(), sql


def test_sync_feed_identical(both):
    """The ESP sync feed (contract-enforced view) decides consent the same on both."""
    duck, db = both
    sql = ("select membership_id, coalesce(exclusion_reason, '-') as reason, is_sendable "
           "from activation.sync_esp_members order by 1")
    d = query(duck, sql).astype(str).values.tolist()
    assert d and any(r[1] != "-" for r in d) and any(r[1] == "-" for r in d)
    assert d == pg_query(db, sql).astype(str).values.tolist()
