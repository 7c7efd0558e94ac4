"""segwise_daily really runs under Airflow 3 (`airflow dags test`) against a temporary
AIRFLOW_HOME and DuckDB warehouse, and its export lands."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from segwise.settings import project_root

pytestmark = pytest.mark.xdist_group("airflow")

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(project_root() / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "SEGWISE_DUCKDB_PATH": str(home / "wh" / "segwise.duckdb"),
        "SEGWISE_OUTPUT_DIR": str(home / "out"),
    })
    return env


def _dags_test(home: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """`airflow db migrate`, then `airflow dags test <args>` against ``home``."""
    env = _env(home)
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, capture_output=True, check=True)
    return subprocess.run([AIRFLOW, "dags", "test", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_segwise_daily_stops_before_export_when_validation_fails(tmp_path):
    """A raw load with no orders at all fails the gate: export must not run."""
    res = _dags_test(tmp_path, "segwise_daily", "-c",
                     '{"dataset": "generated", "customers": 300, "seed": 3, '
                     '"as_of": "2026-06-30", "dirty_rate": 0.5}')
    out = res.stdout + res.stderr
    assert "state=failed" in out, out[-4000:]
    assert "data gate closed" in out
    assert not (tmp_path / "out" / "exports").exists()
    # the report of the failed run is written, and shows the gate's failures
    page = (tmp_path / "out" / "report.html").read_text()
    assert "Validation: FAILED (" in page and ">FAIL<" in page


def _without_esp_keys(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not (k.startswith("SEGWISE_") and k.split("_")[1]
                                                 in ("MAILCHIMP", "KLAVIYO", "HUBSPOT",
                                                     "SENDGRID"))}


BACKFILL_DAY = date(2026, 6, 15)


@pytest.fixture(scope="module")
def daily_home(tmp_path_factory) -> Path:
    """An Airflow home whose warehouse one segwise_daily run built: a backfill of
    2026-06-15 by its logical date (no as_of param), generated data. The first test checks
    that run; the sync DAGs' tests then run on its warehouse, in order."""
    home = tmp_path_factory.mktemp("airflow")
    env = _without_esp_keys(_env(home))
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, capture_output=True, check=True)
    daily = subprocess.run(
        [AIRFLOW, "dags", "test", "segwise_daily", BACKFILL_DAY.isoformat(), "-c",
         '{"dataset": "generated", "customers": 1200, "seed": 5}'],
        env=env, capture_output=True, text=True, timeout=900)
    out = daily.stdout + daily.stderr
    assert daily.returncode == 0, out[-4000:]
    assert "state=success" in out, out[-3000:]
    return home


def test_segwise_daily_runs_end_to_end_as_of_its_logical_date(daily_home):
    """`airflow dags test segwise_daily 2026-06-15`: every task succeeds, the gate passed,
    the exports landed, and the logical date is the as-of date of the data it generated
    and of the build (not "yesterday")."""
    con = duckdb.connect(str(daily_home / "wh" / "segwise.duckdb"), read_only=True)
    try:
        runs = con.execute("select segment_name, desired_members from ops.sync_runs "
                           "where destination = 'file' and status = 'succeeded'").fetchall()
        val = con.execute("select success from ops.validation_runs").fetchall()
        (as_of,) = con.execute("select distinct as_of_date from ops.build_runs").fetchall()
        last_order = con.execute("select max(ordered_at) from raw.orders").fetchall()[0][0]
    finally:
        con.close()
    assert val == [(True,)]
    assert {name for name, _ in runs} >= {"recent_purchasers_30d", "cart_abandoners_24h"}
    assert all(n > 0 for _, n in runs)
    assert (daily_home / "out" / "exports" / "file" / "vip_customers" / "members.csv").exists()
    assert (daily_home / "out" / "report.html").exists()  # the report task wrote it
    assert as_of[0] == BACKFILL_DAY
    assert last_order.date() == BACKFILL_DAY


