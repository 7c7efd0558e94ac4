"""What the Airflow tasks do: thin wrappers over the pipeline steps, returning small
JSON-able dicts (XComs) and raising on failure so downstream tasks do not run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime

from segwise.errors import ConfigurationError
from segwise.load import LANDED
from segwise.pipeline import (
    step_build_marts,
    step_build_segments,
    step_export,
    step_load,
    step_report,
    step_score,
    step_validate,
)
from segwise.pipeline_vars import default_as_of
from segwise.settings import Settings


@contextmanager
def fail_fast() -> Iterator[None]:
    """A configuration error (a bad param, nothing landed, a missing key or column) can't
    be fixed by retrying: fail the task for good at once, with the message."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except ConfigurationError as exc:
        raise AirflowFailException(f"configuration error: {exc}") from exc


def _param_date(params: dict) -> date | None:
    """The param ``as_of`` as a date (None when empty)."""
    raw = (params.get("as_of") or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ConfigurationError(f"as_of must be a date YYYY-MM-DD, got {raw!r}") from exc


def _as_of(params: dict, logical_date: datetime | None) -> date | None:
    """The param ``as_of`` if given, else the run's logical date (the day its data
    interval covers), else the dataset's default (manual runs without a date)."""
    given = _param_date(params)
    if given:
        return given
    if logical_date is not None:
        return logical_date.date()
    return default_as_of(params.get("dataset", "landed"))


def load_task(params: dict, logical_date: datetime | None = None) -> dict:
    settings = Settings.from_env()
    dataset = params.get("dataset", "landed")
    as_of = _as_of(params, logical_date)
    rows = step_load(settings, dataset, int(params.get("customers", 5000)),
                     int(params.get("seed", 42)), as_of, float(params.get("dirty_rate", 0.0)))
    return {"dataset": dataset, "as_of": as_of.isoformat() if as_of else None, "rows": rows,
            # a demo or data set load replaced raw whole: the incremental models start afresh
            "full_refresh": bool(params.get("full_refresh")) or dataset != LANDED}


def _loaded_as_of(loaded: dict) -> date | None:
    return date.fromisoformat(loaded["as_of"]) if loaded.get("as_of") else None


def build_marts_task(loaded: dict) -> dict:
    nodes = step_build_marts(Settings.from_env(), loaded["dataset"], _loaded_as_of(loaded),
                             full_refresh=bool(loaded.get("full_refresh")))
    return {**loaded, "dbt_nodes_passed": nodes}


def score_task(built: dict) -> dict:
    runs = step_score(Settings.from_env())
    return {**built, "models": {r["model"]: r["status"] for r in runs}}


def build_segments_task(scored: dict) -> dict:
    nodes = step_build_segments(Settings.from_env(), scored["dataset"], _loaded_as_of(scored),
                                ok_before=int(scored.get("dbt_nodes_passed", 0)))
    return {**scored, "dbt_nodes_passed": nodes}


class ValidationFailed(RuntimeError):
    pass


def validate_task(built: dict) -> dict:
    """The gate. When it closes, the HTML report is written before the task fails (the
    report task after export will not run), so the failed expectations, with what they
    saw, can be read in the report of this run."""
    settings = Settings.from_env()
    result = step_validate(settings)
    if not result.success:
        failed = "; ".join(f"{o.suite}.{o.batch}: {o.expectation}({o.column})"
                           for o in result.failed[:10])
        report = step_report(settings)
        raise ValidationFailed(f"data gate closed, export will not run: {failed} "
                               f"(the report shows every result: {report})")
    return {**built, "validation_run_id": result.run_id,
            "data_docs": str(result.data_docs) if result.data_docs else None}


def export_task(validated: dict) -> dict:
    result = step_export(Settings.from_env())
    return {"validation_run_id": result.validation_run_id,
            "segments": {r.segment_name: {"members": r.members, "added": r.added,
                                          "removed": r.removed, "status": r.status}
                         for r in result.reports}}


def report_task(exported: dict) -> dict:
    """The HTML segment report of the run (output/report.html)."""
    return {**exported, "report": str(step_report(Settings.from_env()))}


class SyncBlocked(RuntimeError):
    pass


def _connection_env(destination: str) -> None:
    """Export an Airflow connection `segwise_<destination>` to the SEGWISE_* variables."""
    import os

    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(f"segwise_{destination}")
    except Exception:  # noqa: BLE001 - no connection: the environment is used as is
        return
    prefix = f"SEGWISE_{destination.upper()}"
    extra = conn.extra_dejson or {}
    if conn.password:
        os.environ[f"{prefix}_API_KEY"] = conn.password
    url = extra.get("base_url")
    if not url and conn.host:
        url = conn.host if "://" in conn.host else f"{conn.schema or 'https'}://{conn.host}"
        if conn.port:
            url += f":{conn.port}"
    if url:
        os.environ[f"{prefix}_URL"] = url
    if extra.get("list_id"):
        os.environ[f"{prefix}_LIST_ID"] = str(extra["list_id"])


def refresh_task(params: dict) -> dict:
    """The trigger refresh (segwise_triggers): events landed since the last build → the
    selected segments and their bookkeeping; then the gate validates them."""
    from segwise.pipeline import step_refresh

    with fail_fast():  # a bad as_of or select: retrying can't help
        as_of = _param_date(params)  # empty: now (never the 15-minute run's logical date)
        names = step_refresh(Settings.from_env(), params.get("select", "tag:trigger"), as_of)
    return {"segments": names, "as_of": as_of.isoformat() if as_of else None}


def sync_task(destination: str, params: dict, segments: list[str] | None = None) -> dict:
    """Sync every segment that lists ``destination`` (an Airflow task per provider), or
    only ``segments`` of them (a trigger refresh's)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from segwise.sync.runner import listed_segments, sync_all

    if destination not in params.get("destinations", [destination]):
        raise AirflowSkipException(f"{destination} is not in this run's destinations")
    if segments is not None:  # of those, the ones whose definitions list the destination
        segments = listed_segments(Settings.from_env(), destination, segments)
        if not segments:
            raise AirflowSkipException(f"no refreshed segment lists {destination}")
    if not params.get("sandbox"):
        _connection_env(destination)
    mode = params.get("mode", "declared")
    with fail_fast():  # e.g. no API key for the provider: retrying can't help
        results = sync_all(Settings.from_env(), destination, segments=segments,
                           mode=None if mode == "declared" else mode,
                           dry_run=bool(params.get("dry_run")),
                           force=bool(params.get("force")), sandbox=bool(params.get("sandbox")))
    summary = {r.plan.segment: {"status": r.status, "mode": r.plan.mode,
                                "added": r.succeeded_adds, "removed": r.succeeded_removes,
                                "rejected": r.rejected_adds, "requests": r.requests,
                                "guard": r.guard_outcome} for r in results}
    blocked = [name for name, s in summary.items() if s["status"] == "blocked"]
    if blocked:
        raise SyncBlocked(f"sync blocked by guards for {blocked}: re-run with force=true "
                          "after checking the data")
    return summary
