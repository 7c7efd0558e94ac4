"""What the Airflow tasks do: thin wrappers over the pipeline steps, returning small
JSON-able dicts (XComs) and raising on failure so downstream tasks do not run."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from segwise.pipeline import step_build, step_export, step_load, step_validate
from segwise.settings import Settings


def _as_of(params: dict) -> date | None:
    raw = (params.get("as_of") or "").strip()
    if raw:
        return datetime.strptime(raw, "%Y-%m-%d").date()
    if params.get("dataset", "generated") == "generated":
        return datetime.now(UTC).date() - timedelta(days=1)
    return None


def load_task(params: dict) -> dict:
    settings = Settings.from_env()
    dataset = params.get("dataset", "generated")
    as_of = _as_of(params)
    rows = step_load(settings, dataset, int(params.get("customers", 5000)),
                     int(params.get("seed", 42)), as_of, float(params.get("dirty_rate", 0.0)))
    return {"dataset": dataset, "as_of": as_of.isoformat() if as_of else None, "rows": rows}


def build_task(loaded: dict) -> dict:
    as_of = date.fromisoformat(loaded["as_of"]) if loaded.get("as_of") else None
    nodes = step_build(Settings.from_env(), loaded["dataset"], as_of)
    return {**loaded, "dbt_nodes_passed": nodes}


class ValidationFailed(RuntimeError):
    pass


def validate_task(built: dict) -> dict:
    result = step_validate(Settings.from_env())
    if not result.success:
        failed = "; ".join(f"{o.suite}.{o.batch}: {o.expectation}({o.column})"
                           for o in result.failed[:10])
        raise ValidationFailed(f"data gate closed, export will not run: {failed}")
    return {**built, "validation_run_id": result.run_id,
            "data_docs": str(result.data_docs) if result.data_docs else None}


def export_task(validated: dict) -> dict:
    result = step_export(Settings.from_env())
    return {"export_run_id": result.run_id,
            "segments": {r.segment_name: {"members": r.members, "added": r.added,
                                          "removed": r.removed} for r in result.reports}}
