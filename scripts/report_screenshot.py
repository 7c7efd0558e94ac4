"""Take the README's screenshot of the segment report: `make run`, then
`.venv/bin/python scripts/report_screenshot.py` (default: output/report.html).

Writes docs/report.png and docs/report.png.sha256, the SHA-256 of the report's code it
was taken with: a test fails when the code changes and the screenshot is not retaken."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from segwise.report.browser import open_report
from segwise.settings import Settings, project_root


def main() -> None:
    root = project_root()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("report", nargs="?", type=Path,
                        default=Settings.from_env().output_dir / "report.html")
    parser.add_argument("--height", type=int, default=2200, help="pixels of the page shown")
    args = parser.parse_args()
    out = root / "docs" / "report.png"
    out.parent.mkdir(exist_ok=True)
    rendered = open_report(args.report, screenshot=out, clip_height=args.height)
    if rendered.errors or len(rendered.requests) != 1:
        raise SystemExit(f"the report did not render cleanly: {rendered.errors} "
                         f"{rendered.requests}")
    code = hashlib.sha256((root / "src/segwise/report/html.py").read_bytes()).hexdigest()
    (root / "docs" / "report.png.sha256").write_text(f"{code}  src/segwise/report/html.py\n")
    print(f"{out} ({out.stat().st_size:,} bytes, {len(rendered.figures)} charts)")


if __name__ == "__main__":
    main()
