"""DuckDB's resources are set deliberately, the same for dbt and for segwise's own
connections: a memory limit it spills beyond, a thread count, no insertion order."""

from __future__ import annotations

import re
from dataclasses import replace

from segwise.settings import project_root
from segwise.transform.dbt import run_dbt
from segwise.warehouse import DUCKDB_DEFAULTS, connect, duckdb_config

from conftest import make_settings


def _settings(con) -> dict[str, str]:
    return dict(zip(["memory_limit", "threads", "preserve_insertion_order", "temp_directory"],
                    con.execute("select current_setting('memory_limit'), "
                                "current_setting('threads'), "
                                "current_setting('preserve_insertion_order'), "
                                "current_setting('temp_directory')").fetchone(), strict=True))


def test_profile_defaults_are_the_package_defaults():
    profile = (project_root() / "profiles.yml").read_text()
    for name, var in (("memory_limit", "SEGWISE_DUCKDB_MEMORY_LIMIT"),
                      ("threads", "SEGWISE_DUCKDB_THREADS")):
        found = re.search(rf"{name}: \"{{{{ env_var\('{var}', '([^']+)'\)", profile)
        assert found and found.group(1) == DUCKDB_DEFAULTS[name], name
    assert "preserve_insertion_order: false" in profile


def test_segwise_connections_take_the_limits_and_the_environment_overrides_them(tmp_path):
    settings = make_settings(tmp_path)
    with connect(settings) as con:
        got = _settings(con)
    assert got["memory_limit"] == "2.7 GiB" and int(got["threads"]) == 2  # 3GB, 2 threads
    assert got["preserve_insertion_order"] in (False, "false")
    assert got["temp_directory"] == f"{settings.duckdb_path}.tmp"
    small = replace(settings, extra_env={"SEGWISE_DUCKDB_MEMORY_LIMIT": "500MB",
                                         "SEGWISE_DUCKDB_THREADS": "1"})
    assert duckdb_config(small)["threads"] == 1
    with connect(small) as con:
        assert _settings(con)["memory_limit"] == "476.8 MiB"


def test_dbt_connections_take_the_same_settings(tmp_path):
    settings = replace(make_settings(tmp_path), extra_env={
        "SEGWISE_DUCKDB_MEMORY_LIMIT": "500MB", "SEGWISE_DUCKDB_THREADS": "1"})
    with connect(settings):
        pass  # the file exists
    out = run_dbt(settings, ["show", "--inline",
                             "select current_setting('memory_limit') as m, "
                             "current_setting('threads') as t, "
                             "current_setting('preserve_insertion_order') as p"]).output
    row = next(line for line in out.splitlines() if "MiB" in line)
    cells = [c.strip() for c in row.strip().strip("|").split("|")]
    assert cells == ["476.8 MiB", "1", "False"]
