"""Benchmark: sync a 100k-member segment into each provider's sandbox, then 1 % churn, then
a change of one personal field (``rfm_segment``) for 1 % of the members.

Prints, per provider and phase: operations sent, requests, 429s, wall time, and the ratio
to the rate-limit-bound minimum time — the larger of
  * requests × round-trip latency / the provider's connection cap (Mailchimp: 10), and
  * the time the provider's published request windows need for that many requests
    (HubSpot 100 per 10 s; Klaviyo per endpoint 10/s + 150/min, profiles 75/s + 700/min).
The sandboxes add ``--latency-ms`` to every reply (a WAN round trip); without it the
single-threaded sandbox's own CPU time, not the client, would be what is measured.
Not a test: it prints figures.

    .venv/bin/python scripts/benchmark_sync.py [--members 100000] [--churn 0.01]
        [--providers mailchimp,klaviyo,sendgrid,hubspot] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import duckdb
import httpx

from segwise.ops import record_build, record_validation
from segwise.settings import Settings
from segwise.sync.destinations.base import HttpDestination
from segwise.sync.destinations.hubspot import HubSpotDestination
from segwise.sync.destinations.klaviyo import KlaviyoDestination
from segwise.sync.destinations.mailchimp import MailchimpDestination
from segwise.sync.destinations.sendgrid import SendGridDestination
from segwise.sync.engine import sync_segment
from segwise.sync.guards import GuardConfig
from segwise.sync.sandboxes import hubspot, klaviyo, mailchimp, sendgrid
from segwise.sync.sandboxes.common import SandboxServer

KEY = "bench-0000-us21"
PROVIDERS = {  # sandbox app, adapter, a cheap authenticated GET for the latency probe
    "mailchimp": (mailchimp.create_app, lambda url: MailchimpDestination(url, KEY, "bench"),
                  ("/3.0/lists/bench/segments", {"auth": ("x", KEY)})),
    "klaviyo": (klaviyo.create_app, lambda url: KlaviyoDestination(url, KEY),
                ("/api/lists", {"headers": {"Authorization": f"Klaviyo-API-Key {KEY}",
                                            "revision": min(klaviyo.REVISIONS)}})),
    "sendgrid": (sendgrid.create_app, lambda url: SendGridDestination(url, KEY),
                 ("/v3/marketing/lists", {"headers": {"Authorization": f"Bearer {KEY}"}})),
    "hubspot": (hubspot.create_app, lambda url: HubSpotDestination(url, KEY),
                ("/crm/v3/lists/object-type-id/0-1/name/none",
                 {"headers": {"Authorization": f"Bearer {KEY}"}})),
}


def build_warehouse(path: Path, members: int, churn: float, seed: int,
                    fields: bool = True) -> None:
    """A minimal warehouse with the tables the sync reads: one segment of ``members``."""
    con = duckdb.connect(str(path))
    for schema in ("marts", "segments", "activation", "ops", "segmentation"):
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
    # the consent model the sync reads for withdrawals (nobody withdrew here)
    con.execute("""create or replace table marts.customer_consent as
        select customer_id, email, false as must_unsubscribe from marts.dim_customers""")
    # one personal field, sent with every member (a field change is an update)
    con.execute("""create or replace table marts.customer_profile as
        select customer_id, 'Loyal' as rfm_segment from marts.dim_customers""")
    con.execute(f"""create or replace table segmentation.segment_destinations as
        select 'bench' as segment_name, d as destination,
               '{"rfm_segment" if fields else ""}' as fields
        from (values ('mailchimp'), ('klaviyo'), ('sendgrid'), ('hubspot')) t(d)""")
    offset = int(members * churn) if seed else 0
    con.execute(f"""create or replace view segments.bench as
        select customer_id, 'bench' as segment_name, 'r' as reason, 'v' as rule_version,
               false as is_holdout, now() as computed_at
        from marts.dim_customers
        where cast(customer_id as integer) >= {offset}
          and cast(customer_id as integer) < {offset + members}""")
    con.execute("""create or replace view activation.sync_esp_members as
        select 'bench|' || s.customer_id as membership_id, 'bench' as segment_name,
               s.customer_id, c.email, c.first_name, c.last_name, true as has_email_consent,
               null::varchar as exclusion_reason, true as is_sendable
        from segments.bench as s join marts.dim_customers as c using (customer_id)""")
    con.close()


def rate_bound(dest: HttpDestination, by_path: dict[str, int], latency: float) -> float:
    """The least time the provider's limits allow for these requests (see the docstring)."""
    requests = sum(by_path.values())
    per_key: dict[str, int] = {}
    for key, n in by_path.items():
        method, _, path = key.partition(" ")
        bucket = dest.rate_key(method, path)
        per_key[bucket] = per_key.get(bucket, 0) + n
    windows = max(((math.ceil(n / limit) - 1) * window for key, n in per_key.items()
                   for limit, window in dest.rate_limits_for(key)), default=0.0)
    return max(requests * latency / dest.max_concurrency, windows)