def test_segwise_sync_runs_after_daily_with_keys_from_an_airflow_connection(daily_home):
    """segwise_sync with one task per provider: Mailchimp through a real Airflow
    connection (AIRFLOW_CONN_SEGWISE_MAILCHIMP, no SEGWISE_* variables) whose key never
    reaches the logs; the other providers into their local sandboxes."""
    import json

    import httpx

    from segwise.sync.sandboxes.common import SandboxServer
    from segwise.sync.sandboxes.mailchimp import create_app

    tmp_path = daily_home
    env = _without_esp_keys(_env(tmp_path))
    key = "airflow-conn-secret-5f3a9c-us21"
    with SandboxServer(create_app(key)) as server:
        env["AIRFLOW_CONN_SEGWISE_MAILCHIMP"] = json.dumps({
            "conn_type": "http", "host": server.url, "password": key,
            "extra": {"list_id": "aud-airflow"}})
        res = subprocess.run(
            [AIRFLOW, "dags", "test", "segwise_sync", "-c", '{"destinations": ["mailchimp"]}'],
            env=env, capture_output=True, text=True, timeout=900)
        remote = httpx.get(f"{server.url}/_sandbox/lists/aud-airflow/state").json()
    out = res.stdout + res.stderr
    assert "state=success" in out, out[-4000:]
    assert key not in out
    con = duckdb.connect(str(tmp_path / "wh" / "segwise.duckdb"), read_only=True)
    ledger = con.execute("select segment_name, email from ops.destination_ledger "
                         "where destination like 'mailchimp%'").fetchall()
    con.close()
    assert ledger
    held: dict[str, set[str]] = {}
    for segment, email in ledger:
        held.setdefault(segment, set()).add(email)
    assert {k: set(v) for k, v in remote["segments"].items() if v} == held
    # the other providers, each in its own task, into the local sandboxes
    res = subprocess.run(
        [AIRFLOW, "dags", "test", "segwise_sync", "-c",
         '{"sandbox": true, "destinations": ["klaviyo", "hubspot", "sendgrid"]}'],
        env=env, capture_output=True, text=True, timeout=900)
    out = res.stdout + res.stderr
    assert "state=success" in out, out[-4000:]
    con = duckdb.connect(str(tmp_path / "wh" / "segwise.duckdb"), read_only=True)
    runs = con.execute("select destination, status, succeeded_adds from ops.sync_runs "
                       "where destination in ('klaviyo', 'hubspot', 'sendgrid')").fetchall()
    con.close()
    assert {d for d, _, _ in runs} == {"klaviyo", "hubspot", "sendgrid"}
    assert all(status == "succeeded" for _, status, _ in runs)
    assert sum(n for _, _, n in runs) > 0
    for provider in ("klaviyo", "hubspot", "sendgrid"):
        assert (tmp_path / "wh" / "sandboxes" / f"{provider}.json").exists()


def test_segwise_triggers_syncs_only_the_trigger_segments(daily_home):
    """segwise_triggers after the daily run (and segwise_sync's): a cart add landed since
    reaches all four sandboxes in cart_abandoners_30m, and no other segment syncs."""
    import json
    from dataclasses import replace
    from datetime import datetime

    from segwise.settings import Settings

    from test_triggers import ESPS, TRIGGERS, land_cart_adds, quiet_customers

    tmp_path = daily_home
    env = _without_esp_keys(_env(tmp_path))
    path = tmp_path / "wh" / "segwise.duckdb"
    settings = replace(Settings.from_env(), duckdb_path=path, output_dir=tmp_path / "out")
    who = quiet_customers(settings, 8, BACKFILL_DAY)
    land_cart_adds(path, who, BACKFILL_DAY)
    started = datetime.utcnow()
    res = subprocess.run(
        [AIRFLOW, "dags", "test", "segwise_triggers", "-c",
         json.dumps({"sandbox": True, "as_of": BACKFILL_DAY.isoformat()})],
        env=env, capture_output=True, text=True, timeout=900)
    out = res.stdout + res.stderr
    assert "state=success" in out, out[-4000:]
    con = duckdb.connect(str(path), read_only=True)
    try:
        synced = con.execute("select split_part(destination, ':', 1), segment_name, status "
                             "from ops.sync_runs where destination not in "
                             "('file', 'ad_audience') and started_at >= ?",
                             [started]).fetchall()
        ledger = con.execute("select destination, customer_id from ops.destination_ledger "
                             "where segment_name = 'cart_abandoners_30m'").fetchall()
        holdout = {r[0] for r in con.execute(
            "select customer_id from segments.cart_abandoners_30m where is_holdout").fetchall()}
    finally:
        con.close()
    assert {d for d, _, _ in synced} == set(ESPS)
    assert {s for _, s, _ in synced} <= set(TRIGGERS)  # nothing but the trigger segments
    assert {st for _, _, st in synced} == {"succeeded"}
    expected = set(who) - holdout
    assert expected
    for esp in ESPS:
        assert expected <= {c for d, c in ledger if d.startswith(esp)}, esp
    assert not holdout & {c for _, c in ledger}


