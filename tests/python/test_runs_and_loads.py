"""Loads are all or nothing and runs own their warehouse (issue #8, observations 8, 9, 11).

A load checks every file against the raw contract before touching anything and replaces
the raw tables in one transaction; a command that writes holds the warehouse, so a second
run refuses with a clear message instead of mixing data; a failed dbt invocation reports
its own failures, never the previous run's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segwise.generate import generate

from conftest import make_settings

SEGWISE = str(Path(sys.executable).with_name("segwise"))


def _cli(args: list[str], db: Path, **extra) -> subprocess.CompletedProcess:
    env = dict(os.environ, SEGWISE_DUCKDB_PATH=str(db), SEGWISE_OUTPUT_DIR=str(db.parent / "out"),
               COLUMNS="200", **extra)
    return subprocess.run([SEGWISE, *args], env=env, text=True, capture_output=True)


def _raw_state(db: Path) -> dict[str, tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [r[0] for r in con.execute("select table_name from duckdb_tables() where "
                                            "schema_name = 'raw' order by 1").fetchall()]
        return {t: (con.execute(f"select count(*) from raw.{t}").fetchall()[0][0],
                    tuple(con.execute("select column_name, data_type from duckdb_columns() "
                                      "where schema_name = 'raw' and table_name = ? "
                                      "order by column_index", [t]).fetchall()))
                for t in tables}
    finally:
        con.close()


@pytest.fixture
def loaded(tmp_path):
    raw = tmp_path / "raw"
    generate(raw, customers=60, seed=3, as_of=date(2026, 6, 30))
    db = tmp_path / "wh" / "segwise.duckdb"
    res = _cli(["load", "--raw-dir", str(raw)], db)
    assert res.returncode == 0, res.stderr
    return raw, db, _raw_state(db)


def _rewrite(part: Path, change) -> None:
    table = pq.read_table(part)
    pq.write_table(change(table), part)


def test_a_string_typed_column_is_refused_and_nothing_changes(loaded, tmp_path):
    raw, db, before = loaded
    bad = tmp_path / "bad"
    shutil.copytree(raw, bad)
    part = sorted((bad / "orders").glob("*.parquet"))[0]
    _rewrite(part, lambda t: t.set_column(t.schema.get_field_index("order_total"), "order_total",
                                          t["order_total"].cast(pa.string())))
    res = _cli(["load", "--raw-dir", str(bad)], db)
    assert res.returncode == 1
    message = " ".join(res.stderr.split())
    assert "Traceback" not in res.stderr
    assert part.name in message and "raw.orders" in message
    assert "order_total is string, expected double" in message and "nothing was loaded" in message
    assert _raw_state(db) == before


def test_a_missing_column_is_refused_before_any_table_is_replaced(loaded, tmp_path):
    raw, db, before = loaded
    bad = tmp_path / "bad"
    shutil.copytree(raw, bad)
    for part in (bad / "orders").glob("*.parquet"):  # an earlier table that would load
        _rewrite(part, lambda t: t.slice(0, 1))
    part = sorted((bad / "email_events").glob("*.parquet"))[0]  # the last table is bad
    _rewrite(part, lambda t: t.drop_columns(["occurred_at"]))  # a required column
    res = _cli(["load", "--raw-dir", str(bad)], db)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    message = " ".join(res.stderr.split())
    assert "raw.email_events" in message and "missing column(s) ['occurred_at']" in message
    assert "the file has ['campaign_id', 'customer_id', 'email'," in message  # what it has
    assert _raw_state(db) == before


def test_an_optional_column_may_be_absent_and_loads_as_null(loaded, tmp_path):
    """The contract's optional columns need not land (a CRM without loyalty tiers)."""
    raw, db, _ = loaded
    lean = tmp_path / "lean"
    shutil.copytree(raw, lean)
    for part in (lean / "crm_contacts").glob("*.parquet"):
        _rewrite(part, lambda t: t.drop_columns(["loyalty_tier", "sms_consent_at"]))
    res = _cli(["load", "--raw-dir", str(lean)], db)
    assert res.returncode == 0, res.stderr
    con = duckdb.connect(str(db), read_only=True)
    try:
        n, tiers, types = con.execute(
            "select count(*), count(loyalty_tier), typeof(any_value(sms_consent_at)) "
            "from raw.crm_contacts").fetchall()[0]
    finally:
        con.close()
    assert n > 0 and tiers == 0 and types == "TIMESTAMP"


def test_compatible_types_load_into_the_contract_types(loaded, tmp_path):
    """int32 quantities, nanosecond timestamps: loaded, cast to the
    contract's types (the raw table never silently changes type)."""
    raw, db, before = loaded
    narrow = tmp_path / "narrow"
    shutil.copytree(raw, narrow)
    for part in (narrow / "order_items").glob("*.parquet"):
        _rewrite(part, lambda t: t.set_column(t.schema.get_field_index("quantity"), "quantity",
                                              t["quantity"].cast(pa.int32())))
    for part in (narrow / "orders").glob("*.parquet"):
        _rewrite(part, lambda t: t.set_column(t.schema.get_field_index("ordered_at"),
                                              "ordered_at",
                                              t["ordered_at"].cast(pa.timestamp("ns"))))
    res = _cli(["load", "--raw-dir", str(narrow)], db)
    assert res.returncode == 0, res.stderr
    assert _raw_state(db) == before


def _hold(db: Path) -> subprocess.Popen:
    """Another process holding the warehouse, as a running `segwise run` would."""
    code = ("import sys, time; from pathlib import Path; from segwise.warehouse import exclusive\n"
            f"with exclusive(Path({str(db)!r})):\n"
            "    print('held', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.parametrize("command", [["build"], ["load"], ["validate"], ["export"],
                                     ["sync", "--destination", "mailchimp", "--sandbox"],
                                     ["forget", "a@example.com", "--sandbox"]])
