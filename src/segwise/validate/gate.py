"""The data gate: Great Expectations 1.x suites over the warehouse, one checkpoint.

GX has no DuckDB data source that works (see DECISIONLOG.md), so each batch's query result
is snapshotted to Parquet (sampled for very large tables) and validated through a pandas
filesystem data source — on PostgreSQL too, so both engines are judged by the same
expectations on the same values (the query runs in the warehouse either way). The
outcome is recorded in ``ops.validation_runs``; export and sync refuse to run unless
the latest validation passed and is newer than the latest build.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from segwise import progress
from segwise.lineage import load_manifest, relation_name, relations_in_sql
from segwise.ops import last_build, record_validation
from segwise.raw_schema import resolve_raw
from segwise.settings import Settings
from segwise.transform.dbt import source_freshness
from segwise.warehouse import connect

# Keep in step with macros/is_valid_email.sql.
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`|~-]+"
EMAIL_REGEX = (rf"^{_ATOM}(?:\.{_ATOM})*@(?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)+"
               r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")


@dataclass
class ExpectationOutcome:
    suite: str
    batch: str
    expectation: str
    column: str | None
    success: bool | None  # None = not applicable
    detail: str = ""
    relations: list[str] = field(default_factory=list)  # what the batch query reads
    expected: str = ""  # the expectation's arguments, e.g. "min 1"
    observed: str = ""  # what it saw, passing or not, e.g. "462" or "0 of 3,000 rows"


@dataclass
class ValidationResult:
    run_id: str
    success: bool
    outcomes: list[ExpectationOutcome] = field(default_factory=list)
    data_docs: Path | None = None

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if o.success is False]

    @property
    def not_applicable(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if o.success is None]


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def _fill(value: Any, now: datetime) -> Any:
    if value == "$now":
        return now
    if value == "$email_regex":
        return EMAIL_REGEX
    return value


def load_suites(folder: Path) -> list[dict]:
    suites = []
    for path in sorted(folder.glob("*.json")):
        spec = json.loads(path.read_text())
        spec["_path"] = str(path)
        suites.append(spec)
    if not suites:
        raise FileNotFoundError(f"no expectation suites (*.json) in {folder}")
    return suites


def _quiet_gx() -> None:
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


def _relations_of(column: str | None, relations: list[str]) -> list[str]:
    """What an expectation is about: the relations its batch reads — or, when the column
    is named after one of them (a per-segment size column such as
    ``cart_abandoners_24h`` in a batch over every segment view), just that one."""
    if column:
        named = [r for r in relations if r.split(".", 1)[-1] == column]
        if len(named) == 1:
            return named
    return relations


def failure_detail(result: dict, exception_info: dict | None) -> str:
    """What a failed expectation saw (observed value, unexpected rows) or, when GX could not
    compute it, the error it caught — never an empty ``{}``."""
    shown = {k: result.get(k) for k in ("observed_value", "unexpected_count",
                                         "unexpected_percent", "partial_unexpected_list")
             if k in result}
    if shown:
        return json.dumps(shown, default=str)
    infos = [exception_info] if exception_info and "exception_message" in exception_info \
        else [v for v in (exception_info or {}).values() if isinstance(v, dict)]
    messages = sorted({str(i.get("exception_message")) for i in infos
                       if i.get("raised_exception") or i.get("exception_message")})
    if messages:
        return "error: " + "; ".join(messages)
    return "failed without an observed value: " + json.dumps(result, default=str)[:500]


_ARGUMENTS = {"min_value": "min", "max_value": "max", "value_set": "in", "regex": "matches",
              "column_list": "columns", "mostly": "mostly"}


def expected_text(kwargs: dict) -> str:
    """An expectation's arguments as a reader would say them: ``min 1, max 500000000``."""
    parts = []
    for key, label in _ARGUMENTS.items():
        if kwargs.get(key) is None:
            continue
        value = kwargs[key]
        if isinstance(value, list | tuple):
            value = "{" + ", ".join(map(str, value)) + "}"
        elif key == "regex":
            value = "the email pattern" if len(str(value)) > 40 else f"/{value}/"
        elif isinstance(value, int | float) and not isinstance(value, bool):
            value = f"{value:,}" if key != "mostly" else f"{100 * value:g} %"
        parts.append(f"{label} {value}")
    return ", ".join(parts)


