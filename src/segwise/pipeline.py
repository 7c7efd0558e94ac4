"""The whole job: data → dbt build → validate → export, with a summary.

Each step is a function the CLI and the Airflow DAG call; ``run`` chains them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path

from segwise import progress
from segwise.errors import ConfigurationError
from segwise.generate import generate
from segwise.lineage import failed_relations, load_manifest, relation_name
from segwise.load import LANDED, landed_counts, load_dataset, load_generated
from segwise.measure.experiments import import_experiment
from segwise.ops import GateClosed, last_build, record_build, utcnow
from segwise.pipeline_vars import dbt_vars, default_as_of
from segwise.report.html import write_html_report
from segwise.report.summary import RunSummary, collect_warehouse_facts, write_report
from segwise.segments import compile_project
from segwise.settings import Settings
from segwise.transform.dbt import PREDICTIONS, DbtError, build
from segwise.validate.gate import ValidationResult, validate
from segwise.warehouse import connect, exclusive, publish, table_exists

Say = Callable[[str], None]


def step_load(settings: Settings, dataset: str, customers: int, seed: int,
              as_of: date | None, dirty_rate: float, say: Say = print) -> dict[str, int]:
    with exclusive(settings):  # generated files and raw tables are the run's
        return _load(settings, dataset, customers, seed, as_of, dirty_rate, say)


def _load(settings: Settings, dataset: str, customers: int, seed: int,
          as_of: date | None, dirty_rate: float, say: Say) -> dict[str, int]:
    if dataset == LANDED:
        say("building on the raw tables already landed (nothing loaded or generated)")
        return landed_counts(settings, say)
    if dataset == "generated":
        say(f"generating {customers:,} customers (seed {seed}, dirty rate {dirty_rate})")
        with progress.task("generate", None) as update:
            generate(settings.raw_dir, customers=customers, seed=seed, as_of=as_of,
                     dirty_rate=dirty_rate, progress=update)
        return load_generated(settings)
    say(f"loading real data set {dataset} from {settings.shared_data_dir}")
    return load_dataset(settings, dataset)


def step_build(settings: Settings, dataset: str, as_of: date | None, say: Say = print,
               publish_for_readers: bool = True, full_refresh: bool = False) -> int:
    """Build the marts, score them, build what reads the scores (the segment views); when
    it succeeds, readers get the new state (``run`` publishes once, at its end, instead).
    The Airflow DAG runs the three as tasks of their own. ``full_refresh``: the incremental
    event models are rebuilt from raw."""
    with exclusive(settings):
        ok = step_build_marts(settings, dataset, as_of, say, full_refresh)
        step_score(settings, say)
        return step_build_segments(settings, dataset, as_of, say, ok, publish_for_readers)


def step_build_marts(settings: Settings, dataset: str, as_of: date | None,
                     say: Say = print, full_refresh: bool = False) -> int:
    """``dbt build`` of everything the scoring step reads (it excludes what reads the
    predictions). ``full_refresh`` rebuilds its incremental models (the event base models)
    from raw; the segments' history, built after scoring, is never refreshed away."""
    with exclusive(settings):
        segments = compile_project(settings.project_dir)
        say(f"compiled {len(segments)} segment definitions")
        ok = _build_phase(settings, dataset, as_of, say, "marts", 0, full_refresh)
        # not complete until the segment views are rebuilt on the new scores: recorded as
        # one failing node of unknown relations, the gate stays closed in between
        record_build(settings, uuid.uuid4().hex[:12], dataset, _text(as_of), ok, 1, None)
        return ok


def step_build_segments(settings: Settings, dataset: str, as_of: date | None,
                        say: Say = print, ok_before: int = 0,
                        publish_for_readers: bool = True) -> int:
    """``dbt build`` of what reads the scores (profile, segments, activation); records the
    complete build."""
    with exclusive(settings):
        ok = ok_before + _build_phase(settings, dataset, as_of, say, "segments", ok_before)
        record_build(settings, uuid.uuid4().hex[:12], dataset, _text(as_of), ok, 0)
        say(f"  {ok} nodes passed")
        if publish_for_readers:
            step_publish(settings, say)
        return ok


def _text(as_of: date | None) -> str | None:
    return as_of.isoformat() if as_of else None