def test_every_dag_imports_without_errors_or_warnings(tmp_path):
    """What the scheduler's DAG processor sees: both DAGs, no import error, no warning."""
    code = ("import json, warnings; warnings.simplefilter('default')\n"
            "from airflow.dag_processing.dagbag import DagBag\n"
            f"bag = DagBag(dag_folder={str(project_root() / 'dags')!r})\n"
            "print(json.dumps({'dags': sorted(bag.dag_ids), 'errors': bag.import_errors, "
            "'warnings': {k: [str(w) for w in v] for k, v in bag.captured_warnings.items()}}))")
    res = subprocess.run([sys.executable, "-c", code], env=_env(tmp_path), capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    import json

    bag = json.loads(res.stdout.strip().splitlines()[-1])
    assert bag["dags"] == ["segwise_daily", "segwise_sync", "segwise_triggers"]
    assert bag["errors"] == {} and bag["warnings"] == {}


def test_an_impossible_as_of_is_refused_before_any_task_runs(tmp_path):
    res = _dags_test(tmp_path, "segwise_daily", "-c", '{"as_of": "2026-13-45"}', timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "2026-13-45" in out, out[-3000:]
    assert "state=success" not in out
    assert not (tmp_path / "wh" / "segwise.duckdb").exists()  # nothing ran


def test_a_configuration_error_fails_at_once_without_retries(tmp_path):
    """Building on landed data when nothing has landed is a configuration error: the task
    fails for good at the first try (a retry can't fix it) and says what to do."""
    res = _dags_test(tmp_path, "segwise_daily", "2026-06-15", "-c", '{"dataset": "landed"}',
                     timeout=300)
    out = res.stdout + res.stderr
    assert "state=failed" in out, out[-4000:]
    assert "up_for_retry" not in out
    assert "no raw tables have landed" in out


def test_airflow_standalone_starts_as_the_readme_says(tmp_path):
    """The README's `airflow standalone` lines, run as written from the checkout (only
    AIRFLOW_HOME moved into a temp dir and the port made free): every component healthy,
    both DAGs loaded, no import error."""
    import json
    import signal
    import socket
    import time

    import httpx

    readme = (project_root() / "README.md").read_text()
    block = readme[readme.index("<!-- airflow-standalone -->"):]
    start = block.index("```bash") + len("```bash")
    script = block[start:block.index("```", start)]
    script = script.replace("$PWD/warehouse/airflow", str(tmp_path / "airflow"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW__API__PORT=str(port), SEGWISE_DUCKDB_PATH=str(tmp_path / "w.duckdb"),
               PATH=os.environ.get("PATH", "").replace(str(Path(sys.executable).parent), ""))
    proc = subprocess.Popen(["bash", "-c", script], cwd=project_root(), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        health: dict = {}
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"{base}/api/v2/monitor/health", timeout=5).json()
            except httpx.HTTPError:
                health = {}
            if health and all(part.get("status") == "healthy" for part in health.values()):
                break
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            time.sleep(2)
        assert health and all(p.get("status") == "healthy" for p in health.values()), health
        passwords = tmp_path / "airflow" / "simple_auth_manager_passwords.json.generated"
        token = httpx.post(f"{base}/auth/token", timeout=10, json={
            "username": "admin",
            "password": json.loads(passwords.read_text())["admin"]}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        dags: list[str] = []
        while time.monotonic() < deadline and len(dags) < 2:
            dags = sorted(d["dag_id"] for d in httpx.get(
                f"{base}/api/v2/dags", headers=auth, timeout=10).json()["dags"])
            time.sleep(2)
        assert dags == ["segwise_daily", "segwise_sync", "segwise_triggers"]
        errors = httpx.get(f"{base}/api/v2/importErrors", headers=auth, timeout=10).json()
        assert errors["total_entries"] == 0, errors
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
