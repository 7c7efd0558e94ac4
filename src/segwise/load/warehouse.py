"""Landing raw tables in the warehouse (schema ``raw``) — DuckDB, the embedded default.

A load is all or nothing: every file is checked against the raw contract
(``segwise.raw_schema``) before anything is touched — one error lists every file, table
and column that does not fit — and all raw tables are then replaced in one transaction.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from segwise import progress
from segwise.errors import ConfigurationError
from segwise.raw_schema import (
    CONTRACT_BY_NAME,
    DATA_TYPES,
    EMAIL_COLUMNS,
    RAW_TABLES,
    raw_relation,
    raw_schema_of,
)
from segwise.warehouse import as_connection, connect, table_exists

RAW_SCHEMA = "raw"  # the default; where each table lives: raw_schema.raw_relation
DUCKDB_TYPES = DATA_TYPES  # the contract's type names are DuckDB's

__all__ = ["RAW_SCHEMA", "RawContractError", "check_parquet_dir", "connect", "forget_in_raw",
           "load_frames", "load_parquet_dir"]


class RawContractError(ConfigurationError, ValueError):
    """Raw files that do not match the raw contract; nothing was loaded."""


def _fits(found: pa.DataType, wanted: pa.DataType) -> bool:
    """Can a column of type ``found`` be loaded, without losing meaning, as ``wanted``?"""
    if pa.types.is_dictionary(found):
        found = found.value_type
    if pa.types.is_null(found) or found == wanted:
        return True
    if pa.types.is_string(wanted):
        return pa.types.is_string(found) or pa.types.is_large_string(found)
    if pa.types.is_timestamp(wanted):
        return pa.types.is_timestamp(found) or pa.types.is_date(found)
    if pa.types.is_floating(wanted):
        return pa.types.is_floating(found) or pa.types.is_integer(found)
    if pa.types.is_integer(wanted):
        return pa.types.is_integer(found)
    return False


def check_parquet_dir(raw_dir: Path) -> dict[str, list[Path]]:
    """The Parquet parts per raw table, after checking every file against the contract:
    raises ``RawContractError`` naming each file, table, missing required or mistyped
    column and the columns the file has. An optional column may be absent (loaded as
    null)."""
    return {t: parts for t, (parts, _) in _checked_parts(raw_dir).items()}


def _checked_parts(raw_dir: Path) -> dict[str, tuple[list[Path], set[str]]]:
    problems: list[str] = []
    plan: dict[str, tuple[list[Path], set[str]]] = {}
    for table, schema in RAW_TABLES.items():
        folder = raw_dir / table
        parts = sorted(folder.glob("*.parquet")) if folder.exists() else []
        required = {c.name for c in CONTRACT_BY_NAME[table].columns if c.required}
        available: set[str] = set()
        for part in parts:
            try:
                found = pq.read_schema(part)
            except (OSError, pa.ArrowException) as exc:
                problems.append(f"{part} (raw.{table}): not a readable Parquet file: {exc}")
                continue
            available |= set(found.names)
            missing = [n for n in schema.names if n in required and n not in found.names]
            wrong = [f"{f.name} is {found.field(f.name).type}, expected {f.type}"
                     for f in schema if f.name in found.names
                     and not _fits(found.field(f.name).type, f.type)]
            if missing or wrong:
                problems.append(
                    f"{part} (raw.{table}): "
                    + "; ".join(([f"missing column(s) {missing} (the file has "
                                  f"{sorted(found.names)})"] if missing else []) + wrong))
        plan[table] = (parts, available)
    if problems:
        raise RawContractError("the raw files do not match the raw contract; nothing was "
                               "loaded:\n  " + "\n  ".join(problems))
    return plan


def _select(table: str, available: set[str] | None = None) -> str:
    """The contract's columns in its types; an optional column the input lacks is null."""
    def value(name: str) -> str:
        return f'"{name}"' if available is None or name in available else "null"

    return ", ".join(f'cast({value(f.name)} as {DUCKDB_TYPES[f.type]}) as "{f.name}"'
                     for f in RAW_TABLES[table])


def _replace_all(con, sources: dict[str, str | None],
                 params: dict[str, list],
                 available: dict[str, set[str]] | None = None,
                 loaded_at: dict[str, str] | None = None) -> dict[str, int]:
    """Replace every raw table in one transaction: ``sources[table]`` is a relation to
    select from (None: an empty table of the contract's shape)."""
    for schema in {raw_schema_of(t) for t in RAW_TABLES}:
        con.execute(f"create schema if not exists {schema}")
    counts: dict[str, int] = {}
    con.execute("begin transaction")
    try:
        with progress.task("load: raw tables", len(RAW_TABLES)) as update:
            for done, table in enumerate(RAW_TABLES, 1):
                source = sources.get(table)
                if source is None:
                    source = f"empty_{table}"
                    con.register(source, pa.Table.from_pylist([], schema=RAW_TABLES[table]))
                con.execute(f"create or replace table {raw_relation(table)} as select "
                            f"{_select(table, (available or {}).get(table))}, "
                            f"cast({(loaded_at or {}).get(table, 'null')} as timestamp) "
                            "as _loaded_at "
                            f"from {source}", params.get(table, []))
                update(done)
        forget_in_raw(con)  # a source may still send people erased with `segwise forget`
        for table in RAW_TABLES:
            counts[table] = con.execute(
                f"select count(*) from {raw_relation(table)}").fetchall()[0][0]
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return counts


