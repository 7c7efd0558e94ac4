"""The browser test's checks on a report opened in headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

from segwise.report.browser import ChromiumMissing, Rendered
from segwise.report.browser import open_report as _open


def open_report(path: Path, screenshot: Path | None = None) -> Rendered:
    try:
        return _open(path, screenshot)
    except ChromiumMissing as exc:  # say exactly what is missing, never skip
        pytest.fail(str(exc), pytrace=False)


def assert_rendered(report: Rendered, path: Path) -> None:
    """No console error, no request but the file, every chart drawn with its marks."""
    assert not report.errors, report.errors
    assert report.requests == [path.resolve().as_uri()], report.requests
    for fig in report.figures:
        assert fig["rendered"] == "yes" and fig["svg_width"] > 100, fig
        drawn = {m["type"] for m in fig["marks"] if m["items"] > 0}
        assert set(fig["expected"]) <= drawn, fig
