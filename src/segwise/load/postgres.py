"""Landing raw tables in PostgreSQL (the `postgres` dbt target), for portability runs.

Same raw schema as DuckDB; rows are streamed with COPY. Connection settings come from
the SEGWISE_PG_* environment variables (as in profiles.yml), never from files.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd
import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg2 import sql

from segwise.raw_schema import RAW_TABLES

PG_TYPES = {
    pa.string(): "text",
    pa.timestamp("us"): "timestamp",
    pa.bool_(): "boolean",
    pa.float64(): "double precision",
    pa.int64(): "bigint",
}


def pg_dsn(database: str | None = None) -> dict[str, str]:
    return {
        "host": os.environ.get("SEGWISE_PG_HOST", "127.0.0.1"),
        "port": os.environ.get("SEGWISE_PG_PORT", "5432"),
        "user": os.environ.get("SEGWISE_PG_USER", "postgres"),
        "password": os.environ.get("SEGWISE_PG_PASSWORD", ""),
        "dbname": database or os.environ.get("SEGWISE_PG_DATABASE", "segwise"),
    }


def create_database(name: str) -> None:
    con = psycopg2.connect(**pg_dsn("postgres"))
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(name)))
        cur.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    con.close()


def drop_database(name: str) -> None:
    con = psycopg2.connect(**pg_dsn("postgres"))
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute(sql.SQL("drop database if exists {} with (force)").format(
            sql.Identifier(name)))
    con.close()


def load_parquet_dir_postgres(raw_dir: Path, database: str | None = None) -> dict[str, int]:
    """Replace the raw tables in PostgreSQL with the Parquet parts under ``raw_dir``."""
    con = psycopg2.connect(**pg_dsn(database))
    counts: dict[str, int] = {}
    try:
        with con, con.cursor() as cur:
            cur.execute("create schema if not exists raw")
            for table, schema in RAW_TABLES.items():
                ident = sql.Identifier("raw", table)
                cols = sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(PG_TYPES[f.type]))
                    for f in schema)
                cur.execute(sql.SQL("drop table if exists {}").format(ident))
                cur.execute(sql.SQL("create table {} ({}, _loaded_at timestamp default "
                                    "(now() at time zone 'utc'))").format(ident, cols))
                counts[table] = 0
                folder = raw_dir / table
                for part in sorted(folder.glob("*.parquet")) if folder.exists() else []:
                    frame = pq.read_table(part).to_pandas()
                    buf = io.StringIO()
                    frame[list(schema.names)].to_csv(buf, index=False, header=False, na_rep="\\N")
                    buf.seek(0)
                    cur.copy_expert(
                        sql.SQL("copy {} ({}) from stdin with (format csv, null '\\N')").format(
                            ident, sql.SQL(", ").join(sql.Identifier(n) for n in schema.names)),
                        buf)
                    counts[table] += len(frame)
    finally:
        con.close()
    return counts


__all__ = ["create_database", "drop_database", "load_parquet_dir_postgres", "pd"]
