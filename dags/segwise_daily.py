"""
### segwise_daily

Daily segment refresh: **load** (or take what has landed) → **build_marts** (dbt build of
everything the models read) → **score** (churn, CLV, clusters into the `predictions`
schema; model cards) → **build_segments** (dbt build of the profile, segment views and
activation feed on the new scores) → **validate** (Great Expectations gate, Data Docs) →
**export** segment membership and diffs. Each dbt build runs models, seeds, data tests and
unit tests; until `build_segments` completes, export and sync refuse.

A failing validation fails the `validate` task, so `export` never runs on bad data; the
task writes the HTML report (output/report.html, with every expectation's result) before it
fails. After a good export, the **report** task writes it. When
validation passes, the `segwise://segments/validated` asset is updated (the ESP sync DAG
is scheduled on it).

Each run computes **as of its logical date**: the run for the data interval
2026-06-15 00:00 – 2026-06-16 00:00 UTC (scheduled just after it ends) builds as of the end
of 2026-06-15, and so does `airflow dags test segwise_daily 2026-06-15` or a backfill of
that day. A manual run without a logical date computes as of now (generated data: as
of yesterday, where the generator's data ends).

Params: `dataset` — `landed` (default: build on the raw tables your loaders landed;
nothing is loaded or generated), or the demo opt-ins `generated` (the demo generator,
with `customers`, `seed`, `dirty_rate`), `cdnow`, `online_retail` (real data sets);
`as_of` (YYYY-MM-DD, overrides the logical date); `full_refresh` (rebuild the incremental
event models from raw instead of judging only what landed since the last build; always
so after a demo or data-set load, which replaces raw). A configuration error (a bad
param, nothing landed, a missing key) fails the task at once, without retries.
Each task calls one function of the `segwise` package; nothing heavy runs at parse time.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, task

from segwise.dag_support import notify_failure

SEGMENTS_VALIDATED = Asset("segwise://segments/validated")


@dag(
    dag_id="segwise_daily",
    doc_md=__doc__,
    # one run per day *after* that day: its logical date is the day it computes
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["segwise"],
    default_args={
        "retries": 1,
        "retry_delay": pendulum.duration(minutes=2),
        "retry_exponential_backoff": True,
        "execution_timeout": pendulum.duration(hours=2),
        "on_failure_callback": notify_failure("segwise_daily"),
    },
    params={
        "dataset": Param("landed", enum=["landed", "generated", "cdnow", "online_retail"],
                         description="landed: build on the raw tables already loaded"),
        "customers": Param(5000, type="integer", minimum=1),
        "seed": Param(42, type="integer"),
        "as_of": Param(None, type=["null", "string"], format="date",
                       description="YYYY-MM-DD; empty: the run's logical date"),
        "dirty_rate": Param(0.0, type="number", minimum=0, maximum=0.5),
        "full_refresh": Param(False, type="boolean",
                              description="rebuild the incremental event models from raw"),
    },
)
def segwise_daily():
    @task
    def load(params: dict | None = None, logical_date=None) -> dict:
        from segwise.airflow_tasks import fail_fast, load_task

        with fail_fast():
            return load_task(params or {}, logical_date)

    @task
    def build_marts(loaded: dict) -> dict:
        from segwise.airflow_tasks import build_marts_task, fail_fast

        with fail_fast():
            return build_marts_task(loaded)

    @task
    def score(built: dict) -> dict:
        from segwise.airflow_tasks import fail_fast, score_task

        with fail_fast():
            return score_task(built)

    @task
    def build_segments(scored: dict) -> dict:
        from segwise.airflow_tasks import build_segments_task, fail_fast

        with fail_fast():
            return build_segments_task(scored)

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

    @task
    def report(exported: dict) -> dict:
        from segwise.airflow_tasks import report_task

        return report_task(exported)

    report(export(validate(build_segments(score(build_marts(load()))))))


segwise_daily()
