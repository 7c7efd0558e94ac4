"""The benchmark's peers (scripts/peers/limit.sql and scripts/peer_pandas.py) compute what
segwise's marts and segments compute, on the demo warehouse — otherwise the ratios the
benchmark prints would compare different work."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pandas as pd
import pytest

from segwise.settings import project_root

from conftest import DEMO_AS_OF, query

SEGMENTS = ["recent_purchasers_30d", "repeat_buyers_30d", "cart_abandoners_24h"]


def _script(name: str):
    path = project_root() / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _expected(settings) -> pd.DataFrame:
    frame = query(settings, """
        select d.customer_id, r.recency_days, coalesce(r.orders_count, 0) as orders_count,
            coalesce(r.monetary_total, 0) as monetary_total, e.email_sends_30d,
            e.email_opens_30d, e.email_clicks_30d, e.email_sends_90d, e.email_opens_90d,
            e.email_clicks_90d, e.web_sessions_30d, e.product_views_30d
        from marts.dim_customers as d
        join marts.customer_engagement as e using (customer_id)
        left join marts.customer_rfm as r using (customer_id)""").set_index("customer_id")
    for segment in SEGMENTS:
        members = set(query(settings, f"select customer_id from segments.{segment}")["customer_id"])
        assert members, segment  # the comparison must have something to compare
        frame[segment] = frame.index.isin(members)
    return frame.sort_index()


def _assert_same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    got = got.set_index("customer_id").sort_index()
    assert list(got.index) == list(expected.index)
    for column in expected.columns:
        a, b = got[column], expected[column]
        if column == "monetary_total":
            assert np.allclose(a.astype(float), b.astype(float)), column
        else:
            same = (a.astype("float64") == b.astype("float64")) | (a.isna() & b.isna())
            assert same.all(), (column, got.loc[~same, column].head(), b[~same].head())


@pytest.mark.xdist_group("demo")
def test_the_single_query_limit_computes_the_marts_figures(demo, tmp_path):
    settings, _ = demo
    peer = _script("peer_duckdb")
    out = tmp_path / "peer.duckdb"
    assert peer.run(settings.duckdb_path, DEMO_AS_OF, out) > 0
    import duckdb

    with duckdb.connect(str(out), read_only=True) as con:
        got = con.execute("select * from customer_aggregates").df()
    _assert_same(got, _expected(settings))


@pytest.mark.xdist_group("demo")
def test_the_pandas_peer_computes_the_marts_figures(demo):
    settings, _ = demo
    got = _script("peer_pandas").aggregates(settings.raw_dir, DEMO_AS_OF)
    _assert_same(got, _expected(settings))
