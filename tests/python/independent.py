"""Independent re-computations of the marts and segment rules in pandas, straight from
raw files — written for the tests, sharing nothing with the SQL models."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd


def read(raw: Path, table: str) -> pd.DataFrame:
    return pd.read_parquet(raw / table)


def stitched_events(raw: Path, before: pd.Timestamp) -> pd.DataFrame:
    ev = read(raw, "web_events")
    ev = ev[ev["occurred_at"] < before]
    logged = ev[ev["customer_id"].notna()].sort_values(["occurred_at", "event_id"])
    owner = logged.groupby("anonymous_id")["customer_id"].last()
    ev = ev.copy()
    ev["customer_id"] = ev["customer_id"].fillna(ev["anonymous_id"].map(owner))
    return ev[ev["customer_id"].notna()]


def no_order_within(adds: pd.DataFrame, orders: pd.DataFrame, hours: int,
                    time_col: str) -> pd.Series:
    merged = adds.reset_index().merge(orders[["customer_id", "ordered_at"]], on="customer_id",
                                      how="left")
    hit = (merged["ordered_at"] >= merged[time_col]) & (
        merged["ordered_at"] <= merged[time_col] + pd.Timedelta(hours=hours))
    converted = merged[hit]["index"].unique()
    return ~adds.index.isin(converted)


def cart_abandoners(raw: Path, ref: pd.Timestamp) -> set[str]:
    ev = stitched_events(raw, ref)
    orders = read(raw, "orders")
    adds = ev[(ev["event_type"] == "add_to_cart") & (ev["occurred_at"] >= ref - pd.Timedelta(days=7))
              & (ev["occurred_at"] <= ref - pd.Timedelta(hours=24))].reset_index(drop=True)
    keep = no_order_within(adds, orders, 24, "occurred_at")
    return set(adds[keep]["customer_id"])


def browsed_not_bought(raw: Path, ref: pd.Timestamp) -> set[str]:
    ev = stitched_events(raw, ref)
    orders = read(raw, "orders")
    views = ev[(ev["event_type"] == "product_view")
               & (ev["occurred_at"] >= ref - pd.Timedelta(days=7))
               & (ev["occurred_at"] <= ref - pd.Timedelta(hours=48))].reset_index(drop=True)
    no_order = no_order_within(views, orders, 48, "occurred_at")
    cart = ev[ev["event_type"] == "add_to_cart"][["customer_id", "occurred_at"]].rename(
        columns={"occurred_at": "ordered_at"})
    no_cart = no_order_within(views, cart, 48, "occurred_at")
    return set(views[no_order & no_cart]["customer_id"])


def orders_in_window(raw: Path, ref: pd.Timestamp, days: int) -> pd.Series:
    orders = read(raw, "orders")
    recent = orders[(orders["ordered_at"] >= ref - pd.Timedelta(days=days))
                    & (orders["ordered_at"] < ref)]
    return recent.groupby("customer_id").size()


def inactive(raw: Path, ref: pd.Timestamp, days: int = 90) -> set[str]:
    cutoff = ref - pd.Timedelta(days=days)
    contacts = read(raw, "crm_contacts")
    orders = read(raw, "orders")
    orders = orders[orders["ordered_at"] < ref]
    email = read(raw, "email_events")
    email = email[email["occurred_at"] < ref]
    ev = stitched_events(raw, ref)
    first_order = orders.groupby("customer_id")["ordered_at"].min()
    known = contacts.set_index("customer_id")["signup_at"].combine_first(first_order)
    active = (set(orders[orders["ordered_at"] >= cutoff]["customer_id"])
              | set(email[(email["occurred_at"] >= cutoff)
                          & email["event_type"].isin(["open", "click"])]["customer_id"])
              | set(ev[ev["occurred_at"] >= cutoff]["customer_id"]))
    return {c for c, since in known.items() if since < cutoff and c not in active}


def quintile(values: pd.Series, descending: bool = False) -> pd.Series:
    ranked = (-values if descending else values).rank(method="min")
    n = len(values)
    pr = (ranked - 1) / (n - 1) if n > 1 else ranked * 0
    return pr.map(lambda p: min(5, 1 + math.floor(5 * p)))


def rfm(orders: pd.DataFrame, as_of: str) -> pd.DataFrame:
    """orders: customer_id, ordered_at (datetime), amount. As of the end of ``as_of``."""
    as_of_day = pd.Timestamp(as_of)
    o = orders[orders["ordered_at"] < as_of_day + pd.Timedelta(days=1)].copy()
    o["day"] = o["ordered_at"].dt.normalize()
    daily = o.groupby(["customer_id", "day"])["amount"].sum().reset_index()
    out = []
    for cid, g in daily.groupby("customer_id", sort=True):
        g = g.sort_values("day")
        first, last = g["day"].iloc[0], g["day"].iloc[-1]
        repeat = g["amount"].iloc[1:]
        out.append({
            "customer_id": cid,
            "first_order_date": first,
            "last_order_date": last,
            "recency_days": (as_of_day - last).days,
            "monetary_total": g["amount"].sum(),
            "frequency_repeat": len(g) - 1,
            "recency_btyd_days": (last - first).days,
            "tenure_days": (as_of_day - first).days,
            "monetary_avg_repeat": float(repeat.mean()) if len(repeat) else 0.0,
        })
    df = pd.DataFrame(out).set_index("customer_id")
    df["orders_count"] = o.groupby("customer_id").size()
    df["r_score"] = quintile(df["recency_days"], descending=True)
    df["f_score"] = quintile(df["orders_count"])
    df["m_score"] = quintile(df["monetary_total"].round(6))
    return df


__all__ = ["np"]
