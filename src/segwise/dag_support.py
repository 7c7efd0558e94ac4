"""What the DAG files share, light enough to import at DAG parse time (logging and
Airflow's Param only; the work is in segwise.airflow_tasks, imported inside tasks)."""

from __future__ import annotations

import logging
from collections.abc import Callable

PROVIDERS = ("mailchimp", "klaviyo", "hubspot", "sendgrid")


def notify_failure(dag_id: str) -> Callable[[dict], None]:
    """An ``on_failure_callback`` that logs the DAG, task and run that failed."""
    log = logging.getLogger(f"segwise.dags.{dag_id}")

    def callback(context: dict) -> None:
        ti = context.get("task_instance")
        log.error("%s failed in task %s (run %s)", dag_id, getattr(ti, "task_id", "?"),
                  context.get("run_id"))

    return callback


def sync_params() -> dict:
    """The params of a DAG that syncs segments to the providers."""
    from airflow.sdk import Param

    return {
        "destinations": Param(list(PROVIDERS), type="array",
                              items={"type": "string", "enum": list(PROVIDERS)}),
        "mode": Param("declared", enum=["declared", "upsert", "mirror", "add_only"]),
        "dry_run": Param(False, type="boolean"),
        "force": Param(False, type="boolean"),
        "sandbox": Param(False, type="boolean"),
    }
