"""Benchmark: the scoring step (churn, CLV, clusters) beside the dbt build it sits in.

Generates N customers (default 1,000,000) into a work folder (kept, so a second run with
the same --workdir skips generation and reuses the warehouse), builds the marts
(`dbt build` of everything the models read), then runs each model of the scoring step in
a fresh process and prints its wall time and that process's peak RSS next to the dbt
build's wall time (the ratio is the figure). Not a test: it prints figures.

    .venv/bin/python scripts/benchmark_predict.py --customers 1000000 --workdir /tmp/bench1m
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

from segwise.settings import Settings

AS_OF = date(2026, 6, 30)
CHILD = """
import json, resource, sys, time
from dataclasses import replace
from pathlib import Path
from segwise.predict.score import score
from segwise.settings import Settings
work = Path(sys.argv[1])
settings = replace(Settings.from_env(), duckdb_path=work / "segwise.duckdb",
                   output_dir=work / "output")
t0 = time.perf_counter()
runs = score(settings, say=lambda m: None, models=(sys.argv[2],))
print(json.dumps({"seconds": time.perf_counter() - t0, "status": runs[0]["status"],
                  "detail": runs[0]["detail"], "rows": runs[0]["rows_scored"],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="segwise-bench-predict-"))
    settings = replace(Settings.from_env(), duckdb_path=work / "segwise.duckdb",
                       output_dir=work / "output")
    marker = work / f"generated-{args.customers}"
    if not marker.exists():
        from segwise.generate import generate
        from segwise.load import load_generated

        t0 = time.perf_counter()
        generate(settings.raw_dir, customers=args.customers, seed=1, as_of=AS_OF)
        load_generated(settings)
        print(f"generate + load      {time.perf_counter() - t0:8.1f} s")
        marker.touch()
    from segwise.pipeline import step_build_marts

    t0 = time.perf_counter()
    step_build_marts(settings, "generated", AS_OF, say=lambda m: None)
    build_s = time.perf_counter() - t0
    print(f"dbt build (marts)    {build_s:8.1f} s   (baseline)")
    total = 0.0
    for model in ("churn", "clv", "clusters"):
        out = subprocess.run([sys.executable, "-c", CHILD, str(work), model],
                             capture_output=True, text=True, env=dict(os.environ), check=True)
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        total += figures["seconds"]
        print(f"score: {model:13} {figures['seconds']:8.1f} s   ratio to build "
              f"{figures['seconds'] / build_s:5.2f}   peak RSS {figures['peak_rss_mb']:7.0f} MB"
              f"   {figures['rows']:>10,} customers ({figures['status']})")
    print(f"score: all models    {total:8.1f} s   ratio to build {total / build_s:5.2f}")
    print(f"workdir: {work}")


if __name__ == "__main__":
    main()
