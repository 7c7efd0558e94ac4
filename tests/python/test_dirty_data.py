"""Dirty generated data: every injected bad row is quarantined with the right reason, and
the valid rows are exactly those of the same dataset generated clean."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest

from segwise.generate import generate
from segwise.load import load_generated
from segwise.pipeline import step_build

from conftest import make_settings, query, quiet

pytestmark = pytest.mark.xdist_group("dirty")

AS_OF = date(2026, 5, 31)


@pytest.fixture(scope="module")
def clean_and_dirty(tmp_path_factory):
    out = {}
    for label, rate in (("clean", 0.0), ("dirty", 0.03)):
        settings = make_settings(tmp_path_factory.mktemp(label))
        generate(settings.raw_dir, customers=1500, seed=11, as_of=AS_OF, dirty_rate=rate)
        load_generated(settings)
        step_build(settings, "generated", AS_OF, say=quiet)
        out[label] = settings
    return out


def test_quarantine_counts_equal_injected_dirt(clean_and_dirty):
    dirty = clean_and_dirty["dirty"]
    manifest = json.loads((dirty.raw_dir / "dirt_manifest.json").read_text())
    expected = {(t, r): n for t, reasons in manifest["dirt"].items() for r, n in reasons.items()
                if "kept" not in r}
    got = query(dirty, "select source_table, reason, rows_quarantined from "
                       "quarantine.quarantine_summary")
    got = {(r.source_table, r.reason): r.rows_quarantined for r in got.itertuples()}
    assert got == expected
    assert sum(expected.values()) > 500


def test_clean_dataset_quarantines_nothing(clean_and_dirty):
    clean = clean_and_dirty["clean"]
    assert query(clean, "select count(*) as n from quarantine.quarantine_rows")["n"][0] == 0


@pytest.mark.parametrize("model,key", [
    ("staging.stg_crm__contacts", "customer_id"),
    ("staging.stg_shop__orders", "order_id"),
    ("staging.stg_shop__order_items", "order_item_id"),
    ("staging.stg_web__events", "event_id"),
    ("staging.stg_email__events", "email_event_id"),
    ("marts.customer_rfm", "customer_id"),
    ("marts.customer_engagement", "customer_id"),
])
def test_valid_rows_are_unaffected_by_dirt(clean_and_dirty, model, key):
    cols = "* exclude (_loaded_at)" if model.startswith("staging") else "*"
    clean = query(clean_and_dirty["clean"], f"select {cols} from {model} order by {key}")
    dirty = query(clean_and_dirty["dirty"], f"select {cols} from {model} order by {key}")
    assert len(clean) > 0
    assert clean.equals(dirty), model


def test_mixed_case_categories_are_normalised(clean_and_dirty):
    cats = set(query(clean_and_dirty["dirty"],
                     "select distinct category from staging.stg_web__events "
                     "where category is not null")["category"])
    assert cats == {"outdoor", "electronics", "home", "beauty", "fashion", "books", "toys",
                    "sports"}


def test_quarantine_rows_keep_payload_and_key(clean_and_dirty):
    rows = query(clean_and_dirty["dirty"],
                 "select * from quarantine.quarantine_rows where reason = 'invalid_email'")
    assert len(rows) > 0
    assert rows["payload"].str.contains("email=").all()
    assert rows["record_key"].str.startswith("Y").all()


def test_the_report_charts_the_quarantine_by_table_and_reason(clean_and_dirty):
    """The HTML report of the dirty build, opened in headless Chromium offline: the
    quarantine chart has one bar per table and reason, the table lists every reason, and
    the sections whose steps did not run (validation, sync, models) say so."""
    from segwise.report.html import write_html_report

    from browser import assert_rendered, open_report

    dirty = clean_and_dirty["dirty"]
    path = write_html_report(dirty)
    report = open_report(path)
    assert_rendered(report, path)
    counts = query(dirty, "select source_table, reason, rows_quarantined "
                          "from quarantine.quarantine_summary")
    fig = next(f for f in report.figures if f["name"] == "quarantine")
    assert sum(m["items"] for m in fig["marks"] if m["type"] == "rect") == len(counts) > 5
    for r in counts.itertuples():
        assert f"{r.source_table}\t{r.reason}\t{r.rows_quarantined:,}" in report.text
    assert "quarantine_trend" in {f["name"] for f in report.figures}
    assert "Validation: not run" in report.text
    assert re.search(r"\nSync\s+none\s", report.text), report.text[-3000:]
