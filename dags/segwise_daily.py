"""
### segwise_daily

Daily segment refresh: **load** raw data (demo generator or a real data set) → **dbt
build** (models, seeds, data tests, unit tests) → **validate** (Great Expectations gate,
Data Docs) → **export** segment membership and diffs.

A failing validation fails the `validate` task, so `export` never runs on bad data. When
validation passes, the `segwise://segments/validated` asset is updated (the ESP sync DAG
is scheduled on it).

Params: `dataset` (generated | cdnow | online_retail), `customers`, `seed`, `as_of`
(YYYY-MM-DD, empty = yesterday for generated data, now otherwise), `dirty_rate`.
Each task calls one function of the `segwise` package; nothing heavy runs at parse time.
"""

from __future__ import annotations

import logging

import pendulum
from airflow.sdk import Asset, Param, dag, task

SEGMENTS_VALIDATED = Asset("segwise://segments/validated")
log = logging.getLogger(__name__)


def _notify_failure(context: dict) -> None:
    ti = context.get("task_instance")
    log.error("segwise_daily failed in task %s (run %s)", getattr(ti, "task_id", "?"),
              context.get("run_id"))


@dag(
    dag_id="segwise_daily",
    doc_md=__doc__,
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["segwise"],
    default_args={
        "retries": 1,
        "retry_delay": pendulum.duration(minutes=2),
        "retry_exponential_backoff": True,
        "execution_timeout": pendulum.duration(hours=2),
        "on_failure_callback": _notify_failure,
    },
    params={
        "dataset": Param("generated", enum=["generated", "cdnow", "online_retail"]),
        "customers": Param(5000, type="integer", minimum=1),
        "seed": Param(42, type="integer"),
        "as_of": Param("", type="string"),
        "dirty_rate": Param(0.0, type="number", minimum=0, maximum=0.5),
    },
)
def segwise_daily():
    @task
    def load(params: dict | None = None) -> dict:
        from segwise.airflow_tasks import load_task

        return load_task(params or {})

    @task
    def build(loaded: dict) -> dict:
        from segwise.airflow_tasks import build_task

        return build_task(loaded)

    @task(outlets=[SEGMENTS_VALIDATED])
    def validate(built: dict) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from segwise.airflow_tasks import ValidationFailed, validate_task

        try:
            return validate_task(built)
        except ValidationFailed as exc:  # bad data is not transient: fail without retrying
            raise AirflowFailException(str(exc)) from exc

    @task
    def export(validated: dict) -> dict:
        from segwise.airflow_tasks import export_task

        return export_task(validated)

    export(validate(build(load())))


segwise_daily()
