"""Spark as a dbt target (``SEGWISE_DBT_TARGET=spark``, profile ``spark``): the same models
build on Spark. Tables move between DuckDB and Spark as Parquet through two dbt
operations (macros/spark_parquet.sql), so the Spark connection is configured once, in
profiles.yml — in-process (``method: session``) here, a Thrift or Databricks endpoint on a
cluster.

``copy_to_spark`` puts what a build reads (raw tables, the ops and prediction sources)
from a DuckDB warehouse into Spark; ``copy_from_spark`` brings every relation of the
given schemas back into a DuckDB file, where they can be compared or served."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import duckdb

from segwise.contract import declared_columns
from segwise.raw_schema import RAW_TABLES, raw_relation
from segwise.settings import Settings
from segwise.transform.dbt import DbtResult, run_dbt
from segwise.warehouse import table_exists

# the ops tables a build reads as sources (macros/create_ops_sources.sql)
OPS_SOURCES = ("ops.destination_suppressions", "ops.erasure_requests")


def spark_settings(settings: Settings) -> Settings:
    """The same project and folders with the ``spark`` dbt target."""
    return replace(settings, dbt_target="spark")


def source_relations(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The build's inputs this DuckDB warehouse holds: the raw tables, the ops sources, the
    scoring step's tables and the imported experiments."""
    from segwise.measure.experiments import SCHEMA, SOURCES_YAML
    from segwise.predict.score import MODELS
    from segwise.settings import project_root

    experiments = declared_columns(project_root() / SOURCES_YAML, SCHEMA)
    wanted = ([raw_relation(t) for t in RAW_TABLES] + list(OPS_SOURCES)
              + [f"predictions.{table}" for _, table, _ in MODELS.values()]
              + [f"{SCHEMA}.{table}" for table in experiments])
    return [r for r in wanted if table_exists(con, *r.split("."))]


def copy_to_spark(settings: Settings, duckdb_path: Path, workdir: Path,
                  relations: list[str] | None = None) -> list[str]:
    """Replace the Spark tables of ``relations`` (default: every build input the DuckDB
    file holds) with DuckDB's rows. Returns the relations copied."""
    folder = workdir / "to_spark"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    tables: dict[str, str] = {}
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        for relation in relations if relations is not None else source_relations(con):
            target = folder / relation
            target.mkdir()
            con.execute(f"copy (select * from {relation}) to '{target}/part-0.parquet' "
                        "(format parquet)")
            tables[relation] = str(target)
    run_dbt(spark_settings(settings), ["run-operation", "spark_import_parquet",
                                       "--args", json.dumps({"tables": tables})])
    return list(tables)


def copy_from_spark(settings: Settings, schemas: list[str], workdir: Path,
                    duckdb_path: Path) -> list[str]:
    """Every table and view of ``schemas`` on Spark, as tables of a new DuckDB file at
    ``duckdb_path``. Returns the relations copied."""
    folder = workdir / "from_spark"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    run_dbt(spark_settings(settings), ["run-operation", "spark_export_parquet", "--args",
                                       json.dumps({"schemas": schemas,
                                                   "directory": str(folder)})])
    duckdb_path.unlink(missing_ok=True)
    copied = []
    with duckdb.connect(str(duckdb_path)) as con:
        for part in sorted(p for p in folder.iterdir() if p.is_dir()):
            schema, name = part.name.split(".")
            con.execute(f"create schema if not exists {schema}")
            if not list(part.glob("*.parquet")):
                raise RuntimeError(f"Spark wrote no Parquet file for {part.name} ({part})")
            files = f"read_parquet('{part}/*.parquet')"
            # Spark's timestamps are instants: back to zone-less UTC, as built elsewhere
            columns = [f'cast("{c}" as timestamp) as "{c}"' if kind.startswith(
                "TIMESTAMP WITH TIME ZONE") else f'"{c}"' for c, kind, *_ in
                con.execute(f"describe select * from {files}").fetchall()]
            con.execute(f"create table {schema}.{name} as select {', '.join(columns)} "
                        f"from {files}")
            copied.append(part.name)
    return copied


# dbt-spark snapshots need a table format with row-level changes (Delta, Iceberg, Hudi);
# on plain Parquet (the local session) the membership history and what reads it are
# left out of a Spark build
NEEDS_ROW_LEVEL_CHANGES = "segment_membership_snapshot+"


def build(settings: Settings, dbt_vars: dict, exclude: str | None = NEEDS_ROW_LEVEL_CHANGES
          ) -> DbtResult:
    """``dbt build`` on Spark: every model, seed, data test and unit test (without the
    membership history unless ``exclude`` is None)."""
    args = ["build"] + (["--exclude", exclude] if exclude else [])
    return run_dbt(spark_settings(settings), args, dbt_vars=dbt_vars)