def _build_phase(settings: Settings, dataset: str, as_of: date | None, say: Say,
                 phase: str, ok_before: int, full_refresh: bool = False) -> int:
    what = "everything the scoring step reads" if phase == "marts" else \
        "what reads the scores: profile, segments, activation"
    say(f"dbt build — {what} (models, seeds, data tests, unit tests)")
    select, exclude = (None, PREDICTIONS) if phase == "marts" else (PREDICTIONS, None)
    variables = dbt_vars(as_of, dataset)
    if phase == "segments":  # the phase that snapshots membership
        variables["membership_stamp"] = membership_stamp(settings, as_of)
    return _recorded_build(settings, dataset, as_of, variables, ok_before,
                           select=select, exclude=exclude, full_refresh=full_refresh)


SNAPSHOT = "snapshot.segwise.segment_membership_snapshot"


def as_of_end(as_of: date | None, margin: timedelta = timedelta(0)) -> datetime:
    """The as-of time as the ``as_of_ts`` macro computes it: the end of the as-of day, or
    (without one) now — plus ``margin``, for a check that must not undercount."""
    return datetime.combine(as_of, time()) + timedelta(days=1) if as_of else utcnow() + margin


def membership_stamp(settings: Settings, as_of: date | None) -> str:
    """The time a build stamps on the membership periods it opens and closes (dbt var
    ``membership_stamp``, macros/snapshot_get_time.sql): its as-of time — the end of the
    as-of day, or now — so the history is in the data's time and a campaign sent at t
    meets the membership that held at t; but strictly later than the snapshot's last
    stamp (a re-run of a day, or a backfill of an earlier day, gets the last stamp plus a
    second), so periods never run backwards and each run's changes are its own."""
    stamp = as_of_end(as_of)
    manifest = load_manifest(settings)
    node = (manifest or {}).get("nodes", {}).get(SNAPSHOT)
    relation = relation_name(node) if node else "snapshots.segment_membership_snapshot"
    schema, table = relation.split(".")
    with connect(settings, read_only=True) as con:
        if table_exists(con, schema, table):
            last = con.execute(f"select max(dbt_updated_at), max(dbt_valid_to) "
                               f"from {relation}").fetchall()[0]
            latest = max((t for t in last if t is not None), default=None)
            if latest is not None and stamp <= latest:
                stamp = latest + timedelta(seconds=1)
    return stamp.strftime("%Y-%m-%d %H:%M:%S.%f")


def _recorded_build(settings: Settings, dataset: str, as_of: date | None, variables: dict,
                    ok_before: int, **options) -> int:
    """``dbt build``; the nodes that passed. A failure is recorded first: it closes the gate
    until a good build and validation, for the segments built from what failed (for all
    of them if that is unknown)."""
    try:
        result = build(settings, variables, **options)
    except DbtError as exc:
        touched = failed_relations(load_manifest(settings), exc.failed_ids)
        record_build(settings, uuid.uuid4().hex[:12], dataset, _text(as_of), ok_before,
                     max(1, exc.failed_nodes), touched)
        raise
    return sum(1 for r in result.results if r.get("status") in ("success", "pass"))


# what an experiment import rebuilds: its staging, quarantine and measurement models
EXPERIMENT_MODELS = "path:models/staging/experiments+"


def step_import_experiment(settings: Settings, name: str, dataset: str = "landed",
                           as_of: date | None = None, say: Say = print) -> dict[str, int]:
    """Import a known experiment (``segwise.measure.experiments.KNOWN``) into the
    ``experiments`` schema, then rebuild what reads it (staging, quarantine, the
    measurement marts). Re-running replaces the experiment's rows."""
    from segwise.measure.experiments import KNOWN

    if name not in KNOWN:
        raise ConfigurationError(f"unknown experiment {name!r}: one of {', '.join(KNOWN)}")
    experiment = KNOWN[name](settings.shared_data_dir)
    with exclusive(settings):
        with connect(settings) as con:
            written = import_experiment(con, settings.project_dir, experiment)
        say(f"imported experiment {experiment.experiment_id}: "
            + ", ".join(f"{n:,} {t}" for t, n in written.items()))
        build(settings, dbt_vars(as_of, dataset), select=EXPERIMENT_MODELS)
    return written


