"""
### segwise_triggers

The 15-minute trigger refresh: **refresh** (`segwise refresh --select tag:trigger`: the
events landed since the last build go through the incremental event models; the event
stream, the segments tagged `trigger` and the bookkeeping after segment membership are
rebuilt; every other segment keeps the rows of the last full build) → **validate** (the
Great Expectations gate) → **sync** the refreshed segments to the providers their
definitions list (one task per provider, as in `segwise_sync`; nothing else is synced).

The marts (profile, RFM, scores) stay as `segwise_daily` last built them; the trigger
segments' windows are measured from now (or from the `as_of` param, end of that day).
Runs never overlap (`max_active_runs=1`), and the warehouse lock keeps a refresh from
running inside a daily build.

Params: `select` (`tag:trigger`, or segment names), `as_of` (empty: now), and the sync
params of `segwise_sync` (`destinations`, `mode`, `dry_run`, `force`, `sandbox`).
Each task calls one function of the `segwise` package; nothing heavy runs at parse time.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from segwise.dag_support import PROVIDERS, notify_failure, sync_params


@dag(
    dag_id="segwise_triggers",
    doc_md=__doc__,
    schedule="*/15 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["segwise", "activation", "triggers"],
    default_args={
        "retries": 1,
        "retry_delay": pendulum.duration(minutes=1),
        "execution_timeout": pendulum.duration(minutes=14),
        "on_failure_callback": notify_failure("segwise_triggers"),
    },
    params={
        "select": Param("tag:trigger", type="string"),
        "as_of": Param(None, type=["null", "string"], format="date",
                       description="YYYY-MM-DD; empty: now"),
        **sync_params(),
    },
)
def segwise_triggers():
    @task
    def refresh(params: dict | None = None) -> dict:
        from segwise.airflow_tasks import refresh_task

        return refresh_task(params or {})

    @task
    def validate(refreshed: dict) -> dict:
        from segwise.airflow_tasks import validate_task

        return validate_task(refreshed)

    validated = validate(refresh())
    for provider in PROVIDERS:

        @task(task_id=f"sync_{provider}")
        def sync(validated: dict, provider: str = provider, params: dict | None = None) -> dict:
            from segwise.airflow_tasks import sync_task

            return sync_task(provider, params or {}, segments=validated["segments"])

        sync(validated)


segwise_triggers()
