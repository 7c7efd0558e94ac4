"""Benchmark: generate N customers (default 1,000,000), load them, build, and run the two
peers beside the build — printed side by side with the ratios. Not a test: it prints
figures.

    .venv/bin/python scripts/benchmark_generate.py --customers 1000000 [--workdir DIR]

Steps, each in its own process so its wall time, CPU time and peak memory (the resident
set of the process and all its children, sampled every 0.1 s) are its own:

* generate and load (``segwise load``-equivalent of the generator's Parquet files);
* the full build: ``segwise build`` (dbt build of the marts, the scoring step, dbt build
  of the profile, segments and activation — models, seeds, data and unit tests);
* the single-query limit: scripts/peers/limit.sql, one DuckDB statement computing the
  marts' RFM and engagement figures and three segments straight from raw, under the same
  DuckDB memory limit and threads as the build;
* the pandas peer: scripts/peer_pandas.py, the same figures in pandas from the Parquet files.

* a new batch of 0.1 % more events (scripts/append_events.py), the trigger refresh
  (``segwise refresh --select tag:trigger``: the incremental event models judge the batch,
  the event stream, trigger segments and bookkeeping are rebuilt; its slowest dbt nodes
  are printed), then ``segwise build`` again (the event models now judge nothing new).

A test (tests/python/test_benchmark_peers.py) checks both peers compute what the marts
compute.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
AS_OF = date(2026, 6, 30)


@dataclass
class Step:
    name: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    output: str


def measured(name: str, cmd: list[str], env: dict[str, str]) -> Step:
    """Run ``cmd``; its wall time, CPU time (it and its children) and peak RSS (the sum
    over its process tree, sampled)."""
    before = os.times()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.1)
    wall = time.perf_counter() - start
    after = os.times()
    output = proc.stdout.read()
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed ({proc.returncode}):\n{output[-4000:]}")
    cpu = (after.children_user - before.children_user) + (after.children_system
                                                          - before.children_system)
    return Step(name, wall, cpu, peak / 2**20, output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="segwise-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SEGWISE_DUCKDB_PATH=str(work / "segwise.duckdb"),
               SEGWISE_OUTPUT_DIR=str(work / "output"), DBT_SEND_ANONYMOUS_USAGE_STATS="False")
    py = sys.executable
    from segwise.settings import Settings
    from segwise.warehouse import duckdb_config

    config = duckdb_config(Settings.from_env())
    results = work / "dbt_target" / "run_results.json"
    steps = [
        measured("generate + load", [py, "-c", (
            "from datetime import date; from segwise.settings import Settings; "
            "from segwise.generate import generate; from segwise.load import load_generated; "
            "s = Settings.from_env(); "
            f"generate(s.raw_dir, customers={args.customers}, seed=1, as_of=date.fromisoformat('{AS_OF}')); "
            "load_generated(s)")], env),
        measured("full build (segwise build)", [py, "-m", "segwise.cli", "build",
                                                "--as-of", AS_OF.isoformat()], env),
        measured("single-query limit", [py, "-c", (
            f"import sys; sys.path.insert(0, {str(HERE)!r}); import peer_duckdb; "
            "from datetime import date; from pathlib import Path; "
            f"print(peer_duckdb.run(Path({str(work / 'segwise.duckdb')!r}), "
            f"date.fromisoformat('{AS_OF}'), Path({str(work / 'peer_limit.duckdb')!r}), "
            f"memory_limit={config['memory_limit']!r}, threads={config['threads']}))")], env),
        measured("pandas peer", [py, str(HERE / "peer_pandas.py"), str(work / "raw"),
                                 "--as-of", AS_OF.isoformat()], env),
        measured("append 0.1 % new events", [py, str(HERE / "append_events.py"),
                                             str(work / "segwise.duckdb")], env),
        measured("trigger refresh", [py, "-m", "segwise.cli", "refresh", "--select",
                                     "tag:trigger", "--as-of", AS_OF.isoformat()], env),
    ]
    # the refresh's own nodes, before the rebuild overwrites dbt's run_results
    trigger_nodes = sorted(((r["unique_id"].split(".", 2)[-1], r["execution_time"])
                            for r in json.loads(results.read_text())["results"]),
                           key=lambda x: -x[1])
    steps.append(measured("rebuild (segwise build)", [py, "-m", "segwise.cli", "build",
                                                       "--as-of", AS_OF.isoformat()], env))
    by = {s.name: s for s in steps}
    build = by["full build (segwise build)"]
    limit, pandas_peer = by["single-query limit"], by["pandas peer"]
    print(f"{args.customers:,} customers; machine: "
          f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GB RAM, "
          f"{platform.processor() or platform.machine()}; DuckDB memory_limit "
          f"{config['memory_limit']}, threads {config['threads']}")
    print(f"{'step':<30}{'wall s':>9}{'CPU s':>9}{'peak RSS MB':>13}")
    for s in steps:
        print(f"{s.name:<30}{s.wall_s:>9.1f}{s.cpu_s:>9.1f}{s.peak_rss_mb:>13.0f}")
    print(f"build / single-query limit   {build.wall_s / limit.wall_s:9.2f}  (target <= 3)")
    print(f"pandas peer / build          {pandas_peer.wall_s / build.wall_s:9.2f}  (target >= 3)")
    rebuild, trigger = by["rebuild (segwise build)"], by["trigger refresh"]
    print(f"trigger refresh / full build {trigger.wall_s / build.wall_s:9.2f}  (target <= 0.05)")
    print(f"rebuild after 0.1 % / full build {rebuild.wall_s / build.wall_s:5.2f}  (the event "
          "models incremental, all else rebuilt)")
    print("slowest nodes of the trigger refresh (dbt run_results, s):")
    for name, seconds in trigger_nodes[:10]:
        print(f"  {name:<60}{seconds:8.1f}")
    print(f"workdir: {work}")


if __name__ == "__main__":
    main()
