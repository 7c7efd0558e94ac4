"""The pandas peer: what a user would write instead of segwise — the same per-customer
aggregates and three segments as scripts/peers/limit.sql, in pandas, from the raw
Parquet files the generator writes (``<raw dir>/<table>/*.parquet``).

Prints the wall time. scripts/benchmark_generate.py runs it beside the build; a test
checks it computes what the marts compute.

    .venv/bin/python scripts/peer_pandas.py RAW_DIR --as-of 2026-06-30
"""

from __future__ import annotations

import argparse
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd


def _latest(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """One row per key: the last in file order (the files are one load)."""
    return frame.drop_duplicates(key, keep="last")


def _read(raw_dir: Path, table: str, columns: list[str]) -> pd.DataFrame:
    return pd.read_parquet(raw_dir / table, columns=columns)


def aggregates(raw_dir: Path, as_of: date) -> pd.DataFrame:
    end = pd.Timestamp(as_of + timedelta(days=1))
    d30, d90 = end - pd.Timedelta(days=30), end - pd.Timedelta(days=90)

    orders = _latest(_read(raw_dir, "orders", ["order_id", "customer_id", "ordered_at",
                                               "status", "order_total"]),
                     "order_id")
    status = orders["status"].str.strip().str.lower().fillna("completed")
    orders = orders[(status != "cancelled") & (orders["order_total"] >= 0)
                    & (orders["ordered_at"] < end)]
    by_customer = orders.groupby("customer_id")
    rfm = pd.DataFrame({
        "recency_days": (pd.Timestamp(as_of) - by_customer["ordered_at"].max().dt.normalize()).dt.days,
        "orders_count": by_customer.size(),
        "monetary_total": by_customer["order_total"].sum(),
        "orders_30d": orders[orders["ordered_at"] >= d30].groupby("customer_id").size(),
    })

    email = _latest(_read(raw_dir, "email_events", ["email_event_id", "customer_id",
                                                    "event_type", "occurred_at"]),
                    "email_event_id")
    email = email[email["occurred_at"] < end]
    kind = email["event_type"].str.strip().str.lower()
    email_counts = pd.DataFrame({
        f"email_{name}_{days}d": email[(kind == event) & (email["occurred_at"] >= since)]
        .groupby("customer_id").size()
        for days, since in ((30, d30), (90, d90))
        for name, event in (("sends", "sent"), ("opens", "open"), ("clicks", "click"))
    })

    web = _latest(_read(raw_dir, "web_events", ["event_id", "anonymous_id", "customer_id",
                                                "event_type", "occurred_at"]),
                  "event_id")
    web = web[web["occurred_at"] < end].copy()
    web["event_type"] = web["event_type"].str.strip().str.lower()
    logged_in = web.dropna(subset=["anonymous_id", "customer_id"]).sort_values(
        ["occurred_at", "event_id"]).drop_duplicates("anonymous_id", keep="last")
    identity = logged_in.set_index("anonymous_id")["customer_id"]
    web["who"] = web["customer_id"].fillna(web["anonymous_id"].map(identity))
    web["visitor"] = web["anonymous_id"].fillna(web["customer_id"])
    web = web.sort_values(["visitor", "occurred_at", "event_id"])
    gap = web.groupby("visitor")["occurred_at"].diff()
    web["session"] = (gap.isna() | (gap > pd.Timedelta(minutes=30))).cumsum()
    sessions = web.groupby("session").agg(customer_id=("who", "max"),
                                          started_at=("occurred_at", "min"))
    session_counts = sessions[sessions["started_at"] >= d30].groupby("customer_id").size()
    views = web[(web["event_type"] == "product_view") & (web["occurred_at"] >= d30)]
    adds = web[(web["event_type"] == "add_to_cart") & web["who"].notna()
               & (web["occurred_at"] >= end - pd.Timedelta(days=7))
               & (web["occurred_at"] <= end - pd.Timedelta(hours=24))]
    pairs = adds[["who", "occurred_at"]].reset_index(drop=True).reset_index().merge(
        orders[["customer_id", "ordered_at"]], left_on="who", right_on="customer_id")
    converted = pairs[(pairs["ordered_at"] >= pairs["occurred_at"])
                      & (pairs["ordered_at"] <= pairs["occurred_at"] + pd.Timedelta(hours=24))]
    adds = adds.reset_index(drop=True)
    abandoners = set(adds.loc[~adds.index.isin(converted["index"]), "who"])

    contacts = _latest(_read(raw_dir, "crm_contacts", ["customer_id"]),
                       "customer_id").dropna(subset=["customer_id"])
    out = pd.DataFrame(index=pd.Index(contacts["customer_id"], name="customer_id"))
    out = out.join(rfm).join(email_counts)
    out["web_sessions_30d"] = session_counts
    out["product_views_30d"] = views.groupby("who").size()
    counts = [c for c in out.columns if c != "recency_days" and c != "monetary_total"]
    out[counts] = out[counts].fillna(0).astype("int64")
    out["monetary_total"] = out["monetary_total"].fillna(0.0)
    out["recent_purchasers_30d"] = out["orders_30d"] >= 1
    out["repeat_buyers_30d"] = out["orders_30d"] >= 2
    out["cart_abandoners_24h"] = out.index.isin(abandoners)
    return out.drop(columns="orders_30d").reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw_dir", type=Path)
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    args = parser.parse_args()
    start = time.perf_counter()
    result = aggregates(args.raw_dir, args.as_of)
    print(f"pandas peer {time.perf_counter() - start:8.1f} s ({len(result):,} customers)")


if __name__ == "__main__":
    main()
