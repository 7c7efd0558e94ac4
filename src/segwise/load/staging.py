"""Loads on either engine with one loader: the file readers are DuckDB's (CSV with rejects,
Parquet, NDJSON, typed casts), so a load on PostgreSQL reads and checks the files in an
in-memory DuckDB — nothing is written to a DuckDB file — and then writes the result to
PostgreSQL in one transaction: all raw tables and the load's ``ops`` rows, or nothing.

What the loaders read from the warehouse comes along first: the erasure requests (a load
never brings back an erased address), the load ledger (an ``append`` skips files loaded
before) and, for ``append``, the shape of the raw tables already there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from segwise.load.warehouse import create_empty_raw_table, raw_table_exists
from segwise.raw_schema import RAW_TABLES, raw_relation, raw_schema_of
from segwise.settings import Settings
from segwise.warehouse import DuckConnection, connect, ensure_ops, is_postgres

# the ops tables a load reads (copied in) and the ones it appends to (copied out)
READS = ("erasure_requests", "load_files")
WRITES = ("load_files", "load_rejections")

PG_TYPES = {"VARCHAR": "text", "TIMESTAMP": "timestamp", "BOOLEAN": "boolean",
            "DOUBLE": "double precision", "FLOAT": "real", "BIGINT": "bigint",
            "INTEGER": "integer", "DATE": "date", "SMALLINT": "smallint",
            "TIMESTAMP WITH TIME ZONE": "timestamptz", "HUGEINT": "numeric"}


def pg_type(duck_type: str) -> str:
    if duck_type.startswith("DECIMAL"):
        return duck_type.replace("DECIMAL", "numeric")
    if duck_type not in PG_TYPES:
        raise TypeError(f"no PostgreSQL type for DuckDB's {duck_type}")
    return PG_TYPES[duck_type]


@contextmanager
def loading(settings: Settings, append: bool = False) -> Iterator[DuckConnection]:
    """A DuckDB connection for the loaders. DuckDB: the warehouse itself. PostgreSQL: an
    in-memory staging warehouse; when the block ends without an error, every raw table it
    holds replaces (``append``: is appended to) the one in PostgreSQL, and the new load
    ledger rows are added — in one transaction."""
    if not is_postgres(settings):
        with connect(settings) as con:
            yield con
        return
    mem = DuckConnection(duckdb.connect(":memory:"))
    try:
        with connect(settings) as pg:
            ensure_ops(pg)
            ensure_ops(mem)
            for table in READS:
                mem.insert_frame(f"ops.{table}", pg.execute(f"select * from ops.{table}").df())
            known = {r[0] for r in mem.execute("select load_id from ops.load_files").fetchall()}
            existing = {t for t in RAW_TABLES if raw_table_exists(pg, t)}
            if append:
                for table in existing:
                    create_empty_raw_table(mem, table)
            yield mem
            _write_back(mem, pg, append, existing, known)
    finally:
        mem.close()


def _write_back(mem: DuckConnection, pg, append: bool, existing: set[str],
                known: set[str]) -> None:
    loaded = [t for t in RAW_TABLES if raw_table_exists(mem, t)]
    pg.execute("begin transaction")
    try:
        for schema in {raw_schema_of(t) for t in loaded}:
            pg.execute(f"create schema if not exists {schema}")
        for table in loaded:
            relation = raw_relation(table)
            if not (append and table in existing):
                _replace_table(mem, pg, relation, table in existing)
            result = mem.execute(f"select * from {relation}")
            names = [d[0] for d in result.description]
            pg.insert_rows(relation, names, result.fetchall())
        for table in WRITES:
            rows = mem.execute(f"select * from ops.{table}").df()
            if table == "load_files":
                rows = rows[~rows["load_id"].isin(known)]
            pg.insert_frame(f"ops.{table}", rows)
        pg.execute("commit")
    except BaseException:
        pg.execute("rollback")
        raise
    for table in loaded:  # planner statistics for the new rows (none until autovacuum)
        pg.execute(f"analyze {raw_relation(table)}")



def _replace_table(mem: DuckConnection, pg, relation: str, exists: bool) -> None:
    """Empty the PostgreSQL table for the staged rows. The same shape is truncated (dbt's
    views over it stay); another shape is dropped with its dependent views (the next
    build recreates them; readers use the published copies) and created anew."""
    columns = [(name, pg_type(kind)) for name, kind, *_ in
               mem.execute(f"describe {relation}").fetchall()]
    if exists:
        current = pg.execute(
            "select attname, format_type(atttypid, atttypmod) from pg_attribute where "
            "attrelid = cast(? as regclass) and attnum > 0 and not attisdropped "
            "order by attnum", [relation]).fetchall()
        if [tuple(r) for r in current] == [(n, _canonical(t)) for n, t in columns]:
            pg.execute(f"truncate table {relation}")
            return
        pg.execute(f"drop table {relation} cascade")
    pg.execute(f"create table {relation} (" + ", ".join(
        f'"{name}" {kind}' for name, kind in columns) + ")")


def _canonical(pg_type_name: str) -> str:
    """A type as PostgreSQL's format_type() spells it."""
    return {"text": "text", "timestamp": "timestamp without time zone",
            "timestamptz": "timestamp with time zone"}.get(pg_type_name, pg_type_name)