def observed_text(result: dict, batch: pd.DataFrame | None, column: str | None) -> str:
    """What an expectation saw: its observed value; for a one-row batch (the segment
    sizes, the raw row counts) the value itself; else how many rows broke it."""
    if "observed_value" in result:
        value = result["observed_value"]
        return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) \
            else str(value)
    if batch is not None and column in batch.columns and len(batch) == 1:
        value = batch[column].iloc[0]
        return f"{value:,}" if isinstance(value, int | np.integer) else str(value)
    if "element_count" in result:
        bad = result.get("unexpected_count") or 0
        return f"{bad:,} of {result['element_count']:,} rows unexpected"
    return ""


def freshness_outcomes(settings: Settings) -> list[ExpectationOutcome]:
    """Source freshness (``dbt source freshness``, thresholds in the sources' YAML) as
    part of the gate: a source past its ``error_after`` fails validation, which blocks
    export and the syncs of every segment built from it. ``warn`` passes (and says so)."""
    results = source_freshness(settings)
    sources = (load_manifest(settings) or {}).get("sources", {})
    as_of = _built_as_of(settings)
    out = []
    for r in results:
        uid = r.get("unique_id", "")
        node = sources.get(uid)
        relation = relation_name(node) if node else ""
        status = r.get("status")
        age = r.get("max_loaded_at_time_ago_in_s")
        if as_of is not None and node and r.get("max_loaded_at") and status != "runtime error":
            status, age = _freshness_as_of(node, r["max_loaded_at"], as_of)
        success: bool | None = status in ("pass", "warn")
        if str(r.get("max_loaded_at", "")).startswith("0001-01-01"):
            # an empty table: a source this data set doesn't provide (CDNOW has no web
            # events) — not applicable, like a `when_nonempty` expectation; a source that
            # empties unexpectedly is caught by the raw row-count expectations
            success, detail = None, "empty: no rows loaded, freshness not applicable"
        elif age is not None:
            since = f"before the end of the as-of day {as_of}" if as_of else "ago"
            detail = (f"status {status}; last loaded {age / 3600:.1f} h {since} (max "
                      f"_loaded_at {r.get('max_loaded_at')})")
        else:
            detail = f"status {status}: {r.get('message') or r.get('error') or ''}"
        criteria = ((node or {}).get("freshness") or {}).get("error_after") or {}
        out.append(ExpectationOutcome(
            "source_freshness", uid.split(".", 2)[-1], "dbt_source_freshness", None, success,
            detail, [relation] if relation else [],
            expected=(f"loaded within {criteria['count']} {criteria['period']}s"
                      if criteria.get("count") else ""),
            observed=(f"{age / 3600:.1f} h" if age is not None and success is not None
                      else "empty")))
    return out


PERIOD_S = {"minute": 60, "hour": 3600, "day": 86400}


def _built_as_of(settings: Settings) -> date | None:
    """The as-of date of the latest build (None: it was built as of now)."""
    with connect(settings) as con:
        build = last_build(con)
    return build[0] if build else None


def _freshness_as_of(node: dict, max_loaded_at: str, as_of: date) -> tuple[str, float]:
    """Freshness of a build as of a past day is measured from the end of that day, not
    from now: a backfill of 1998-06-30 on data landed then is fresh, the same data built
    as of today is not. Thresholds are the source's own (``warn_after``/``error_after``)."""
    loaded = datetime.fromisoformat(str(max_loaded_at).replace("Z", "+00:00"))
    loaded = loaded.astimezone(UTC).replace(tzinfo=None) if loaded.tzinfo else loaded
    age = (datetime.combine(as_of + timedelta(days=1), datetime.min.time())
           - loaded).total_seconds()
    freshness = node.get("freshness") or {}

    def limit(key: str) -> float | None:
        rule = freshness.get(key) or {}
        if not rule.get("count") or not rule.get("period"):
            return None
        return rule["count"] * PERIOD_S[rule["period"]]

    error, warn = limit("error_after"), limit("warn_after")
    if error is not None and age > error:
        return "error", age
    if warn is not None and age > warn:
        return "warn", age
    return "pass", age


