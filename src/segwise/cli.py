"""segwise command line: generate, load, build, validate, export, run."""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from segwise.errors import ConfigurationError
from segwise.settings import Settings

# never print locals in tracebacks: they may hold API keys
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="Warehouse-native customer segmentation.")
# piped output (CI logs, `make run | tee`) gets room for the summary tables
console = Console() if sys.stdout.isatty() else Console(width=120)
err = Console(stderr=True)

DATASET_HELP = ("landed (build on the raw tables already loaded, nothing is loaded), "
                "generated (demo generator), cdnow or online_retail (real data in "
                "../shared/data)")


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _say(msg: str) -> None:
    console.print(f"[cyan]›[/cyan] {msg}")


def _fail(msg: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {msg}")
    raise typer.Exit(code)


@app.command("generate")
def generate_cmd(
    customers: Annotated[int, typer.Option(help="number of customers")] = 5_000,
    seed: Annotated[int, typer.Option(help="random seed (same seed → same data)")] = 42,
    as_of: Annotated[str | None, typer.Option("--as-of", help="last day of data, YYYY-MM-DD "
                                              "(default: yesterday, UTC)")] = None,
    dirty_rate: Annotated[float, typer.Option(help="share of extra dirty rows per table")] = 0.0,
    out: Annotated[Path | None, typer.Option(help="output folder for Parquet")] = None,
) -> None:
    """Write seeded demo raw tables as Parquet (chunked; scales to millions of customers)."""
    from segwise.generate import generate

    settings = Settings.from_env()
    try:
        result = generate(out or settings.raw_dir, customers=customers, seed=seed,
                          as_of=_date(as_of), dirty_rate=dirty_rate,
                          progress=lambda i, n: _say(f"chunk {i}/{n}"))
    except ValueError as exc:
        _fail(str(exc))
    for table, rows in result.rows.items():
        console.print(f"{table:16} {rows:>12,}")
    console.print(f"written to {result.out_dir}")


LOAD_DATASET_HELP = ("generated (the demo generator's Parquet), cdnow or online_retail "
                     "(real data in ../shared/data)")


@app.command("load")
def load_cmd(
    dataset: Annotated[str, typer.Option(help=LOAD_DATASET_HELP)] = "generated",
    raw_dir: Annotated[Path | None, typer.Option(help="Parquet folder for 'generated'")] = None,
    mapping: Annotated[Path | None, typer.Option(
        help="your own CSV / Parquet / NDJSON files, described by a mapping file (see the "
             "README, 'Bring your own data')")] = None,
    mode: Annotated[str, typer.Option(help="with --mapping: replace (all tables, all or "
                                      "nothing) or append (files not loaded before)")]
    = "replace",
) -> None:
    """Load raw tables into the warehouse: replace them all in one transaction (re-running
    is safe), or with --mapping --mode append add the files not loaded before."""
    from segwise.load import load_dataset, load_generated, load_mapping_file
    from segwise.load.datasets import DatasetNotFound

    settings = Settings.from_env()
    try:
        if mapping is not None:
            report = load_mapping_file(settings, mapping, mode)
            for table, rows in report.rows.items():
                console.print(f"raw.{table:16} {rows:>12,}  (+{report.loaded.get(table, 0):,}"
                              f", rejected {report.rejected.get(table, 0):,})")
            for path in report.skipped_files:
                console.print(f"already loaded, skipped: {path}")
            if any(report.rejected.values()):
                console.print("rows that did not parse are in ops.load_rejections "
                              f"(load_id '{report.load_id}')")
            return
        counts = (load_generated(settings, raw_dir) if dataset == "generated"
                  else load_dataset(settings, dataset))
    except (DatasetNotFound, ConfigurationError, ValueError) as exc:
        _fail(str(exc))
    for table, rows in counts.items():
        console.print(f"raw.{table:16} {rows:>12,}")


@app.command("build")
def build_cmd(
    as_of: Annotated[str | None, typer.Option("--as-of", help="as-of date YYYY-MM-DD")] = None,
    dataset: Annotated[str, typer.Option(help="selects the source timezone")] = "generated",
    full_refresh: Annotated[bool, typer.Option(
        "--full-refresh", help="rebuild the incremental event models from raw (after "
        "changing the event vocabularies, bounds or source time zone)")] = False,
) -> None:
    """Run dbt build (models, seeds, data and unit tests): the marts, the scoring step
    (churn, CLV, clusters), then the profile, segment views and activation feed. The event
    base models are incremental: a build judges only the raw rows landed since the last."""
    from segwise.pipeline import step_build
    from segwise.transform.dbt import DbtError

    try:
        step_build(Settings.from_env(), dataset, _date(as_of), _say, full_refresh=full_refresh)
    except DbtError as exc:
        _fail(str(exc))


@app.command("refresh")
def refresh_cmd(
    select: Annotated[str, typer.Option(help="segments: tag:<tag> and/or names")] = "tag:trigger",
    as_of: Annotated[str | None, typer.Option("--as-of", help="as-of date YYYY-MM-DD "
                                              "(default: now)")] = None,
    sync: Annotated[bool, typer.Option("--sync", help="then validate and sync the refreshed "
                                       "segments to the providers they list")] = False,
    sandbox: Annotated[bool, typer.Option("--sandbox", help="sync into local sandboxes")] = False,
) -> None:
    """The trigger refresh (the segwise_triggers DAG): the events landed since the last
    build, then only the selected segments and their bookkeeping; the marts stay as the
    last build left them."""
    from segwise.pipeline import step_refresh, step_validate
    from segwise.sync.runner import DESTINATIONS, listed_segments, sync_all
    from segwise.transform.dbt import DbtError

    settings = Settings.from_env()
    try:
        names = step_refresh(settings, select, _date(as_of), _say)
    except (DbtError, ValueError) as exc:
        _fail(str(exc))
    if not sync:
        return
    if not step_validate(settings, _say).success:
        _fail("validation failed: nothing synced (segwise validate shows why)", code=2)
    for destination in DESTINATIONS:
        mine = listed_segments(settings, destination, names)
        if mine:
            sync_all(settings, destination, segments=mine, sandbox=sandbox, say=_say)


@app.command("score")
def score_cmd(
    as_of: Annotated[str | None, typer.Option("--as-of", help="as-of date YYYY-MM-DD (the "
                                              "one the marts were built at)")] = None,
    dataset: Annotated[str, typer.Option(help="selects the source timezone")] = "generated",
) -> None:
    """Re-run the scoring step on the marts as built (e.g. after changing cluster_method),
    then rebuild what reads the scores; model cards in <output>/model_cards/."""
    from segwise.pipeline import step_build_segments, step_score
    from segwise.transform.dbt import DbtError

    settings = Settings.from_env()
    try:
        runs = step_score(settings, _say)
        step_build_segments(settings, dataset, _date(as_of), _say)
    except DbtError as exc:
        _fail(str(exc))
    for r in runs:
        console.print(f"{r['model']:9} {r['status']:8} {r['card_path']}")


@app.command("validate")
def validate_cmd() -> None:
    """Run the Great Expectations checkpoint and build Data Docs; non-zero exit on failure."""
    from segwise.pipeline import step_validate

    result = step_validate(Settings.from_env(), _say)
    for o in result.failed:
        err.print(f"[red]✗[/red] {o.suite}.{o.batch}: {o.expectation}({o.column}) {o.detail}")
    if result.data_docs:
        console.print(f"Data Docs: {result.data_docs}")
    if not result.success:
        raise typer.Exit(1)


@app.command("export")
def export_cmd(
    ad_audience: Annotated[bool, typer.Option("--ad-audience", help="also write SHA-256 "
                                              "hashed emails for ad platforms")] = False,
    force: Annotated[bool, typer.Option("--force", help="override blocking guards")] = False,
) -> None:
    """Export every segment (members + added/removed) — only after a passing validation."""
    from segwise.ops import GateClosed
    from segwise.pipeline import step_export

    try:
        result = step_export(Settings.from_env(), _say, ad_audience=ad_audience, force=force)
    except GateClosed as exc:
        _fail(f"export refused: {exc}", code=2)
    for r in result.reports:
        console.print(f"{r.destination:12} {r.segment_name:32} {r.members:>8,} "
                      f"(+{r.added:,} / -{r.removed:,}) {r.status}"
                      + (f" — {r.guard_outcome}" if r.guard_outcome != "passed" else ""))
    if any(r.status in ("blocked", "failed") for r in result.reports):
        _fail("some segments were not exported (guards or errors above): fix the data or "
              "re-run with --force", code=4)


@app.command("run")
def run_cmd(
    dataset: Annotated[str, typer.Option(help=DATASET_HELP)] = "generated",
    customers: Annotated[int, typer.Option(help="customers to generate")] = 5_000,
    seed: Annotated[int, typer.Option(help="generator seed")] = 42,
    as_of: Annotated[str | None, typer.Option("--as-of", help="as-of date YYYY-MM-DD")] = None,
    dirty_rate: Annotated[float, typer.Option(help="generator dirt rate")] = 0.0,
    sync_sandboxes: Annotated[bool, typer.Option("--sync-sandboxes", help="then sync the "
                                                 "segments into the local ESP sandboxes")] = False,
    lead_in_days: Annotated[int | None, typer.Option(
        help="first build as of this many days earlier, so the membership history starts "
             "there and campaigns and holdouts since can be measured (default: 14 for "
             "generated data, else 0)")] = None,
) -> None:
    """generate (or load --dataset, or take what has landed: --dataset landed) → dbt build
    → validate → export, then a summary."""
    from segwise.generate.generator import LEAD_IN_DAYS
    from segwise.load import LANDED
    from segwise.load.datasets import DATASETS, DatasetNotFound
    from segwise.pipeline import reader_location, run
    from segwise.transform.dbt import DbtError

    if dataset not in ("generated", LANDED) and dataset not in DATASETS:
        _fail(f"unknown dataset {dataset!r}: {DATASET_HELP}")
    settings = Settings.from_env()
    try:
        summary = run(settings, dataset=dataset, customers=customers, seed=seed,
                      as_of=_date(as_of), dirty_rate=dirty_rate, say=_say,
                      sync_sandboxes=sync_sandboxes,
                      lead_in_days=(LEAD_IN_DAYS if dataset == "generated" else 0)
                      if lead_in_days is None else lead_in_days)
    except (DbtError, DatasetNotFound, ConfigurationError, ValueError) as exc:
        _fail(str(exc))
    _print_summary(summary)
    console.print(f"BI tools (read-only): {reader_location(settings)}")
    if not summary.validation_success:
        raise typer.Exit(1)
    if any(x["status"] == "failed" for x in summary.syncs):
        raise typer.Exit(5)


def _print_summary(summary) -> None:  # noqa: ANN001
    t = Table(title="rows loaded")
    t.add_column("raw table")
    t.add_column("rows", justify="right")
    for k, v in summary.rows_loaded.items():
        t.add_row(k, f"{v:,}")
    console.print(t)
    q = Table(title="rows quarantined")
    for col in ("source table", "reason", "rows"):
        q.add_column(col, justify="right" if col == "rows" else "left")
    for table, reason, n in summary.quarantined:
        q.add_row(table, reason, f"{n:,}")
    console.print(q)
    s = Table(title="segments")
    for col in ("segment", "members", "added", "removed"):
        s.add_column(col, justify="left" if col == "segment" else "right")
    exported = {e["segment"]: e for e in summary.exports}
    for name, n in summary.segment_sizes.items():
        e = exported.get(name, {})
        members = ("n/a" if name in summary.segments_not_applicable else f"{n:,}")
        s.add_row(name, members, str(e.get("added", "–")), str(e.get("removed", "–")))
    console.print(s)
    for name, why in summary.segments_not_applicable.items():
        console.print(f"  n/a: {name} cannot apply to this data ({why})")
    if summary.models:
        m = Table(title="models (scoring step; cards in output/model_cards)")
        for col in ("model", "status", "customers", "headline"):
            m.add_column(col, justify="right" if col == "customers" else "left")
        for r in summary.models:
            m.add_row(r["model"], r["status"], f"{r['rows_scored'] or 0:,}",
                      r["headline"] or r["detail"] or "")
        console.print(m)
    verdict = "[green]passed[/green]" if summary.validation_success else "[red]FAILED[/red]"
    console.print(f"validation: {verdict}")
    for f in summary.validation_failures:
        console.print(f"  [red]✗[/red] {f}")
    if summary.data_docs:
        console.print(f"Data Docs: {summary.data_docs}")
    if summary.export_refused:
        console.print(f"[red]export refused:[/red] {summary.export_refused}")
    elif summary.exports:
        console.print(f"exports: {Path(summary.exports[0]['path']).parent}")
    if summary.syncs:
        per: dict[str, dict[str, int]] = {}
        for x in summary.syncs:
            agg = per.setdefault(x["destination"], {"segments": 0, "added": 0, "removed": 0,
                                                    "rejected": 0, "suppressed": 0,
                                                    "blocked": 0, "failed": 0, "requests": 0})
            agg["segments"] += x["segment"] != "*"
            agg["blocked"] += x["status"] == "blocked"
            agg["failed"] += x["status"] == "failed"
            for k in ("added", "removed", "rejected", "suppressed", "requests"):
                agg[k] += x.get(k, 0)
        d = Table(title="ESP sync (local sandboxes)")
        cols = ("segments", "added", "removed", "rejected", "suppressed", "blocked", "failed",
                "requests")
        d.add_column("destination")
        for col in cols:
            d.add_column(col, justify="right")
        for name, agg in per.items():
            d.add_row(name, *(f"{agg[k]:,}" for k in cols))
        console.print(d)
    console.print(f"report: [bold]{summary.report_path}[/bold]")


@app.command("sync")
def sync_cmd(
    destination: Annotated[str, typer.Option(
        help="mailchimp | klaviyo | hubspot | sendgrid | webhook | file | ad_audience | "
             "all (the four ESPs)")
    ] = "mailchimp",
    segment: Annotated[list[str] | None, typer.Option(help="segment(s); default: every "
                                                      "segment listing the destination")] = None,
    mode: Annotated[str | None, typer.Option(
        help="upsert | mirror | add_only (default: the mode each segment declares for the "
             "destination, else upsert)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="plan and print, send nothing")] = False,
    force: Annotated[bool, typer.Option("--force", help="override blocking guards")] = False,
    sandbox: Annotated[bool, typer.Option("--sandbox", help="sync into a local sandbox server "
                                          "started for this run")] = False,
    batch_size: Annotated[int | None, typer.Option(help="members per request (default: the "
                                                   "provider's maximum)")] = None,
    concurrency: Annotated[int | None, typer.Option(help="batches in flight at once (default: "
                                                    "the provider's cap)")] = None,
) -> None:
    """Push segment membership changes to an ESP: diff-based, consent-safe, guarded. With
    `--destination all`, a provider that fails is reported and the others still sync
    (exit 5 names the failed ones)."""
    from segwise.sync.runner import DESTINATIONS, sync_destinations

    names = DESTINATIONS if destination == "all" else (destination,)
    outcomes = sync_destinations(Settings.from_env(), names, say=_say, segments=segment or None,
                                 mode=mode, dry_run=dry_run, force=force, sandbox=sandbox,
                                 batch_size=batch_size, concurrency=concurrency)
    results = [r for o in outcomes for r in o.results]
    for r in results:
        if r.status == "dry_run":
            sample = ", ".join(r.plan.adds["customer_id"].head(5))
            console.print(f"{r.plan.segment}: would add {len(r.plan.adds)}, remove "
                          f"{len(r.plan.removes)} (e.g. {sample})")
    failed = [o for o in outcomes if o.error is not None]
    for o in failed:
        err.print(f"[red]error:[/red] {o.destination}: {o.error}")
    if failed:
        err.print(f"failed: {', '.join(o.destination for o in failed)} — the others synced; "
                  "run the same command again to resume")
        raise typer.Exit(5)
    if any(r.status == "blocked" for r in results):
        err.print("some syncs were blocked by guards: fix the data or re-run with --force")
        raise typer.Exit(4)


@app.command("forget")
def forget_cmd(
    email: Annotated[list[str], typer.Argument(help="address(es) to erase")],
    destination: Annotated[str, typer.Option(
        help="mailchimp | klaviyo | hubspot | sendgrid | all")] = "all",
    sandbox: Annotated[bool, typer.Option("--sandbox", help="erase from the local sandboxes")
                       ] = False,
    reason: Annotated[str, typer.Option(help="why (kept with the request), e.g. a ticket id")
                      ] = "",
) -> None:
    """Erase people from every ESP for good (GDPR), with a receipt per destination; syncs
    never push them again. Only a SHA-256 of each address is kept."""
    from segwise.sync.runner import DESTINATIONS, ConfigError, forget_everywhere

    names = DESTINATIONS if destination == "all" else (destination,)
    try:
        receipts = forget_everywhere(Settings.from_env(), email, names, sandbox, reason)
    except (ConfigError, ValueError) as exc:
        _fail(str(exc))
    t = Table(title=f"erasure receipts (request {receipts[0].request_id})")
    for col in ("destination", "address (sha256)", "status", "reference"):
        t.add_column(col)
    for r in receipts:
        t.add_row(r.destination, r.email_sha256[:16] + "…", r.status, r.reference or "")
    console.print(t)
    if any(r.status == "failed" for r in receipts):
        err.print("some destinations failed: run the same command again to retry them")
        raise typer.Exit(6)


experiments_app = typer.Typer(no_args_is_help=True,
                              help="Imported experiments: per-arm results and lift by segment.")
app.add_typer(experiments_app, name="experiments")


@experiments_app.command("import")
def experiments_import(
    name: Annotated[str, typer.Argument(help="the experiment: hillstrom (the MineThatData "
                                        "e-mail test in ../shared/data)")],
) -> None:
    """Import an experiment into the warehouse's experiments schema and rebuild the
    measurement marts (measurement.experiment_arm_results, measurement.experiment_lift);
    running it again replaces the experiment's rows."""
    from segwise.pipeline import step_import_experiment
    from segwise.transform.dbt import DbtError

    try:
        step_import_experiment(Settings.from_env(), name, say=_say)
    except (ConfigurationError, DbtError) as exc:
        _fail(str(exc))


segments_app = typer.Typer(no_args_is_help=True,
                           help="Segment definitions: list, show, validate, compile, preview, diff.")
app.add_typer(segments_app, name="segments")


DEFS_HELP = "folder of segment definitions (default: segments/)"


def _definitions(folder: Path | None = None):
    from segwise.segments import SegmentDefinitionError, definitions

    settings = Settings.from_env()
    try:
        return settings, definitions(settings.project_dir, folder)
    except SegmentDefinitionError as exc:
        _fail(str(exc))


def _find(segs, name: str):
    for seg in segs:
        if seg.name == name:
            return seg
    _fail(f"unknown segment {name!r} (known: {', '.join(s.name for s in segs)})")


contract_app = typer.Typer(no_args_is_help=True,
                           help="The raw contract: the tables and columns segwise reads.")
app.add_typer(contract_app, name="contract")


@contract_app.command("render")
def contract_render_cmd(
    check: Annotated[bool, typer.Option("--check", help="only say what is stale (exit 1)")]
    = False,
) -> None:
    """Write the raw contract (segwise/raw_schema.py) into the dbt sources YAML and the
    README's "Bring your own data" table."""
    from segwise.contract import render
    from segwise.settings import project_root

    root = project_root()
    changed = render(root, check=check)
    for path in changed:
        console.print(f"{'stale' if check else 'written'}: {path.relative_to(root)}")
    if check and changed:
        raise typer.Exit(1)
    if not changed:
        console.print("the raw contract is rendered and current")


@segments_app.command("list")
def segments_list() -> None:
    """List segment definitions by priority."""
    _, segs = _definitions()
    t = Table()
    for col in ("priority", "segment", "owner", "min size", "holdout %", "tags", "file"):
        t.add_column(col)
    for seg in sorted(segs, key=lambda s: (s.priority, s.name)):
        t.add_row(str(seg.priority), seg.name, seg.owner, str(seg.min_size),
                  f"{seg.holdout_pct:g}", ", ".join(seg.tags), seg.file)
    console.print(t)


@segments_app.command("show")
def segments_show(name: str) -> None:
    """Show one definition, its rule_version and its compiled SQL."""
    import yaml

    from segwise.segments.compiler import compile_segment

    _, segs = _definitions()
    seg = _find(segs, name)
    console.print(f"[bold]{seg.name}[/bold] ({seg.file}) rule_version {seg.rule_version}")
    console.print(yaml.safe_dump(seg.raw, sort_keys=False))
    console.print(compile_segment(seg), markup=False, highlight=False)


@segments_app.command("validate")
def segments_validate(
    definitions: Annotated[Path | None, typer.Option(help=DEFS_HELP)] = None,
) -> None:
    """Check every definition (names, traits, types, events, windows, references, cycles)."""
    _, segs = _definitions(definitions)
    console.print(f"{len(segs)} segment definitions are valid")


@segments_app.command("compile")
def segments_compile() -> None:
    """Validate and (re)write the compiled dbt models."""
    from segwise.segments import SegmentDefinitionError, compile_project

    try:
        segs = compile_project(Settings.from_env().project_dir)
    except SegmentDefinitionError as exc:
        _fail(str(exc))
    console.print(f"compiled {len(segs)} segments into models/segments/compiled/")


@segments_app.command("preview")
def segments_preview(
    name: str,
    sample: Annotated[int, typer.Option(help="rows")] = 10,
    definitions: Annotated[Path | None, typer.Option(help=DEFS_HELP)] = None,
) -> None:
    """Size and sample members (with reasons) of a working-tree definition; writes nothing."""
    from segwise.segments.preview import preview
    from segwise.transform.dbt import DbtError

    settings, segs = _definitions(definitions)
    try:
        result = preview(settings, _find(segs, name), sample)
    except DbtError as exc:
        _fail(str(exc))
    console.print(f"[bold]{name}[/bold]: {result.size:,} members")
    t = Table()
    for col in ("customer_id", "holdout", "reason"):
        t.add_column(col)
    for row in result.sample.itertuples():
        t.add_row(row.customer_id, "yes" if row.is_holdout else "", row.reason)
    console.print(t)


@segments_app.command("diff")
def segments_diff(
    name: Annotated[str | None, typer.Argument(help="one segment (default: all)")] = None,
    sample: Annotated[int, typer.Option(help="members shown per change")] = 3,
    exit_code: Annotated[bool, typer.Option("--exit-code", help="exit 3 when anything "
                                            "changes (for CI on pull requests)")] = False,
    definitions: Annotated[Path | None, typer.Option(help=DEFS_HELP)] = None,
) -> None:
    """Membership under the working-tree definitions vs the last build: +added / -removed."""
    from segwise.segments.preview import diff
    from segwise.transform.dbt import DbtError

    settings, segs = _definitions(definitions)
    chosen = [_find(segs, name)] if name else segs
    try:
        diffs = diff(settings, chosen, report_deleted=name is None)
    except DbtError as exc:
        _fail(str(exc))
    changed = False
    for d in diffs:
        status = "new" if not d.built else ("deleted" if d.rule_version_after is None else "")
        mark = "[yellow]~[/yellow]" if d.changed else " "
        console.print(f"{mark} {d.segment:36} {d.before:>8,} → {d.after:<8,} "
                      f"[green]+{len(d.added):,}[/green] [red]-{len(d.removed):,}[/red] {status}")
        if d.rule_version_before != d.rule_version_after and d.rule_version_after:
            console.print(f"    rule_version {d.rule_version_before} → {d.rule_version_after}")
        for row in d.added.head(sample).itertuples():
            console.print(f"    [green]+ {row.customer_id}[/green]  {row.reason}", markup=True)
        for row in d.removed.head(sample).itertuples():
            console.print(f"    [red]- {row.customer_id}[/red]  was: {row.reason}")
        changed = changed or d.changed
    if exit_code and changed:
        raise typer.Exit(3)


def main() -> None:
    """The ``segwise`` entry point: the commands, plus one clear message (exit 7) when
    another run holds the warehouse."""
    from segwise.warehouse import WarehouseBusy

    try:
        app()
    except WarehouseBusy as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(7)


if __name__ == "__main__":
    main()
