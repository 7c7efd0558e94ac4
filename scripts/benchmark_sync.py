"""Benchmark: sync a 100k-member segment into the Mailchimp sandbox, then 1 % churn.

Prints operations sent, requests, wall time, and the ratio to the sandbox's
rate-limit-bound minimum time (Mailchimp: no per-second cap, 10 simultaneous connections,
500 members per call — so the bound is requests × the sandbox's median latency / 10).
Not a test: it prints figures.

    .venv/bin/python scripts/benchmark_sync.py [--members 100000] [--churn 0.01]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import duckdb
import httpx

from segwise.ops import record_build, record_validation
from segwise.settings import Settings
from segwise.sync.destinations.mailchimp import MailchimpDestination
from segwise.sync.engine import sync_segment
from segwise.sync.guards import GuardConfig
from segwise.sync.sandboxes.common import SandboxServer
from segwise.sync.sandboxes.mailchimp import create_app

KEY = "bench-0000-us21"


def build_warehouse(path: Path, members: int, churn: float, seed: int) -> None:
    """A minimal warehouse with the tables the sync reads: one segment of ``members``."""
    con = duckdb.connect(str(path))
    for schema in ("marts", "segments", "ops"):
        con.execute(f"create schema if not exists {schema}")
    con.execute(f"""create or replace table marts.dim_customers as
        select lpad(cast(i as varchar), 8, '0') as customer_id,
               'user' || i || '@bench.example' as email, 'F' as first_name, 'L' as last_name,
               true as has_email_consent
        from range({int(members * (1 + churn))}) t(i)""")
    con.execute("""create or replace table marts.customer_engagement as
        select customer_id, null::timestamp as last_unsubscribe_at,
               null::timestamp as last_bounce_at, null::timestamp as last_complaint_at
        from marts.dim_customers""")
    offset = int(members * churn) if seed else 0
    con.execute(f"""create or replace view segments.bench as
        select customer_id, 'bench' as segment_name, 'r' as reason, 'v' as rule_version,
               false as is_holdout, now() as computed_at
        from marts.dim_customers
        where cast(customer_id as integer) >= {offset}
          and cast(customer_id as integer) < {offset + members}""")
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--churn", type=float, default=0.01)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="segwise-sync-bench-"))
    settings = replace(Settings.from_env(), duckdb_path=work / "segwise.duckdb")
    build_warehouse(settings.duckdb_path, args.members, args.churn, seed=0)
    record_build(settings, "bench", "bench", None, 1, 0)
    record_validation(settings, "bench", True, [])
    with SandboxServer(create_app(KEY)) as server:
        for label, seed in (("initial load", 0), (f"{args.churn:.0%} churn", 1)):
            if seed:
                build_warehouse(settings.duckdb_path, args.members, args.churn, seed=1)
                record_build(settings, "bench2", "bench", None, 1, 0)
                record_validation(settings, "bench2", True, [])
            # latency of one minimal authenticated call, to derive the lower bound
            samples = []
            for _ in range(20):
                t = time.perf_counter()
                httpx.get(f"{server.url}/3.0/lists/bench/segments", auth=("x", KEY))
                samples.append(time.perf_counter() - t)
            latency = statistics.median(samples)
            dest = MailchimpDestination(server.url, KEY, "bench")
            t0 = time.perf_counter()
            result = sync_segment(settings, "bench", dest, mode="mirror",
                                  guards=GuardConfig(max_size_change_pct=1000))
            wall = time.perf_counter() - t0
            ops = result.sent_adds + result.sent_removes
            bound = dest.stats.requests * latency / 10
            print(f"{label:14} status={result.status} ops={ops:,} "
                  f"(+{result.succeeded_adds:,} / -{result.succeeded_removes:,}) "
                  f"requests={dest.stats.requests:,} 429s={dest.stats.rate_limited} "
                  f"wall={wall:.2f}s bound={bound:.3f}s ratio={wall / bound if bound else 0:.1f}")
            dest.close()
    print(f"workdir: {work}")


if __name__ == "__main__":
    main()