def validate(settings: Settings, suites_dir: Path | None = None) -> ValidationResult:
    """Run every suite in ``expectations/`` as one checkpoint and build Data Docs, and
    check source freshness."""
    _quiet_gx()
    import great_expectations as gx  # slow import: only when validating

    suites_dir = suites_dir or settings.project_dir / "expectations"
    now = datetime.now(UTC).replace(tzinfo=None)
    run_id = uuid.uuid4().hex[:12]
    root = settings.gx_dir
    batches_dir = root / "batches"
    if batches_dir.exists():
        shutil.rmtree(batches_dir)
    batches_dir.mkdir(parents=True)
    gx_config = root / "gx"
    if gx_config.exists():  # suites are defined in expectations/, the context is rebuilt
        for child in ("expectations", "checkpoints", "validation_definitions",
                      "great_expectations.yml"):
            target = gx_config / child
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()

    outcomes: list[ExpectationOutcome] = []
    plan: list[tuple[str, str, list[dict]]] = []  # (suite name, batch name, expectations)
    reads: dict[str, list[str]] = {}  # batch name -> relations its query reads
    with connect(settings, read_only=True) as con:
        def count(table: str) -> int:
            if not re.fullmatch(r"[a-z_]+\.[a-z_]+", table):
                raise ValueError(f"when_nonempty must name schema.table, got {table!r}")
            return con.execute(f"select count(*) from {resolve_raw(table)}").fetchall()[0][0]

        batches = [(spec, batch) for spec in load_suites(suites_dir)
                   for batch in spec["batches"]]
        with progress.task("validate: batches", len(batches)) as update:
            for done, (spec, batch) in enumerate(batches, 1):
                query = resolve_raw(batch["query"])  # raw tables where they live
                if batch.get("sample_rows"):
                    query = con.sample_sql(query, int(batch["sample_rows"]))
                con.to_parquet(query, batches_dir / f"{batch['name']}.parquet")
                applicable = []
                for exp in batch["expectations"]:
                    gate = exp.get("when_nonempty")
                    if gate and count(gate) == 0:
                        outcomes.append(ExpectationOutcome(
                            spec["name"], batch["name"], exp["type"],
                            exp["kwargs"].get("column"), None, f"{gate} is empty"))
                        continue
                    applicable.append(exp)
                plan.append((spec["name"], batch["name"], applicable))
                reads[batch["name"]] = sorted(relations_in_sql(resolve_raw(batch["query"])))
                update(done)

    context = gx.get_context(mode="file", project_root_dir=str(root))
    try:
        context.variables.progress_bars = {"globally": False, "metric_calculations": False}
        context.variables.save()
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    source = context.data_sources.add_or_update_pandas_filesystem(
        name="segwise_batches", base_directory=str(batches_dir))
    definitions = []
    for suite_name, batch_name, expectations in plan:
        asset = source.add_parquet_asset(name=batch_name)
        batch_def = asset.add_batch_definition_path(name=batch_name, path=f"{batch_name}.parquet")
        suite = gx.ExpectationSuite(name=f"{suite_name}.{batch_name}")
        for exp in expectations:
            cls = getattr(gx.expectations, _camel(exp["type"]))
            kwargs = {k: _fill(v, now) for k, v in exp["kwargs"].items()}
            suite.add_expectation(cls(**kwargs))
        suite = context.suites.add(suite)
        definitions.append(context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{suite_name}.{batch_name}", data=batch_def,
                                    suite=suite)))
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        name="segwise_gate",
        validation_definitions=definitions,
        actions=[gx.checkpoint.UpdateDataDocsAction(name="update_data_docs")],
    ))
    result = checkpoint.run()
    for vr in result.run_results.values():
        suite_name, _, batch_name = vr.suite_name.partition(".")
        single_row = pd.read_parquet(batches_dir / f"{batch_name}.parquet") \
            if pq.read_metadata(batches_dir / f"{batch_name}.parquet").num_rows == 1 else None
        for er in vr.results:
            cfg = er.expectation_config
            res = er.result or {}
            detail = "" if er.success else failure_detail(res, er.exception_info)
            column = cfg.kwargs.get("column")
            outcomes.append(ExpectationOutcome(
                suite_name, batch_name, cfg.type, column, bool(er.success), detail,
                _relations_of(column, reads.get(batch_name, [])),
                expected=expected_text(cfg.kwargs), observed=observed_text(res, single_row,
                                                                           column)))
    fresh = freshness_outcomes(settings)
    outcomes += fresh
    docs = root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    outcome = ValidationResult(
        run_id=run_id,
        success=bool(result.success) and all(o.success is not False for o in fresh),
        outcomes=outcomes, data_docs=docs if docs.exists() else None)
    record_validation(settings, outcome.run_id, outcome.success,
                      [o.__dict__ for o in outcome.failed], [o.__dict__ for o in outcomes])
    return outcome
