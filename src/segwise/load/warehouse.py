"""Landing raw tables in the warehouse (schema ``raw``) — DuckDB, the embedded default."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from segwise.raw_schema import RAW_TABLES

RAW_SCHEMA = "raw"


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        yield con
    finally:
        con.close()


def _create_empty(con: duckdb.DuckDBPyConnection, table: str) -> None:
    empty = pa.Table.from_pylist([], schema=RAW_TABLES[table])  # noqa: F841 (used by duckdb)
    con.execute(
        f"create or replace table {RAW_SCHEMA}.{table} as "
        "select *, cast(null as timestamp) as _loaded_at from empty"
    )


def load_parquet_dir(con: duckdb.DuckDBPyConnection, raw_dir: Path) -> dict[str, int]:
    """Replace every raw table with the Parquet parts under ``raw_dir/<table>/``.

    Loading replaces the raw tables as a whole (a demo or a one-off real data set is a
    full snapshot), so re-running a load is idempotent.
    """
    con.execute(f"create schema if not exists {RAW_SCHEMA}")
    counts: dict[str, int] = {}
    for table in RAW_TABLES:
        folder = raw_dir / table
        parts = sorted(folder.glob("*.parquet")) if folder.exists() else []
        if not parts:
            _create_empty(con, table)
            counts[table] = 0
            continue
        cols = ", ".join(RAW_TABLES[table].names)
        con.execute(
            f"create or replace table {RAW_SCHEMA}.{table} as "
            f"select {cols}, current_timestamp::timestamp as _loaded_at "
            f"from read_parquet(?)",
            [[str(p) for p in parts]],
        )
        counts[table] = con.execute(f"select count(*) from {RAW_SCHEMA}.{table}").fetchall()[0][0]
    return counts


def load_frames(con: duckdb.DuckDBPyConnection, frames: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Replace every raw table with the given frames; tables not given become empty."""
    con.execute(f"create schema if not exists {RAW_SCHEMA}")
    counts: dict[str, int] = {}
    for table, schema in RAW_TABLES.items():
        if table not in frames:
            _create_empty(con, table)
            counts[table] = 0
            continue
        arrow = pa.Table.from_pandas(  # noqa: F841 (used by duckdb)
            frames[table][list(schema.names)], schema=schema, preserve_index=False
        )
        con.execute(
            f"create or replace table {RAW_SCHEMA}.{table} as "
            "select *, current_timestamp::timestamp as _loaded_at from arrow"
        )
        counts[table] = len(frames[table])
    return counts