def raw_table_exists(con, table: str) -> bool:
    """Has the raw table landed where the contract says it lives?"""
    return table_exists(con, raw_schema_of(table), table)


def create_empty_raw_table(con, table: str) -> None:
    """An empty raw table of the contract's shape (a source that has not landed); the
    same DDL on DuckDB and PostgreSQL."""
    con.execute(f"create schema if not exists {raw_schema_of(table)}")
    con.execute(f"create table {raw_relation(table)} ("
                + ", ".join(f'"{f.name}" {DATA_TYPES[f.type]}' for f in RAW_TABLES[table])
                + ", _loaded_at timestamp)")


def forget_in_raw(con) -> int:
    """Delete the raw rows that carry an erased address (``ops.erasure_requests`` holds
    their SHA-256): after ``segwise forget`` and after every load. Returns rows deleted."""
    con = as_connection(con)
    if not table_exists(con, "ops", "erasure_requests"):
        return 0
    deleted = 0
    if raw_table_exists(con, "crm_contact_attributes") and raw_table_exists(con,
                                                                         "crm_contacts"):
        # attributes carry no address: found through the contact rows, so deleted first
        deleted += con.execute(
            f"delete from {raw_relation('crm_contact_attributes')} where trim(customer_id) in "
            f"(select trim(customer_id) from {raw_relation('crm_contacts')} where "
            f"{con.sha256_hex('lower(trim(email))')} in "
            "(select email_sha256 from ops.erasure_requests))").fetchall()[0][0]
    for table, column in EMAIL_COLUMNS.items():
        if not raw_table_exists(con, table):
            continue
        deleted += con.execute(
            f"delete from {raw_relation(table)} where "
            f"{con.sha256_hex(f'lower(trim({column}))')} in "
            "(select email_sha256 from ops.erasure_requests)").fetchall()[0][0]
    return deleted


def load_parquet_dir(con, raw_dir: Path) -> dict[str, int]:
    """Replace every raw table with the Parquet parts under ``raw_dir/<table>/`` (a table
    without parts becomes empty). Checked first, then one transaction: re-running is
    idempotent and a bad file changes nothing."""
    con = as_connection(con)
    plan = _checked_parts(raw_dir)
    # _loaded_at: when the file landed (its modification time, UTC), so source freshness
    # measures the data, not the load command
    times = pd.DataFrame(
        [(str(p), pd.Timestamp(p.stat().st_mtime, unit="s")) for parts, _ in plan.values()
         for p in parts], columns=["part", "landed_at"])
    con.register("part_landed_at", times)
    sources = {t: "read_parquet(?, union_by_name = true, filename = '_part') as r "
                  "left join part_landed_at as l on l.part = r._part"
               for t, (parts, _) in plan.items() if parts}
    return _replace_all(con, sources, {t: [[str(p) for p in plan[t][0]]] for t in sources},
                        {t: cols for t, (_, cols) in plan.items()},
                        {t: "l.landed_at" for t in sources})


def load_frames(con, frames: dict[str, pd.DataFrame]
                ) -> dict[str, int]:
    """Replace every raw table with the given frames; tables not given become empty.
    ``_loaded_at`` is the newest timestamp in the frames: an export is made after its last
    row, so historic data reads as old as it is."""
    con = as_connection(con)
    stamps = [frames[t][f.name].max() for t in frames if t in RAW_TABLES
              for f in RAW_TABLES[t] if f.type == pa.timestamp("us")
              and f.name in frames[t] and frames[t][f.name].notna().any()]
    landed_at = max(stamps) if stamps else pd.Timestamp.now(tz="UTC").tz_localize(None)
    arrows = {t: pa.Table.from_pandas(frames[t][list(RAW_TABLES[t].names)],
                                      schema=RAW_TABLES[t], preserve_index=False)
              for t in RAW_TABLES if t in frames}
    for table, arrow in arrows.items():
        con.register(f"frame_{table}", arrow)
    stamp = pd.Timestamp(landed_at).isoformat()
    return _replace_all(con, {t: f"frame_{t}" for t in arrows}, {},
                        loaded_at={t: f"timestamp '{stamp}'" for t in arrows})
