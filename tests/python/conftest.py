"""Fixtures that build small real warehouses (DuckDB files in temp dirs) once per worker.

Tests that share a warehouse are grouped (``xdist_group``) so ``pytest -n 2 --dist
loadgroup`` builds each warehouse once.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import pytest

from segwise.generate.generator import LEAD_IN_DAYS
from segwise.pipeline import run
from segwise.settings import Settings, project_root

DEMO_AS_OF = date(2026, 6, 30)
DEMO_CUSTOMERS = 3000
DEMO_SEED = 7

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items) -> None:
    """``--dist loadgroup`` sends the tests of one ``xdist_group`` to one worker by the
    ``@<group>`` suffix pytest-xdist appends to each nodeid. pytest-xdist 3.8 appends it to
    ``item._nodeid``, which pytest 9.2 no longer reads (the nodeid is ``item._id``), so
    every group was spread over both workers and each shared warehouse was built twice.
    Append it where pytest 9 keeps it (a no-op once xdist does so itself)."""
    if not getattr(config.option, "loadgroup", False):  # set by xdist with --dist loadgroup
        return
    from _pytest.nodeid import NodeId

    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        suffix = "@" + "_".join(names)
        if names and not item.nodeid.endswith(suffix):
            item._id = NodeId.parse(item.nodeid + suffix)


def make_settings(tmp: Path) -> Settings:
    base = Settings.from_env()
    return replace(base, project_dir=project_root(), duckdb_path=tmp / "wh" / "segwise.duckdb",
                   output_dir=tmp / "output")


def quiet(_msg: str) -> None:
    pass


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> tuple[Settings, object]:
    """Clean generated data, full pipeline (generate → build → validate → export)."""
    settings = make_settings(tmp_path_factory.mktemp("demo"))
    summary = run(settings, dataset="generated", customers=DEMO_CUSTOMERS, seed=DEMO_SEED,
                  as_of=DEMO_AS_OF, say=quiet, lead_in_days=LEAD_IN_DAYS)
    return settings, summary


@pytest.fixture(scope="session")
def shared_data() -> Path:
    settings = Settings.from_env()
    assert (settings.shared_data_dir / "cdnow" / "CDNOW_master.txt").exists(), (
        f"shared data sets not found at {settings.shared_data_dir}: set SEGWISE_SHARED_DATA")
    return settings.shared_data_dir


def query(settings: Settings, sql: str):
    """A read-only query on the settings' warehouse (DuckDB or PostgreSQL)."""
    from segwise.warehouse import connect

    with connect(settings, read_only=True) as con:
        return con.execute(sql).df()


@pytest.fixture
def demo_copy(demo, tmp_path) -> Settings:
    """A private copy of the demo warehouse, for tests that change it."""
    return copy_demo(demo, tmp_path)


@pytest.fixture(scope="module")
def module_demo_copy(demo, tmp_path_factory) -> Settings:
    """A copy of the demo warehouse shared by one module's tests: for a module whose
    fixture changes it once (an attack, a leak) and whose tests then read it."""
    return copy_demo(demo, tmp_path_factory.mktemp("demo_copy"))


def copy_demo(demo, tmp_path: Path) -> Settings:  # noqa: ANN001
    import shutil

    settings, _ = demo
    target = tmp_path / "wh" / "segwise.duckdb"
    target.parent.mkdir(parents=True)
    shutil.copy(settings.duckdb_path, target)
    manifest = settings.duckdb_path.parent / "dbt_target" / "manifest.json"
    (target.parent / "dbt_target").mkdir()
    shutil.copy(manifest, target.parent / "dbt_target" / "manifest.json")  # lineage
    return replace(settings, duckdb_path=target, output_dir=tmp_path / "output")


@pytest.fixture
def wh(demo_copy) -> Settings:
    """The warehouse a sync test syncs from (a private copy of the demo warehouse)."""
    return demo_copy


# the file and ad-audience exports of the demo run are sync runs too; an ESP test reads
# only its provider's
ESP_RUNS = "(select * from ops.sync_runs where destination not in ('file', 'ad_audience'))"


def sandbox_state(server) -> dict:
    """A sandbox's own view of what it holds (its /_sandbox/state endpoint)."""
    import httpx

    return httpx.get(f"{server.url}/_sandbox/state").json()


def sendable(settings: Settings, segment: str) -> set[str]:
    """The emails the activation feed says a destination may receive for ``segment`` —
    what every sync and export must match (consent itself is tested in test_consent.py)."""
    return set(query(settings, "select email from activation.sync_esp_members where "
                               f"segment_name = '{segment}' and is_sendable")["email"])


def set_consent(settings: Settings, customer_ids: list[str], consent: bool) -> None:
    """Change email consent at the source, as the CRM would: the customer's raw row says
    yes (given when the row was last updated) or no (recorded just after its consent).
    marts.customer_consent is a view, so syncs see it without a rebuild."""
    con = duckdb.connect(str(settings.duckdb_path))
    try:
        if consent:
            con.execute("update raw.crm_contacts set email_consent = true, "
                        "email_consent_at = updated_at where customer_id in "
                        "(select unnest(?))", [customer_ids])
        else:
            con.execute("update raw.crm_contacts set email_consent = false, updated_at = "
                        "greatest(updated_at, coalesce(email_consent_at, updated_at)) "
                        "+ interval 1 second where customer_id in (select unnest(?))",
                        [customer_ids])
    finally:
        con.close()


def insert_raw(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict],
               loaded_at: str = "2026-06-30 12:00:00") -> None:
    """Append rows to ``raw.<table>`` as a source would land them (columns not given stay
    null; ``_loaded_at`` defaults to the demo's load day unless a row sets it)."""
    for row in rows:
        row = {"_loaded_at": loaded_at, **row}
        cols = list(row)
        con.execute(f"insert into raw.{table} ({', '.join(cols)}) values "
                    f"({', '.join('?' for _ in cols)})", list(row.values()))