def step_score(settings: Settings, say: Say = print) -> list[dict]:
    """The scoring step (churn, CLV, clusters) on the marts just built."""
    from segwise.predict.score import score

    say("scoring: churn propensity, CLV (BG/NBD + Gamma-Gamma), clusters")
    with exclusive(settings):
        return score(settings, say)


def step_publish(settings: Settings, say: Say = print) -> None:
    """Readers (BI) use the serving copy: publish the warehouse's complete state to it
    (DuckDB: the serving file; PostgreSQL: the ``bi_*`` schemas)."""
    with exclusive(settings):
        publish(settings)
    say(f"  published for readers: {reader_location(settings)}")


def reader_location(settings: Settings) -> str:
    """Where BI tools connect, in words."""
    from segwise.warehouse import describe, is_postgres, serving_path, serving_prefix

    if is_postgres(settings):
        prefix = serving_prefix()
        return f"schemas {prefix}<schema> (e.g. {prefix}segments) in {describe(settings)}"
    return str(serving_path(settings.duckdb_path))


def step_validate(settings: Settings, say: Say = print) -> ValidationResult:
    say("validating with Great Expectations")
    with exclusive(settings):
        result = validate(settings)
    say(f"  validation {'passed' if result.success else 'FAILED'}: "
        f"{len(result.outcomes)} expectations, {len(result.failed)} failed, "
        f"{len(result.not_applicable)} not applicable")
    return result


def step_export(settings: Settings, say: Say = print, ad_audience: bool = False,
                force: bool = False):
    """Files (and ad audiences) through the one activation engine (``sync.runner``)."""
    from segwise.sync.runner import export

    say("exporting segments")
    with exclusive(settings):
        return export(settings, destinations=("file", "ad_audience") if ad_audience
                      else ("file",), force=force)


def step_sync_sandboxes(settings: Settings, say: Say = print) -> list[dict]:
    """Sync every segment into the local ESP sandboxes (state kept beside the warehouse)."""
    from segwise.sync.runner import DESTINATIONS, sync_destinations

    out = []
    for outcome in sync_destinations(settings, DESTINATIONS, say=say, sandbox=True):
        if outcome.error is not None:
            out.append({"destination": outcome.destination, "segment": "*", "status": "failed",
                        "added": 0, "removed": 0, "rejected": 0, "suppressed": 0,
                        "guard": outcome.error})
        for r in outcome.results:
            out.append({"destination": outcome.destination, "segment": r.plan.segment,
                        "mode": r.plan.mode, "status": r.status, "added": r.succeeded_adds,
                        "removed": r.succeeded_removes, "rejected": r.rejected_adds,
                        "suppressed": r.suppressed, "requests": r.requests,
                        "guard": r.guard_outcome})
    return out


def run(settings: Settings, dataset: str = "generated", customers: int = 5_000,
        seed: int = 42, as_of: date | None = None, dirty_rate: float = 0.0,
        say: Say = print, sync_sandboxes: bool = False, lead_in_days: int = 0) -> RunSummary:
    """Returns the summary; ``summary.validation_success`` is False when the gate closed.
    The warehouse is held for the whole run: a second run refuses (``WarehouseBusy``).
    ``lead_in_days``: first build as of that many days before the as-of date, so the
    membership history starts then and what happened since (campaign sends, orders after
    entering a segment) can be measured (the demo's: ``generate.LEAD_IN_DAYS``)."""
    with exclusive(settings):
        return _run(settings, dataset, customers, seed, as_of, dirty_rate, say, sync_sandboxes,
                    lead_in_days)


