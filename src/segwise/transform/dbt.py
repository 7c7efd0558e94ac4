"""Running dbt (build, source freshness) as a subprocess of the same environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from segwise import progress
from segwise.errors import ConfigurationError
from segwise.settings import Settings


class DbtError(RuntimeError):
    def __init__(self, message: str, failed_nodes: int = 0,
                 failed_ids: list[str] | None = None) -> None:
        super().__init__(message)
        self.failed_nodes = failed_nodes
        self.failed_ids = failed_ids or []


@dataclass
class DbtResult:
    command: list[str]
    returncode: int
    output: str
    results: list[dict]

    @property
    def failures(self) -> list[dict]:
        return [r for r in self.results if r.get("status") in ("error", "fail", "runtime error")]


class SparkEnvMissing(ConfigurationError):
    """The Spark target's dbt is not installed."""


def dbt_executable(settings: Settings | None = None) -> str:
    """This environment's dbt; for the ``spark`` target, the one in the Spark virtualenv
    (``SEGWISE_SPARK_DBT``, else ``<project>/.venv-spark/bin/dbt``: ``make spark-env``)."""
    if settings is not None and settings.dbt_target == "spark":
        spark = Path(os.environ.get("SEGWISE_SPARK_DBT")
                     or settings.project_dir / ".venv-spark" / "bin" / "dbt")
        if not spark.exists():
            raise SparkEnvMissing(f"no dbt for the spark target at {spark}: run `make "
                                  "spark-env` (or set SEGWISE_SPARK_DBT)")
        return str(spark)
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def dbt_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SEGWISE_DUCKDB_PATH=str(settings.duckdb_path),
        SEGWISE_SPARK_DIR=os.environ.get("SEGWISE_SPARK_DIR",
                                         str(settings.duckdb_path.parent / "spark")),
        SEGWISE_DBT_TARGET=settings.dbt_target,
        DBT_SEND_ANONYMOUS_USAGE_STATS="False",
        DO_NOT_TRACK="1",
    )
    env.update(settings.extra_env)
    return env


# the per-run values the macros read with segwise.run_var (macros/run_var.sql): passed in
# the environment (SEGWISE_RUN_VARS), not as --vars, because dbt re-parses the whole
# project whenever --vars change (about 4.5 s of every build that changed the as-of date)
RUN_VARS = frozenset({"as_of_date", "membership_stamp", "source_timezone",
                      "refresh_segments"})


def target_path(settings: Settings) -> Path:
    return settings.duckdb_path.parent / "dbt_target"


def run_dbt(settings: Settings, args: list[str], dbt_vars: dict | None = None,
            echo: bool = False, check: bool = True) -> DbtResult:
    """Run ``dbt <args>`` against the project; raise DbtError with the failing nodes
    (unless ``check`` is false: the caller reads the artifacts itself)."""
    target = target_path(settings)
    cmd = [
        dbt_executable(settings),
        *args,
        "--project-dir", str(settings.project_dir),
        "--profiles-dir", str(settings.project_dir),
        "--target-path", str(target),
        "--log-path", str(settings.duckdb_path.parent / "dbt_logs"),
    ]
    variables = dbt_vars or {}
    other_vars = {k: v for k, v in variables.items() if k not in RUN_VARS}
    if other_vars:
        cmd += ["--vars", json.dumps(other_vars)]
    env = {**dbt_env(settings), "SEGWISE_RUN_VARS": json.dumps(
        {k: v for k, v in variables.items() if k in RUN_VARS})}
    cmd += ["--log-format", "json"]  # structured events: node n of N for the progress bar
    run_results = target / "run_results.json"
    run_results.unlink(missing_ok=True)  # never report a previous run's failures as this one's
    with progress.task(f"dbt {args[0]}") as update:
        returncode, output = _stream(cmd, settings, env, update)
    if echo:
        print(output)
    results: list[dict] = []
    if run_results.exists():
        results = json.loads(run_results.read_text()).get("results", [])
    result = DbtResult(cmd, returncode, output, results)
    if check and returncode != 0:
        failing = [f"{r['unique_id']}: {r.get('message')}" for r in result.failures]
        tail = "\n".join(output.splitlines()[-40:])
        raise DbtError(
            f"dbt {' '.join(args)} failed ({len(failing)} failing nodes)\n"
            + "\n".join(failing[:20]) + ("\n" + tail if not failing else ""),
            failed_nodes=len(failing),
            failed_ids=[r["unique_id"] for r in result.failures],
        )
    return result


def _stream(cmd: list[str], settings: Settings, env: dict[str, str],
            update) -> tuple[int, str]:  # noqa: ANN001
    """Run dbt, reading its JSON log events as they come: each node's result event carries
    index, the start events the total (``update(nodes done, total)``); the text output is
    the events' messages, as dbt would have printed them."""
    lines, done, total = [], 0, None
    with subprocess.Popen(cmd, cwd=settings.project_dir, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        for raw in proc.stdout:
            try:
                event = json.loads(raw)
            except ValueError:  # not an event (a warning printed before logging starts)
                lines.append(raw.rstrip("\n"))
                continue
            info, data = event.get("info", {}), event.get("data", {})
            name = info.get("name", "")
            lines.append(info.get("msg", ""))
            if name == "LogStartLine" and isinstance(data.get("total"), int):
                total = data["total"]  # test results do not carry the total; starts do
            elif name.endswith("Result") and isinstance(data.get("index"), int):
                done += 1
                update(done, total)
    return proc.returncode, "\n".join(lines)


# the scoring step's tables: what is built before scoring excludes everything downstream
PREDICTIONS = "source:segwise_predictions+"


def build(settings: Settings, dbt_vars: dict | None = None, echo: bool = False,
          select: str | None = None, exclude: str | None = None,
          full_refresh: bool = False) -> DbtResult:
    """``dbt build``; ``full_refresh`` rebuilds the incremental models from scratch."""
    args = ["build", *(["--full-refresh"] if full_refresh else [])]
    if select:
        args += ["--select", select]
    if exclude:
        args += ["--exclude", exclude]
    return run_dbt(settings, args, dbt_vars=dbt_vars, echo=echo)


def source_freshness(settings: Settings) -> list[dict]:
    """``dbt source freshness``: one result per source table (``unique_id``, ``status``
    pass | warn | error | runtime error, ``max_loaded_at``, ``max_loaded_at_time_ago_in_s``).
    A stale source is a result, not an exception: the data gate decides."""
    sources_json = target_path(settings) / "sources.json"
    sources_json.unlink(missing_ok=True)  # never read a previous run's answer
    result = run_dbt(settings, ["source", "freshness"], check=False)
    if not sources_json.exists():
        tail = "\n".join(result.output.splitlines()[-20:])
        raise DbtError(f"dbt source freshness produced no results:\n{tail}")
    return json.loads(sources_json.read_text()).get("results", [])
