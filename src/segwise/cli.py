"""segwise command line: generate, load, build, validate, export, run."""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from segwise.errors import ConfigurationError
from segwise.settings import Settings

# never print locals in tracebacks: they may hold API keys
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="Warehouse-native customer segmentation.")
# piped output (CI logs, `make run | tee`) gets room for the summary tables
console = Console()  # width: the terminal, else $COLUMNS, else 80
err = Console(stderr=True)

DATASET_HELP = ("landed (build on the raw tables already loaded, nothing is loaded), "
                "generated (demo generator), cdnow or online_retail (real data in "
                "../shared/data)")


DEBUG = {"on": False}


@app.callback()
def _options(debug: Annotated[bool, typer.Option(
        "--debug", help="show the traceback of an unexpected error")] = False) -> None:
    """Warehouse-native customer segmentation."""
    DEBUG["on"] = debug
    if console.is_terminal:
        from segwise import progress

        progress.listen(_progress_bars())


def _progress_bars():  # noqa: ANN202
    """Rich progress bars for the long steps (only in a terminal; they vanish when done)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bars = Progress(TextColumn("{task.description}"), BarColumn(bar_width=20),
                    MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                    transient=True)

    def listener(description: str, total: int | None):  # noqa: ANN202
        if not bars.live.is_started:
            bars.start()
        task_id = bars.add_task(description, total=total)

        def update(completed: int, new_total: int | None = None) -> None:
            if completed < 0:  # the step is done
                bars.remove_task(task_id)
                if not bars.tasks:
                    bars.stop()
                return
            bars.update(task_id, completed=completed,
                        **({"total": new_total} if new_total else {}))
        return update
    return listener


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
        console.print(f"{r['model']:9} {r['status']:8} {r['card_path']}", soft_wrap=True)


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


def _table(title: str, headers: list[str], rows: list[list[str]],
           right: set[int] = frozenset(), wrap: set[int] = frozenset()) -> None:
    """One way to print a table: no vertical rules (every column fits 80 terminal
    columns; long text wraps at words in the ``wrap`` columns, headers are never cut),
    numbers right-aligned, and "none" instead of an empty table."""
    if not rows:
        console.print(f"[bold]{title}[/bold]: none")
        return
    t = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
              collapse_padding=True, title_justify="left")
    for i, h in enumerate(headers):
        t.add_column(h, justify="right" if i in right else "left",
                     no_wrap=i not in wrap, min_width=max(map(len, h.split())))
    for row in rows:
        t.add_row(*row)
    console.print(t)


def _print_summary(summary) -> None:  # noqa: ANN001
    from segwise.report.format import count, members_text

    _table("rows loaded", ["raw table", "rows"],
           [[k, count(v)] for k, v in summary.rows_loaded.items()], right={1})
    _table("rows quarantined", ["source table", "reason", "rows"],
           [[t, r, count(n)] for t, r, n in summary.quarantined], right={2})
    exported = {e["segment"]: e for e in summary.exports}
    rows = []
    for name, n in summary.segment_sizes.items():
        e = exported.get(name, {})
        members = ("n/a" if name in summary.segments_not_applicable
                   else members_text(n, summary.segment_holdouts.get(name, 0)))
        rows.append([name, members, count(e.get("added")), count(e.get("removed"))])
    _table("segments", ["segment", "members (of which holdout)", "added", "removed"], rows,
           right={1, 2, 3}, wrap={1})
    for name, why in summary.segments_not_applicable.items():
        console.print(f"  n/a: {name} cannot apply to this data set ({why})")
    empty = [n for n, size in summary.segment_sizes.items()
             if size == 0 and n not in summary.segments_not_applicable]
    if empty:
        console.print(f"  empty (no customer matches today): {', '.join(empty)}")
    if summary.models:
        _table("models (scoring step; cards in output/model_cards)",
               ["model", "status", "customers", "headline"],
               [[r["model"], r["status"], count(r["rows_scored"] or 0),
                 r["headline"] or r["detail"] or ""] for r in summary.models],
               right={2}, wrap={3})
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
        _print_syncs(summary.syncs)
    console.print(f"report: [bold]{summary.html_report or summary.report_path}[/bold]")
    if summary.html_report:
        console.print(f"run summary (Markdown): {summary.report_path}")


SYNC_COLUMNS = ("lists", "added", "removed", "rejected", "suppressed", "blocked", "failed")


def _print_syncs(syncs: list[dict]) -> None:
    from segwise.report.format import count

    per: dict[str, dict[str, int]] = {}
    for x in syncs:
        agg = per.setdefault(x["destination"], dict.fromkeys((*SYNC_COLUMNS, "requests"), 0))
        agg["lists"] += x["segment"] != "*"
        agg["blocked"] += x["status"] == "blocked"
        agg["failed"] += x["status"] == "failed"
        for k in ("added", "removed", "rejected", "suppressed", "requests"):
            agg[k] += x.get(k, 0)
    _table("ESP sync (local sandboxes)", ["destination", *SYNC_COLUMNS],
           [[name, *(count(agg[k]) for k in SYNC_COLUMNS)] for name, agg in per.items()],
           right=set(range(1, len(SYNC_COLUMNS) + 1)))
    console.print("  lists: segments synced; API requests: " + ", ".join(
        f"{name} {count(agg['requests'])}" for name, agg in per.items()))


@app.command("report")
def report_cmd(
    out: Annotated[Path | None, typer.Option(help="folder to write report.html to "
                                             "(default: the output folder)")] = None,
) -> None:
    """Write the self-contained HTML segment report (charts inline, no network needed)
    from what the warehouse holds: sizes over time, overlaps, RFM, quarantine, validation,
    sync status, models and measurement."""
    from segwise.report.html import write_html_report
    from segwise.warehouse import connect, table_exists

    settings = Settings.from_env()
    if not settings.duckdb_path.exists() and settings.dbt_target == "duckdb":
        _fail(f"no warehouse at {settings.duckdb_path}: run `segwise run` (or set "
              "SEGWISE_DUCKDB_PATH) first")
    with connect(settings, read_only=True) as con:
        if not table_exists(con, "segmentation", "segment_sizes"):
            _fail("the warehouse has no segments yet: run `segwise run` or `segwise build`")
    path = write_html_report(settings, out_dir=out)
    console.print(f"report: [bold]{path}[/bold] ({path.stat().st_size / 1e6:.1f} MB, "
                  "self-contained)")


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
    _table(f"erasure receipts (request {receipts[0].request_id})",
           ["destination", "address (sha256)", "status", "reference"],
           [[r.destination, r.email_sha256[:16] + "…", r.status, r.reference or ""]
            for r in receipts], wrap={3})
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
    _table("segment definitions (tags and file: segwise segments show <name>)",
           ["priority", "segment", "min size", "holdout", "owner"],
           [[str(seg.priority), seg.name, f"{seg.min_size:,}",
             f"{seg.holdout_pct:g} %" if seg.holdout_pct else "–", seg.owner]
            for seg in sorted(segs, key=lambda s: (s.priority, s.name))],
           right={0, 2, 3}, wrap={4})


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
    _table("sample of members", ["customer_id", "holdout", "reason"],
           [[row.customer_id, "yes" if row.is_holdout else "", row.reason]
            for row in result.sample.itertuples()], wrap={2})


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
    another run holds the warehouse, and one line (exit 1) for any unexpected error —
    its traceback only with ``--debug``."""
    from segwise.warehouse import WarehouseBusy

    try:
        app()  # usage errors and typer.Exit end here with their own message and code
    except WarehouseBusy as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(7)
    except Exception as exc:  # noqa: BLE001 - one line and what to do, not a traceback
        if DEBUG["on"] or "--debug" in sys.argv:
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        err.print(f"[red]error:[/red] {type(exc).__name__}: {first} (the same command with "
                  "--debug shows the traceback)", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
