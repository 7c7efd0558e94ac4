"""The HTML segment report: self-contained (every script and style inline, no request
leaves the file), checked in headless Chromium with the network off, its figures against
the warehouse they were drawn from."""

from __future__ import annotations

import hashlib
import re

import pytest

from segwise.report import html as report_html
from segwise.settings import project_root

from browser import assert_rendered, open_report
from conftest import query

pytestmark = pytest.mark.xdist_group("demo")

DEMO_CHARTS = {"size_history", "size_change", "overlap", "rfm_grid", "engagement", "lifecycle",
               "sync_status", "churn", "clv", "clusters", "lift", "cohorts"}


@pytest.fixture(scope="module")
def rendered(demo, tmp_path_factory):
    settings, summary = demo
    path = settings.output_dir / report_html.REPORT_NAME
    assert summary.html_report == str(path) and path.exists()
    shot = tmp_path_factory.mktemp("shot") / "report.png"
    return path, open_report(path, screenshot=shot), shot


def test_the_report_loads_nothing_from_elsewhere(rendered):
    path, _, _ = rendered
    # the markup, without the inline scripts' bodies (the Vega runtime's source mentions
    # `<img src=` in a string); what the scripts fetch is the browser test's to catch
    page = re.sub(r"(<script[^>]*>).*?(</script>)", r"\1\2", path.read_text(), flags=re.S)
    assert page.count("<script") == 3  # the runtime, the chart specs, the embedding
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", page, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page, re.I)
    assert not re.search(r"@import", page)
    assert "default-src 'none'" in page  # the page's own policy forbids any fetch too


def test_every_chart_renders_offline_without_console_errors(rendered):
    path, report, shot = rendered
    assert_rendered(report, path)
    assert {f["name"] for f in report.figures} == DEMO_CHARTS
    assert shot.stat().st_size > 50_000  # a screenshot of a drawn page


def _items(report, chart: str, mark: str) -> int:
    fig = next(f for f in report.figures if f["name"] == chart)
    return sum(m["items"] for m in fig["marks"] if m["type"] == mark)


def test_the_charts_draw_what_the_warehouse_holds(demo, rendered):
    settings, _ = demo
    _, report, _ = rendered
    cells = query(settings, "select count(distinct r_score * 10 + f_score) as n "
                            "from marts.customer_rfm")["n"][0]
    assert _items(report, "rfm_grid", "rect") == cells
    pairs = query(settings, "select count(*) as n from segmentation.segment_overlap")["n"][0]
    assert _items(report, "overlap", "rect") == pairs > 0
    cohorts = query(settings, "select count(*) as n from measurement.cohort_retention")["n"][0]
    assert _items(report, "cohorts", "rect") == cohorts
    syncs = query(settings, "select count(*) as n from (select distinct destination, "
                            "segment_name from ops.sync_runs) as s")["n"][0]
    assert _items(report, "sync_status", "rect") == syncs
    segments = query(settings, "select count(*) as n from segmentation.segment_sizes")["n"][0]
    assert _items(report, "size_history", "line") == segments  # one line per segment
    tiers = query(settings, "select count(distinct engagement_tier) as n "
                            "from marts.customer_engagement")["n"][0]
    assert _items(report, "engagement", "rect") == tiers


def test_sizes_say_how_many_are_in_the_holdout_and_validation_shows_the_sizes(demo, rendered):
    settings, _ = demo
    _, report, _ = rendered
    sizes = query(settings, "select segment_name, members, holdout_members "
                            "from segmentation.segment_sizes")
    for r in sizes.itertuples():
        text = f"{r.members:,} ({int(r.holdout_members):,} holdout)" if r.holdout_members \
            else f"{r.members:,}"
        assert f"{r.segment_name}\t{text}\t" in report.text, r
    assert (sizes["holdout_members"] > 0).any()
    vip = query(settings, "select count(*) as n from segments.vip_customers")["n"][0]
    row = next(line for line in report.text.splitlines()
               if "segment_sizes" in line and "\tvip_customers\t" in line)
    assert row.split("\t")[0] == "pass" and row.rstrip().split("\t")[-1] == f"{vip:,}", row
    assert "min 1" in row


def test_the_readme_screenshot_is_of_the_current_report():
    """docs/report.png is regenerated (scripts/report_screenshot.py) whenever the report's
    code changes: its sidecar holds the SHA-256 of the code it was taken from."""
    root = project_root()
    code = hashlib.sha256((root / "src/segwise/report/html.py").read_bytes()).hexdigest()
    assert (root / "docs" / "report.png.sha256").read_text().split()[0] == code, (
        "the report changed since the README screenshot: run scripts/report_screenshot.py")
    assert "docs/report.png" in (root / "README.md").read_text()
