"""
### segwise_sync

Pushes segment membership changes to the email service providers. Scheduled on the
`segwise://segments/validated` asset, which `segwise_daily` updates only after the data
gate passed — a failed validation never triggers a sync (and the sync re-checks the gate
itself: a rebuild after validation blocks it).

One task per provider, so a provider that is down or rate-limited fails (and retries) on
its own while the others complete. Each segment syncs with the mode and guards its
definition declares for the provider (`segments/*.yml`).

API keys come from Airflow connections (`segwise_<provider>`: password = API key, host or
extra `base_url` = API base URL, extra `list_id` for Mailchimp) or the
`SEGWISE_<PROVIDER>_*` environment variables; they are handed to the package through the
task's environment and never logged (Airflow masks connection passwords).

Params: `destinations` (which providers to sync), `mode` (`declared`, or upsert | mirror |
add_only to override for this run), `dry_run`, `force` (override blocking guards),
`sandbox` (sync into local sandbox servers started for the run).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, dag, task

from segwise.dag_support import PROVIDERS, notify_failure, sync_params

SEGMENTS_VALIDATED = Asset("segwise://segments/validated")


@dag(
    dag_id="segwise_sync",
    doc_md=__doc__,
    schedule=[SEGMENTS_VALIDATED],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["segwise", "activation"],
    default_args={
        "retries": 2,
        "retry_delay": pendulum.duration(minutes=5),
        "retry_exponential_backoff": True,
        "execution_timeout": pendulum.duration(hours=2),
        "on_failure_callback": notify_failure("segwise_sync"),
    },
    params=sync_params(),
)
def segwise_sync():
    for provider in PROVIDERS:

        @task(task_id=f"sync_{provider}")
        def sync(provider: str = provider, params: dict | None = None) -> dict:
            from segwise.airflow_tasks import sync_task

            return sync_task(provider, params or {})

        sync()


segwise_sync()