def _run(settings: Settings, dataset: str, customers: int, seed: int, as_of: date | None,
         dirty_rate: float, say: Say, sync_sandboxes: bool, lead_in_days: int = 0
         ) -> RunSummary:
    as_of = as_of or default_as_of(dataset)
    summary = RunSummary(dataset=dataset, as_of=as_of.isoformat() if as_of else None)
    summary.rows_loaded = step_load(settings, dataset, customers, seed, as_of, dirty_rate, say)
    # a demo or data set load replaced raw whole: the incremental models start afresh
    full_refresh = dataset != LANDED
    if lead_in_days > 0 and as_of is not None:
        start = as_of - timedelta(days=lead_in_days)
        say(f"lead-in build as of {start.isoformat()} (the membership history starts there)")
        step_build(settings, dataset, start, say, publish_for_readers=False,
                   full_refresh=full_refresh)
        full_refresh = False
    step_build(settings, dataset, as_of, say, publish_for_readers=False,
               full_refresh=full_refresh)
    collect_warehouse_facts(settings, summary)
    val = step_validate(settings, say)
    summary.validation_success = val.success
    summary.validation_failures = [f"{o.suite}.{o.batch}: {o.expectation}({o.column}) {o.detail}"
                                   for o in val.failed]
    summary.validation_not_applicable = [f"{o.suite}.{o.batch}: {o.expectation}({o.column}) — "
                                         f"{o.detail}" for o in val.not_applicable]
    summary.segments_not_applicable = {o.column: o.detail for o in val.not_applicable
                                       if o.suite == "segments" and o.column}
    summary.data_docs = str(val.data_docs) if val.data_docs else None
    try:
        exported = step_export(settings, say)
        summary.exports = [
            {"segment": r.segment_name, "members": r.members, "added": r.added,
             "removed": r.removed,
             "path": str(r.outputs[0].parent) if r.outputs else f"not written: {r.status} "
                     f"({r.guard_outcome})"}
            for r in exported.reports
        ]
    except GateClosed as exc:
        summary.export_refused = str(exc)
        say(f"  export refused: {exc}")
    if sync_sandboxes:
        summary.syncs = step_sync_sandboxes(settings, say)
    step_publish(settings, say)  # the build and the run's audit (validation, exports, syncs)
    summary.html_report = str(step_report(settings, say))
    write_report(summary, settings.output_dir)
    return summary


def step_report(settings: Settings, say: Say = print) -> Path:
    """The self-contained HTML segment report, from what the warehouse holds now."""
    path = write_html_report(settings)
    say(f"  report written: {path}")
    return path




# what a trigger refresh rebuilds besides its segments: the recent event stream they read
# (int_customer_events_recent, over the incremental event models and the orders that end
# an abandoned cart; not the whole stream or the identity map), the
# quarantine (every landed row is staged or quarantined, a test checks) and the
# bookkeeping after segment_memberships (sizes, history, the activation feed)
REFRESH_UPSTREAM = "+int_customer_events_recent quarantine_rows+"
REFRESH_DOWNSTREAM = "segment_memberships+"
# the tests a refresh leaves to the daily build:
# - the staging models' generic tests, which scan every landed row of history (unique event
#   ids over all web and email events). It still runs the tests of what it rebuilds after
#   staging and the singular ones, e.g. that no raw row is lost
#   (tests/assert_every_raw_row_accounted_for.sql) — `path:` alone would exclude those too,
#   since dbt's indirect selection reaches tests that read staging;
# - the activation feed's generic tests: the feed is a view over the consent view, which
#   reads every withdrawal in raw, so each of them recomputes consent for every customer.
#   Its keys follow from segment_memberships' tests (the refresh runs them) and its
#   contract; what a refresh must prove of it — nobody sendable without an email and a
#   current consent — is the singular test, which it runs on the rows it replaced.
REFRESH_EXCLUDE = ("test_type:generic,path:models/staging",
                   "test_type:generic,path:models/activation")
# the order models: a refresh rebuilds them only when the orders changed (orders_current)
ORDER_MODELS = ("base_shop__orders", "base_shop__order_items", "int_orders_validated",
                "fct_orders")


