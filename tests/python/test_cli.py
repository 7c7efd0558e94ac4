"""The command line: clear errors for user mistakes, non-zero exit when the gate closes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.xdist_group("demo")

SEGWISE = [str(Path(sys.executable).with_name("segwise"))]


def _run(args, env_extra, cwd=None):
    env = dict(os.environ, **env_extra)
    return subprocess.run(SEGWISE + args, env=env, text=True, capture_output=True, cwd=cwd)


def test_unknown_dataset_is_a_clear_error(tmp_path):
    res = _run(["run", "--dataset", "nope"], {"SEGWISE_DUCKDB_PATH": str(tmp_path / "w.duckdb")})
    assert res.returncode != 0
    assert "unknown dataset 'nope'" in res.stderr


def test_missing_shared_data_names_the_path(tmp_path):
    res = _run(["load", "--dataset", "cdnow"], {
        "SEGWISE_DUCKDB_PATH": str(tmp_path / "w.duckdb"),
        "SEGWISE_SHARED_DATA": str(tmp_path / "nowhere")})
    assert res.returncode == 1
    assert "nowhere" in res.stderr and "SEGWISE_SHARED_DATA" in res.stderr


def test_bad_as_of_date_is_rejected(tmp_path):
    res = _run(["build", "--as-of", "30/06/1998"], {"SEGWISE_DUCKDB_PATH": str(tmp_path / "w")})
    assert res.returncode != 0
    assert "YYYY-MM-DD" in res.stderr + res.stdout


def test_validate_exits_non_zero_and_export_refuses(demo, tmp_path):
    settings, _ = demo
    db = tmp_path / "wh" / "segwise.duckdb"
    db.parent.mkdir()
    shutil.copy(settings.duckdb_path, db)
    con = duckdb.connect(str(db))
    con.execute("update marts.customer_rfm set r_score = 9")
    con.close()
    env = {"SEGWISE_DUCKDB_PATH": str(db), "SEGWISE_OUTPUT_DIR": str(tmp_path / "out")}
    val = _run(["validate"], env)
    assert val.returncode == 1, val.stdout + val.stderr
    assert "r_score" in val.stderr
    exp = _run(["export"], env)
    assert exp.returncode == 2
    assert "export refused" in exp.stderr
    assert not (tmp_path / "out" / "exports").exists()
