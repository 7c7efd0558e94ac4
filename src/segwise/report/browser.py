"""Opening a report in a real browser: Debian's headless Chromium driven by Playwright,
with the network off. Every request the page makes is recorded and refused unless it is
the report file itself (the browser test and scripts/report_screenshot.py use it)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from segwise.errors import ConfigurationError


class ChromiumMissing(ConfigurationError):
    """No Chromium to open the report in."""


def chromium() -> str:
    path = os.environ.get("SEGWISE_CHROMIUM") or shutil.which("chromium")
    if not path:
        raise ChromiumMissing("no Chromium found: run `make browser` (it runs `apt-get "
                              "install -y chromium`, Debian's package) or set "
                              "SEGWISE_CHROMIUM to a Chromium binary")
    return path


@dataclass
class Rendered:
    figures: list[dict]
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    text: str = ""


FIGURES_JS = """els => els.map(e => {
  const svg = e.querySelector('.vis svg');
  const marks = Array.from(e.querySelectorAll('.vis svg g.role-mark'));
  return {name: e.dataset.chart, expected: e.dataset.marks.split(','),
          rendered: e.querySelector('.vis').dataset.rendered || '',
          svg_width: svg ? svg.getBoundingClientRect().width : 0,
          marks: marks.map(g => ({type: (g.getAttribute('class').match(/mark-(\\w+)/) || [])[1],
                                  items: g.children.length}))};
})"""


def open_report(path: Path, screenshot: Path | None = None,
                clip_height: int | None = None) -> Rendered:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(),
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900},
                                          offline=True)
            page = context.new_page()
            out = Rendered(figures=[])
            page.on("console", lambda m: out.errors.append(m.text) if m.type == "error"
                    else None)
            page.on("pageerror", lambda e: out.errors.append(str(e)))
            page.on("request", lambda r: out.requests.append(r.url))
            target = path.resolve().as_uri()
            page.route("**/*", lambda route: route.continue_() if route.request.url == target
                       else route.abort())
            page.goto(target)
            page.wait_for_function("document.body.dataset.chartsDone !== undefined",
                                   timeout=60_000)
            out.figures = page.eval_on_selector_all("figure[data-chart]", FIGURES_JS)
            out.text = page.inner_text("body")
            if screenshot:
                page.screenshot(path=str(screenshot), full_page=bool(clip_height),
                                clip={"x": 0, "y": 0, "width": 1280, "height": clip_height}
                                if clip_height else None)
            return out
        finally:
            browser.close()
