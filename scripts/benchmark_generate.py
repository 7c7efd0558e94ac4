"""Benchmark: generate N customers (default 1,000,000), load them into DuckDB and run
dbt build; print rows, wall time per step and peak memory. Not a test: it prints figures.

    .venv/bin/python scripts/benchmark_generate.py --customers 1000000 [--skip-build]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

from segwise.generate import generate
from segwise.load import load_generated
from segwise.pipeline import step_build
from segwise.settings import Settings


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--dirty-rate", type=float, default=0.0)
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="segwise-bench-"))
    settings = replace(Settings.from_env(), duckdb_path=work / "segwise.duckdb",
                       output_dir=work / "output")
    as_of = date(2026, 6, 30)

    t0 = time.perf_counter()
    res = generate(settings.raw_dir, customers=args.customers, seed=1, as_of=as_of,
                   dirty_rate=args.dirty_rate)
    t_gen = time.perf_counter() - t0
    print(f"generate   {t_gen:8.1f} s   peak RSS {peak_rss_mb():8.0f} MB")
    for table, rows in res.rows.items():
        print(f"  {table:16} {rows:>14,}")
    t0 = time.perf_counter()
    load_generated(settings)
    print(f"load       {time.perf_counter() - t0:8.1f} s   peak RSS {peak_rss_mb():8.0f} MB")
    if not args.skip_build:
        t0 = time.perf_counter()
        step_build(settings, "generated", as_of, say=lambda m: None)
        print(f"dbt build  {time.perf_counter() - t0:8.1f} s   peak RSS (incl. dbt) "
              f"{peak_rss_mb():8.0f} MB")
    print(f"workdir: {work}")


if __name__ == "__main__":
    main()
