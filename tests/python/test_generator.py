"""The demo generator: deterministic, chunked, realistic enough for every segment, and
its dirt is exactly what it says it injected."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import pandas as pd

from segwise.generate import generate
from segwise.generate.generator import CHUNK_SIZE


def _digest(folder):
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*.parquet")):
        h.update(path.relative_to(folder).as_posix().encode())
        h.update(pd.read_parquet(path).to_csv(index=False).encode())
    return h.hexdigest()


def test_same_seed_same_data_and_other_seed_differs(tmp_path):
    a = generate(tmp_path / "a", customers=400, seed=1, as_of=date(2026, 1, 31))
    b = generate(tmp_path / "b", customers=400, seed=1, as_of=date(2026, 1, 31))
    generate(tmp_path / "c", customers=400, seed=2, as_of=date(2026, 1, 31))
    assert a.rows == b.rows
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_all_raw_tables_have_rows_and_no_timestamp_after_as_of(tmp_path):
    res = generate(tmp_path, customers=500, seed=3, as_of=date(2026, 3, 31))
    for table in ("crm_contacts", "orders", "order_items", "products", "web_events",
                  "email_campaigns", "email_events"):
        assert res.rows[table] > 0, table
    end = pd.Timestamp("2026-04-01")
    orders = pd.read_parquet(tmp_path / "orders")
    events = pd.read_parquet(tmp_path / "web_events")
    assert orders["ordered_at"].max() < end
    assert events["occurred_at"].max() < end
    assert set(events["event_type"]) == {"page_view", "product_view", "add_to_cart",
                                         "remove_from_cart", "checkout_started", "purchase"}
    email = pd.read_parquet(tmp_path / "email_events")
    assert {"sent", "delivered", "open", "click", "bounce"} <= set(email["event_type"])
    # anonymous browsing exists and is later attributable (same anonymous_id logs in)
    assert events["customer_id"].isna().any()


def test_chunks_are_written_separately(tmp_path):
    res = generate(tmp_path, customers=CHUNK_SIZE + 10, seed=5, as_of=date(2026, 1, 31))
    parts = sorted((tmp_path / "crm_contacts").glob("*.parquet"))
    assert len(parts) == 2
    assert res.rows["crm_contacts"] == CHUNK_SIZE + 10


def test_dirty_rows_are_extra_rows_listed_in_the_manifest(tmp_path):
    clean = generate(tmp_path / "clean", customers=800, seed=9, as_of=date(2026, 1, 31))
    dirty = generate(tmp_path / "dirty", customers=800, seed=9, as_of=date(2026, 1, 31),
                     dirty_rate=0.05)
    manifest = json.loads((tmp_path / "dirty" / "dirt_manifest.json").read_text())
    for table, reasons in manifest["dirt"].items():
        added = sum(n for r, n in reasons.items() if "kept" not in r)
        assert dirty.rows[table] - clean.rows[table] == added, table
    contacts = pd.read_parquet(tmp_path / "dirty" / "crm_contacts")
    # case / whitespace variants of one email exist
    normalised = contacts["email"].str.strip().str.lower()
    assert (contacts["email"] != normalised).sum() > 0
    assert normalised.duplicated().sum() > 0