def probe_latency(create_app, latency_ms: int, path: str, kwargs: dict) -> float:
    """Median round trip of a minimal call, on a twin sandbox (so the probe does not use
    up the rate-limit windows of the one being measured)."""
    with SandboxServer(create_app(KEY)) as twin:
        httpx.post(f"{twin.url}/_sandbox/faults", json={"delay_ms": latency_ms})
        samples = []
        for _ in range(5):
            t = time.perf_counter()
            httpx.get(f"{twin.url}{path}", **kwargs)
            samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def bench(provider: str, args, work: Path) -> None:
    create_app, make_dest, (probe_path, probe_kwargs) = PROVIDERS[provider]
    settings = replace(Settings.from_env(), duckdb_path=work / provider / "segwise.duckdb")
    settings.duckdb_path.parent.mkdir(parents=True)
    with SandboxServer(create_app(KEY)) as server:
        httpx.post(f"{server.url}/_sandbox/faults", json={"delay_ms": args.latency_ms})
        phases = (("initial load", 0), (f"{args.churn:.0%} churn", 1),
                  (f"{args.churn:.0%} field", 2))[:3 if args.fields else 2]
        for label, seed in phases:
            if seed < 2:
                build_warehouse(settings.duckdb_path, args.members, args.churn, seed=seed,
                                fields=args.fields)
            else:  # the same members; one field changes for 1 % of them
                con = duckdb.connect(str(settings.duckdb_path))
                step = max(1, round(1 / args.churn))
                con.execute("update marts.customer_profile set rfm_segment = 'Champions' "
                            f"where cast(customer_id as integer) % {step} = 0")
                con.close()
            record_build(settings, f"bench{seed}", "bench", None, 1, 0)
            record_validation(settings, f"bench{seed}", True, [])
            latency = probe_latency(create_app, args.latency_ms, probe_path, probe_kwargs)
            httpx.post(f"{server.url}/_sandbox/requests/reset", json={})
            dest = make_dest(server.url)
            t0 = time.perf_counter()
            result = sync_segment(settings, "bench", dest, mode="mirror",
                                  guards=GuardConfig(max_size_change_pct=1000))
            wall = time.perf_counter() - t0
            log = httpx.get(f"{server.url}/_sandbox/requests").json()
            bound = rate_bound(dest, log["by_path"], latency)
            ops = result.sent_adds + result.sent_removes + result.sent_updates
            print(f"{provider:9} {label:12} status={result.status} ops={ops:,} "
                  f"(+{result.succeeded_adds:,} / -{result.succeeded_removes:,} / "
                  f"~{result.succeeded_updates:,}) "
                  f"requests={result.requests:,} 429s={result.rate_limited} "
                  f"in-flight≤{log['peak_in_flight']} wall={wall:.2f}s bound={bound:.2f}s "
                  f"ratio={wall / bound if bound else 0:.2f}", flush=True)
            dest.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--churn", type=float, default=0.01)
    parser.add_argument("--providers", default="mailchimp,klaviyo,sendgrid,hubspot")
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--fields", action=argparse.BooleanOptionalAction, default=True,
                        help="send one personal field (rfm_segment) with every member; "
                             "--no-fields is the workload before personal fields existed")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="segwise-sync-bench-"))
    print(f"{args.members:,} members, {args.churn:.0%} churn, {args.latency_ms} ms per reply")
    for provider in args.providers.split(","):
        bench(provider.strip(), args, work)
    print(f"workdir: {work}")


if __name__ == "__main__":
    main()
