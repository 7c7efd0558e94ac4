"""Wiring: destinations from the environment, local sandboxes, and syncing many segments.

Secrets come from the environment (or, under Airflow, from a connection exported to the
environment) and are never printed: adapters' repr hides them and summaries carry only
counts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx

from segwise import progress
from segwise.errors import ConfigurationError
from segwise.ops import assert_gate_open
from segwise.settings import Settings
from segwise.sync.destinations.base import DestinationError, HttpDestination
from segwise.sync.destinations.hubspot import HubSpotDestination
from segwise.sync.destinations.klaviyo import KlaviyoDestination
from segwise.sync.destinations.mailchimp import MailchimpDestination
from segwise.sync.destinations.sendgrid import SendGridDestination
from segwise.sync.destinations.webhook import WebhookDestination
from segwise.sync.engine import SyncResult, sync_segment
from segwise.sync.guards import GuardConfig
from segwise.warehouse import CATALOG, SEGMENT_DESTINATIONS, connect, exclusive

DESTINATIONS = ("mailchimp", "klaviyo", "hubspot", "sendgrid")
LOCAL_DESTINATIONS = ("file", "ad_audience")
SANDBOX_KEYS = {"mailchimp": "sandbox-0000000000000000-us21",
                "klaviyo": "pk_sandbox_000000000000",
                "hubspot": "pat-sandbox-0000-0000",
                "sendgrid": "SG.sandbox.0000"}


class ConfigError(ConfigurationError, RuntimeError):
    pass


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"set {name} (API keys come from the environment or an Airflow "
                          "connection, never from files)")
    return value


def destination_from_env(name: str, base_url: str | None = None,
                         batch_size: int | None = None,
                         concurrency: int | None = None) -> HttpDestination:
    """An adapter configured from ``SEGWISE_<DESTINATION>_*`` variables. Optional:
    ``SEGWISE_<DESTINATION>_CONCURRENCY`` (requests in flight, up to the provider's cap)
    and, for HubSpot, ``SEGWISE_HUBSPOT_RATE_LIMIT`` (requests per 10 s: 190 on
    Professional/Enterprise), ``SEGWISE_<DESTINATION>_ACCOUNT`` (a label for the account,
    kept in the ledger's destination key; Mailchimp uses its list id)."""
    env_conc = os.environ.get(f"SEGWISE_{name.upper()}_CONCURRENCY")
    opts = {"batch_size": batch_size,
            "concurrency": concurrency or (int(env_conc) if env_conc else None),
            "account": os.environ.get(f"SEGWISE_{name.upper()}_ACCOUNT", "")}
    if name == "mailchimp":
        key = _env("SEGWISE_MAILCHIMP_API_KEY")
        match = re.search(r"-([a-z]+\d+)$", key)
        url = base_url or os.environ.get("SEGWISE_MAILCHIMP_URL") or (
            f"https://{match.group(1)}.api.mailchimp.com" if match else None)
        if not url:
            raise ConfigError("the Mailchimp API key has no data-centre suffix (…-us21): "
                              "set SEGWISE_MAILCHIMP_URL")
        return MailchimpDestination(url, key, os.environ.get("SEGWISE_MAILCHIMP_LIST_ID",
                                                             "segwise"), **opts)
    if name == "klaviyo":
        key = _env("SEGWISE_KLAVIYO_API_KEY")
        url = base_url or os.environ.get("SEGWISE_KLAVIYO_URL") or "https://a.klaviyo.com"
        return KlaviyoDestination(url, key, **opts)
    if name == "hubspot":
        token = _env("SEGWISE_HUBSPOT_API_KEY")
        url = base_url or os.environ.get("SEGWISE_HUBSPOT_URL") or "https://api.hubapi.com"
        per_10s = os.environ.get("SEGWISE_HUBSPOT_RATE_LIMIT")
        return HubSpotDestination(url, token, **opts, rate_limits=(
            ((int(per_10s), 10.0),) if per_10s else None))
    if name == "sendgrid":
        key = _env("SEGWISE_SENDGRID_API_KEY")
        url = base_url or os.environ.get("SEGWISE_SENDGRID_URL") or "https://api.sendgrid.com"
        return SendGridDestination(url, key, **opts)
    if name == "webhook":
        return WebhookDestination(base_url or _env("SEGWISE_WEBHOOK_URL"),
                                  _env("SEGWISE_WEBHOOK_SECRET"), **opts)
    raise ConfigError(f"unknown destination {name!r} (known: "
                      f"{', '.join((*DESTINATIONS, 'webhook'))})")


@dataclass(frozen=True)
class SegmentSyncSettings:
    """How one segment syncs to one destination, as built into the warehouse
    (``segmentation.segment_catalog`` and ``segmentation.segment_destinations``)."""

    segment: str
    priority: int
    min_size: int  # the larger of the segment's and the destination's floor
    mode: str
    guards: GuardConfig


def sync_settings(settings: Settings, destination: str,
                  segments: list[str] | None = None) -> list[SegmentSyncSettings]:
    """The segments to sync to ``destination`` (those whose definition lists it, or the
    given ones; files and ad audiences: every segment), in priority order, with the mode
    and guard thresholds their definitions declared — read from the built warehouse, so a
    sync always matches the build it pushes, never a YAML edited since."""
    every = destination in LOCAL_DESTINATIONS
    with connect(settings) as con:
        rows = con.execute(f"""
            select c.segment_name, c.priority, c.min_size, d.destination is not null,
                   d.sync_mode, d.max_removal_pct, d.max_size_change_pct, d.min_size
            from {CATALOG} as c
            left join {SEGMENT_DESTINATIONS} as d
                on d.segment_name = c.segment_name and d.destination = ?
            order by c.priority, c.segment_name""", [destination]).fetchall()
    known = {r[0] for r in rows}
    unknown = sorted(set(segments or []) - known)
    if unknown:
        raise ConfigError(f"unknown segment(s) {unknown}")
    out = []
    for name, priority, min_size, listed, mode, removal, change, floor in rows:
        if (name in segments) if segments else (listed or every):
            base = GuardConfig()
            guards = replace(base, **{k: float(v) for k, v in (
                ("max_removal_pct", removal), ("max_size_change_pct", change))
                if v is not None})
            out.append(SegmentSyncSettings(name, priority, max(min_size, floor or 0),
                                           mode or "upsert", guards))
    return out


@contextmanager
def local_sandboxes(names: tuple[str, ...] = DESTINATIONS,
                    state_dir: Path | None = None) -> Iterator[dict[str, str]]:
    """Start the local sandbox servers and point the environment at them. With
    ``state_dir``, each sandbox keeps its state there between runs (like a real ESP)."""
    from segwise.sync.sandboxes.common import SandboxServer
    from segwise.sync.sandboxes.hubspot import create_app as hubspot_app
    from segwise.sync.sandboxes.klaviyo import create_app as klaviyo_app
    from segwise.sync.sandboxes.mailchimp import create_app as mailchimp_app
    from segwise.sync.sandboxes.sendgrid import create_app as sendgrid_app

    def state_file(n: str) -> Path | None:
        return state_dir / f"{n}.json" if state_dir else None

    apps = {"mailchimp": lambda: mailchimp_app(SANDBOX_KEYS["mailchimp"],
                                                state_file("mailchimp")),
            "klaviyo": lambda: klaviyo_app(SANDBOX_KEYS["klaviyo"], state_file("klaviyo")),
            "hubspot": lambda: hubspot_app(SANDBOX_KEYS["hubspot"], state_file("hubspot")),
            "sendgrid": lambda: sendgrid_app(SANDBOX_KEYS["sendgrid"], state_file("sendgrid"))}
    servers = {n: SandboxServer(apps[n]()) for n in names}
    saved = dict(os.environ)
    try:
        for n, server in servers.items():
            server.__enter__()
            os.environ[f"SEGWISE_{n.upper()}_API_KEY"] = SANDBOX_KEYS[n]
            os.environ[f"SEGWISE_{n.upper()}_URL"] = server.url
        yield {n: s.url for n, s in servers.items()}
    finally:
        for server in servers.values():
            server.__exit__(None, None, None)
            server.app.state.save()
        os.environ.clear()
        os.environ.update(saved)


def sync_line(destination: str, segment: str, mode: str, result) -> str:  # noqa: ANN001
    """One line per segment synced, with its mode: the counts that are not zero, and why
    it was blocked."""
    extra = [f"{label} {value:,}" for label, value in (
        ("rejected", result.rejected_adds), ("suppressed", result.suppressed),
        ("unsubscribed", result.revoked)) if value]
    return (f"  {destination}/{segment} ({mode}): {result.status} +{result.succeeded_adds:,} "
            f"-{result.succeeded_removes:,}" + "".join(f", {e}" for e in extra)
            + (f" — {result.guard_outcome}" if result.guard_outcome != "passed" else ""))


def sync_all(settings: Settings, destination: str, segments: list[str] | None = None,
             mode: str | None = None, dry_run: bool = False, force: bool = False,
             sandbox: bool = False, say: Callable[[str], None] = print,
             batch_size: int | None = None, concurrency: int | None = None
             ) -> list[SyncResult]:
    """Sync every segment whose definition lists ``destination`` (or the given ones).

    Each segment syncs with the mode and guard thresholds its definition declares for
    this destination (``destinations: [{name: mailchimp, mode: mirror}]``), as built into
    ``segmentation.segment_destinations``; ``mode`` overrides the declared mode for this
    run. Files and ad audiences (``file``, ``ad_audience``) take every segment."""
    results = []
    state_dir = settings.duckdb_path.parent / "sandboxes"
    with exclusive(settings):  # settings read under the lock: never mid-build
        plan = sync_settings(settings, destination, segments)
        with (local_sandboxes((destination,), state_dir)
              if sandbox and destination not in LOCAL_DESTINATIONS else nullcontext()):
            dest = (local_destination(settings, destination)
                    if destination in LOCAL_DESTINATIONS else
                    destination_from_env(destination, batch_size=batch_size,
                                         concurrency=concurrency))
            try:
                with progress.task(f"sync {destination}", len(plan)) as update:
                    for done, seg in enumerate(plan, 1):
                        chosen = mode or seg.mode
                        result = sync_segment(settings, seg.segment, dest,
                                              mode=chosen, dry_run=dry_run,
                                              force=force, guards=seg.guards,
                                              min_size=seg.min_size)
                        say(sync_line(destination, seg.segment, chosen, result))
                        results.append(result)
                        update(done)
            finally:
                dest.close()
    return results


def local_destination(settings: Settings, name: str):
    """The file export (``<output>/exports/file``) or the ad audiences
    (``<output>/exports/ad_audiences``)."""
    from segwise.sync.destinations.files import AdAudienceDestination, FileDestination

    root = settings.output_dir / "exports"
    if name == "file":
        return FileDestination(root / "file")
    return AdAudienceDestination(root / "ad_audiences")


@dataclass
class ExportReport:
    destination: str
    segment_name: str
    status: str
    members: int
    added: int
    removed: int
    outputs: list[Path] = field(default_factory=list)
    guard_outcome: str = "passed"
    run_id: str = ""  # its row in ops.sync_runs


@dataclass
class ExportResult:
    validation_run_id: str  # the validation whose passing opened the gate
    reports: list[ExportReport] = field(default_factory=list)


def export(settings: Settings, segments: list[str] | None = None,
           destinations: tuple[str, ...] = ("file",), force: bool = False,
           say: Callable[[str], None] = lambda _m: None) -> ExportResult:
    """Files and ad audiences through the one engine. Refuses as a whole (``GateClosed``)
    unless the latest validation passed after the latest build; then each segment goes
    through the engine like any sync (its own guards, the ledger, ``ops.sync_runs``)."""
    with connect(settings) as con:
        validation_run_id = assert_gate_open(con)
    out = ExportResult(validation_run_id)
    for name in destinations:
        for r in sync_all(settings, name, segments, force=force, say=say):
            out.reports.append(ExportReport(
                name, r.plan.segment, r.status, r.plan.desired, r.succeeded_adds,
                r.succeeded_removes, list(r.outputs), r.guard_outcome, r.run_id))
    return out


@dataclass
class DestinationOutcome:
    """What one destination did in a multi-destination sync: its per-segment results, or
    why it stopped (the results before the failure are in ``ops.sync_runs``)."""

    destination: str
    results: list[SyncResult] = field(default_factory=list)
    error: str | None = None


def listed_segments(settings: Settings, destination: str, among: list[str]) -> list[str]:
    """Of the segments ``among``, those whose definitions list ``destination``."""
    listed = {p.segment for p in sync_settings(settings, destination)}
    return [s for s in among if s in listed]


def sync_destinations(settings: Settings, names: tuple[str, ...] | list[str],
                      say: Callable[[str], None] = print, **options) -> list[DestinationOutcome]:
    """``sync_all`` for each destination in turn. A destination that gives up (its API
    keeps refusing, a key is missing) is reported and the next one still syncs: one
    provider's outage never holds back the others."""
    out = []
    for name in names:
        try:
            out.append(DestinationOutcome(name, sync_all(settings, name, say=say, **options)))
        except (ConfigError, DestinationError, ValueError, httpx.HTTPError) as exc:
            say(f"  {name}: FAILED — {exc} (re-run to resume)")
            out.append(DestinationOutcome(name, error=str(exc)))
    return out


def forget_everywhere(settings: Settings, emails: list[str],
                      destinations: tuple[str, ...] = DESTINATIONS, sandbox: bool = False,
                      reason: str = "") -> list:
    """Erase ``emails`` from every destination (see ``segwise.sync.erasure``)."""
    from segwise.sync.erasure import forget

    state_dir = settings.duckdb_path.parent / "sandboxes"
    with (exclusive(settings),
          local_sandboxes(destinations, state_dir) if sandbox else nullcontext()):
        dests = [destination_from_env(name) for name in destinations]
        try:
            return forget(settings, emails, dests, reason)
        finally:
            for d in dests:
                d.close()