def test_a_command_that_writes_refuses_while_another_run_holds_the_warehouse(tmp_path, command):
    db = tmp_path / "wh" / "segwise.duckdb"
    db.parent.mkdir(parents=True)
    holder = _hold(db)
    try:
        start = time.monotonic()
        res = _cli(command, db)
        assert time.monotonic() - start < 30
    finally:
        holder.kill()
        holder.wait()
    assert res.returncode == 7, res.stdout + res.stderr
    assert f"in use by pid {holder.pid}" in " ".join(res.stderr.split())
    assert "Traceback" not in res.stderr


def test_a_waiting_run_proceeds_once_the_warehouse_is_free(tmp_path):
    from segwise.warehouse import exclusive

    db = tmp_path / "wh" / "segwise.duckdb"
    db.parent.mkdir(parents=True)
    holder = _hold(db)
    time.sleep(0.5)
    holder.kill()  # the kernel releases the lock of a dead process
    holder.wait()
    with exclusive(db, wait_s=10):
        pass


def test_two_runs_on_one_warehouse_never_mix(tmp_path):
    """Observation 9: two `segwise run` started seconds apart. The first owns the
    warehouse and reports its own data; the second refuses at once, naming the first."""
    db = tmp_path / "wh" / "segwise.duckdb"
    env = dict(os.environ, SEGWISE_DUCKDB_PATH=str(db), SEGWISE_OUTPUT_DIR=str(tmp_path / "out"),
               COLUMNS="200")
    first = subprocess.Popen([SEGWISE, "run", "--customers", "300", "--seed", "1", "--as-of",
                              "2026-06-30"], env=env, text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    lock = db.with_name(db.name + ".lock")
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    second = _cli(["run", "--customers", "500", "--seed", "2", "--as-of", "2026-06-30"], db)
    out, errs = first.communicate(timeout=600)
    assert second.returncode == 7, second.stdout + second.stderr
    assert f"in use by pid {first.pid}" in " ".join(second.stderr.split())
    assert first.returncode == 0, out[-3000:] + errs[-3000:]
    expected = generate(tmp_path / "expected", customers=300, seed=1, as_of=date(2026, 6, 30))
    con = duckdb.connect(str(db), read_only=True)
    try:
        for table, rows in expected.rows.items():
            assert con.execute(f"select count(*) from raw.{table}").fetchall()[0][0] == rows
    finally:
        con.close()


def test_a_failed_dbt_call_reports_its_own_failures_not_the_previous_runs(tmp_path):
    """Observation 11: after a parse failure, `segwise build` printed the failing nodes of
    the run_results.json an earlier run had left behind."""
    from segwise.transform.dbt import DbtError, run_dbt, target_path

    project = tmp_path / "project"
    root = make_settings(tmp_path).project_dir
    shutil.copytree(root, project, ignore=shutil.ignore_patterns(
        ".venv", ".git", "warehouse", "output", "target", "logs", "dbt_packages"))
    (project / "models" / "marts" / "broken.sql").write_text("select {{ no_such_macro() }}\n")
    settings = replace(make_settings(tmp_path), project_dir=project)
    target = target_path(settings)
    target.mkdir(parents=True)
    (target / "run_results.json").write_text(json.dumps({"results": [
        {"unique_id": "model.segwise.old_failure", "status": "error", "message": "old"}]}))
    with pytest.raises(DbtError) as exc:
        run_dbt(settings, ["build"])
    assert "old_failure" not in str(exc.value)
    assert "no_such_macro" in str(exc.value)


def test_loaded_at_is_when_the_file_landed_not_when_it_was_loaded(loaded, tmp_path):
    """`_loaded_at` comes from the load: a Parquet part's modification time (so 1998 data
    does not read as fresh because it was loaded today)."""
    raw, db, _ = loaded
    old = tmp_path / "old"
    shutil.copytree(raw, old)
    landed = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp()
    for part in (old / "orders").glob("*.parquet"):
        os.utime(part, (landed, landed))
    res = _cli(["load", "--raw-dir", str(old)], db)
    assert res.returncode == 0, res.stderr
    con = duckdb.connect(str(db), read_only=True)
    try:
        orders = con.execute("select min(_loaded_at), max(_loaded_at) from raw.orders"
                             ).fetchall()[0]
        crm = con.execute("select max(_loaded_at) from raw.crm_contacts").fetchall()[0][0]
    finally:
        con.close()
    assert orders == (datetime(2026, 3, 1, 12, 0), datetime(2026, 3, 1, 12, 0))
    assert crm > datetime(2026, 3, 2)


def test_a_data_set_is_stamped_with_its_newest_row():
    """Real data sets are exports made after their last row: CDNOW's rows landed in 1998."""
    import pandas as pd

    from segwise.load.warehouse import load_frames

    con = duckdb.connect()
    try:
        load_frames(con, {"orders": pd.DataFrame({
            "order_id": ["1", "2"], "customer_id": ["a", "b"], "status": ["completed"] * 2,
            "currency": ["USD"] * 2, "order_total": [1.0, 2.0], "country": [None, None],
            "ordered_at": pd.to_datetime(["1997-01-01 00:00", "1998-06-30 10:00"])})})
        (stamp,) = con.execute("select distinct _loaded_at from raw.orders").fetchall()[0]
    finally:
        con.close()
    assert stamp == datetime(1998, 6, 30, 10, 0)