def orders_current(con, manifest: dict | None, as_of: date | None) -> bool:
    """True when the last build's order models are what rebuilding them now would give, so
    a refresh may keep them: raw orders and order lines hold exactly the rows, load stamp
    by load stamp, that the base models judged; no order was judged 'future_timestamp'
    (it may be due by now); and fct_orders holds every valid order before the refresh's
    as-of time. Unknown (no manifest of the last build) is False: rebuild."""
    names = _relation_names(manifest)
    if names is None or not all(n in names for n in (*ORDER_MODELS, "shop.orders",
                                                      "shop.order_items")):
        return False

    def stamps(relation: str) -> list:
        return sorted(con.execute(f"select _loaded_at, count(*) from {relation} group by "
                                  "_loaded_at").fetchall(), key=repr)

    for source, base in (("shop.orders", "base_shop__orders"),
                         ("shop.order_items", "base_shop__order_items")):
        if stamps(names[source]) != stamps(names[base]):
            return False
    orders = names["base_shop__orders"]
    if con.execute(f"select count(*) from {orders} where _quarantine_reason = "
                   "'future_timestamp'").fetchone()[0]:
        return False
    # as_of_ts: the end of the as-of day, or the run's start (a margin later: conservative)
    cutoff = as_of_end(as_of, margin=timedelta(minutes=5))
    due = con.execute(f"select count(*) from {names['int_orders_validated']} where "
                      "_quarantine_reason is null and ordered_at < ?", [cutoff]).fetchone()[0]
    held = con.execute(f"select count(*) from {names['fct_orders']}").fetchone()[0]
    return due == held


def _relation_names(manifest: dict | None) -> dict[str, str] | None:
    """Models by name and sources by ``source.table``, to their ``schema.table``."""
    if not manifest:
        return None
    names = {n["name"]: relation_name(n) for n in manifest.get("nodes", {}).values()
             if n.get("resource_type") == "model"}
    names.update({f"{n['source_name']}.{n['name']}": relation_name(n)
                  for n in manifest.get("sources", {}).values()})
    return names


def refresh_segments(settings: Settings, select: str) -> list[str]:
    """The segments ``select`` names: ``tag:<tag>`` and/or segment names, comma- or
    space-separated (names come from the definitions, never from the caller's text)."""
    from segwise.segments import definitions

    known = definitions(settings.project_dir)
    chosen: list[str] = []
    for term in select.replace(",", " ").split():
        if term.startswith("tag:"):
            hit = [s.name for s in known if term[4:] in s.tags]
        else:
            hit = [s.name for s in known if s.name == term]
        if not hit:
            raise ValueError(f"--select {term!r} names no segment (segments/*.yml: tags and "
                             "names)")
        chosen += [h for h in hit if h not in chosen]
    return chosen


def step_refresh(settings: Settings, select: str = "tag:trigger", as_of: date | None = None,
                 say: Say = print) -> list[str]:
    """A trigger refresh: take the events landed since the last build (the incremental
    event models), rebuild the recent event stream, the selected segments and the bookkeeping
    after segment_memberships — whose other segments keep the last build's rows. The
    marts (profile, RFM, scores) stay as the last full build left them; readers' published
    copy is not rewritten; the order models are rebuilt only if the orders changed
    (``orders_current``); the staging models' and the feed's generic tests are left to the
    daily build (``REFRESH_EXCLUDE``). Returns the segments refreshed."""
    names = refresh_segments(settings, select)
    with exclusive(settings):
        with connect(settings, read_only=True) as con:
            previous = last_build(con)
            keep_orders = previous is not None and orders_current(
                con, load_manifest(settings), as_of)
        if previous is None:
            raise ValueError("nothing built yet: a refresh updates a built warehouse "
                             "(run segwise build first)")
        dataset = previous[1]  # the same source time zone as the build it updates
        say(f"refreshing {len(names)} segment(s): {', '.join(names)}"
            + ("; the orders are unchanged" if keep_orders else "; the orders changed"))
        variables = {**dbt_vars(as_of, dataset), "refresh_segments": names,
                     "membership_stamp": membership_stamp(settings, as_of)}
        exclude = [*REFRESH_EXCLUDE, *(ORDER_MODELS if keep_orders else ())]
        ok = _recorded_build(settings, dataset, as_of, variables, 0,
                             select=" ".join([REFRESH_UPSTREAM, *names, REFRESH_DOWNSTREAM]),
                             exclude=" ".join(exclude))
        record_build(settings, uuid.uuid4().hex[:12], dataset, _text(as_of), ok, 0)
        say(f"  {ok} nodes passed")
        return names


__all__ = ["DbtError", "refresh_segments", "run", "step_build", "step_export",
           "step_build_marts", "step_build_segments", "step_load", "step_refresh", "step_score",
           "step_validate"]
