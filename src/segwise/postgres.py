"""PostgreSQL as the warehouse (``SEGWISE_DBT_TARGET=postgres``): the connection every
segwise command uses there, and the advisory lock that makes one run at a time own it.

The connection speaks the small interface the package's SQL is written against (the same
one ``segwise.warehouse`` gives DuckDB): ``execute(sql, params)`` with ``?`` placeholders
and ``fetchall()`` / ``df()`` on the result, ``temp_table``, ``insert_frame`` and
``sha256_hex``. Statements autocommit unless the caller opens ``begin transaction``, as on
DuckDB. Connection settings come from the ``SEGWISE_PG_*`` environment variables (the
same ones ``profiles.yml`` reads), never from files.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import psycopg2
import psycopg2.errors
from psycopg2 import sql as pgsql

ENGINE = "postgres"
START_HINT = ("start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) "
              "main start`, or point SEGWISE_PG_HOST/SEGWISE_PG_PORT at your server")


def pg_dsn(database: str | None = None, env: Mapping[str, str] | None = None
           ) -> dict[str, str]:
    """Connection settings: ``env`` (a run's own variables) first, then the process
    environment, then the defaults of ``profiles.yml``."""
    def get(name: str, default: str) -> str:
        if env and name in env:
            return env[name]
        return os.environ.get(name, default)

    return {
        "host": get("SEGWISE_PG_HOST", "127.0.0.1"),
        "port": get("SEGWISE_PG_PORT", "5432"),
        "user": get("SEGWISE_PG_USER", "postgres"),
        "password": get("SEGWISE_PG_PASSWORD", ""),
        "dbname": database or get("SEGWISE_PG_DATABASE", "segwise"),
    }


def describe(dsn: Mapping[str, str]) -> str:
    """The warehouse in messages (never the password)."""
    return f"postgresql://{dsn['user']}@{dsn['host']}:{dsn['port']}/{dsn['dbname']}"


class WarehouseUnreachable(RuntimeError):
    """The PostgreSQL warehouse could not be reached."""


def open_raw(dsn: Mapping[str, str], application: str = "segwise"):
    try:
        con = psycopg2.connect(**dsn, application_name=application[:63])
    except psycopg2.OperationalError as exc:
        raise WarehouseUnreachable(
            f"PostgreSQL is not reachable at {describe(dsn)}: {START_HINT} "
            f"({str(exc).strip()})") from exc
    con.autocommit = True
    return con


def to_pyformat(statement: str) -> str:
    """``?`` placeholders (DuckDB's, the package's) as psycopg2's ``%s``; a literal ``%``
    doubled. Quoted text and identifiers are left alone."""
    out: list[str] = []
    quote: str | None = None
    for ch in statement:
        if quote:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


class PgResult:
    def __init__(self, cursor) -> None:
        self._cursor = cursor

    def fetchall(self) -> list[tuple]:
        if self._cursor.description is None:  # DML: the row count, as DuckDB answers
            return [(self._cursor.rowcount,)]
        return self._cursor.fetchall()

    def df(self) -> pd.DataFrame:
        columns = [c.name for c in self._cursor.description]
        return pd.DataFrame(self._cursor.fetchall(), columns=columns)


class PgConnection:
    """One PostgreSQL session in the package's SQL interface."""

    engine = ENGINE

    def __init__(self, dsn: Mapping[str, str], read_only: bool = False) -> None:
        self.raw = open_raw(dsn)
        with self.raw.cursor() as cur:
            cur.execute("set time zone 'UTC'")
            if read_only:
                cur.execute("set session characteristics as transaction read only")

    def execute(self, statement: str, params: Sequence[Any] | None = None) -> PgResult:
        cur = self.raw.cursor()
        if params is None:
            cur.execute(statement)
        else:
            cur.execute(to_pyformat(statement), [_adapt(p) for p in params])
        return PgResult(cur)

    def temp_table(self, name: str, select: str, params: Sequence[Any] | None = None) -> None:
        self.execute(f"drop table if exists pg_temp.{name}")
        self.execute(f"create temp table {name} as {select}", params)

    def frame_table(self, name: str, frame: pd.DataFrame, types: Mapping[str, str]) -> None:
        """A temp table holding ``frame`` (columns typed by ``types``)."""
        self.execute(f"drop table if exists pg_temp.{name}")
        self.execute(f"create temp table {name} ("
                     + ", ".join(f'"{c}" {types[c]}' for c in frame.columns) + ")")
        self.insert_frame(name, frame)

    def insert_frame(self, table: str, frame: pd.DataFrame) -> int:
        """Insert ``frame``'s rows by column name (COPY)."""
        if frame.empty:
            return 0
        copy_frame(self.raw.cursor(), table, frame)
        return len(frame)

    def insert_rows(self, table: str, columns: Sequence[str], rows) -> None:
        copy_rows(self.raw.cursor(), table, columns, rows)

    @staticmethod
    def sha256_hex(expr: str) -> str:
        return f"encode(sha256(convert_to({expr}, 'UTF8')), 'hex')"

    @staticmethod
    def matches_ci(expr: str) -> str:
        return f"{expr} ~* ?"

    @staticmethod
    def sample_sql(query: str, rows: int) -> str:
        """Deterministic: the rows whose text hashes lowest."""
        return f"select * from ({query}) as q order by md5(q::text) limit {int(rows)}"

    def to_parquet(self, query: str, path) -> None:
        numbers_as_floats(self.execute(query).df()).to_parquet(path, index=False)

    def close(self) -> None:
        self.raw.close()


def numbers_as_floats(frame: pd.DataFrame) -> pd.DataFrame:
    """``numeric`` columns arrive from psycopg2 as Decimal objects: as floats, so they are
    analysed as numbers (a no-op for DuckDB's frames)."""
    for column in frame.columns:
        if frame[column].dtype == object and frame[column].map(
                lambda v: isinstance(v, Decimal)).any():
            frame[column] = frame[column].astype("float64")
    return frame


def _adapt(value: Any) -> Any:
    return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value


NULL = "\\N"


def copy_frame(cur, table: str, frame: pd.DataFrame) -> None:
    """Stream ``frame`` into ``table`` (``schema.name`` or a temp table) with COPY. Every
    value is quoted and null is the unquoted ``\\N``, so an empty string stays an empty
    string and no text can read as null."""
    copy_rows(cur, table, [str(c) for c in frame.columns],
              frame.itertuples(index=False, name=None))


def copy_rows(cur, table: str, columns: Sequence[str], rows) -> None:
    """``copy_frame`` for rows of Python values (``fetchall()`` of another engine)."""
    buf = io.StringIO()
    for row in rows:
        buf.write(",".join(NULL if _isnull(v) else _quoted(v) for v in row))
        buf.write("\n")
    buf.seek(0)
    schema, _, name = table.rpartition(".")
    ident = pgsql.Identifier(schema, name) if schema else pgsql.Identifier(name)
    cur.copy_expert(pgsql.SQL("copy {} ({}) from stdin with (format csv, null '\\N')").format(
        ident, pgsql.SQL(", ").join(pgsql.Identifier(c) for c in columns)), buf)


def _isnull(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _quoted(value: Any) -> str:
    text = value.isoformat() if isinstance(value, datetime | date) else str(value)
    return '"' + text.replace('"', '""') + '"'


# The advisory lock key of "the warehouse": advisory locks are per database, so one
# constant key is one lock per warehouse, held by a session for a whole command and
# released by the server when that session ends (the process died, the network dropped).
LOCK_KEY = 0x5E6_715E  # "segwise"


def try_lock(con) -> bool:
    with con.cursor() as cur:
        cur.execute("select pg_try_advisory_lock(%s)", [LOCK_KEY])
        return bool(cur.fetchone()[0])


def lock_holder(con) -> str:
    with con.cursor() as cur:
        cur.execute("""
            select a.application_name, a.pid, a.backend_start at time zone 'UTC',
                   a.client_addr
            from pg_locks as l join pg_stat_activity as a on a.pid = l.pid
            where l.locktype = 'advisory' and l.granted and l.objid = %s
              and l.database = (select oid from pg_database
                                where datname = current_database())""",
                    [LOCK_KEY & 0xFFFFFFFF])
        row = cur.fetchone()
    if not row:
        return "another segwise run"
    app, pid, since, addr = row
    return (f"{app or 'a session'} (server pid {pid}, from {addr or 'local socket'}, "
            f"since {since:%Y-%m-%d %H:%M:%S} UTC)")


# ---- readers never blocked: serving schemas
# Schemas never published for readers: the raw landing zone (it may hold what staging
# quarantines) and the server's own.
SYSTEM_SCHEMAS = ("information_schema", "public", "pg_toast")


def serving_schemas(con, prefix: str) -> list[str]:
    """The published schemas readers use (``<prefix><schema>``)."""
    with con.cursor() as cur:
        cur.execute("select nspname from pg_namespace where nspname like %s order by 1",
                    [_like(prefix) + "%"])
        return [r[0] for r in cur.fetchall()
                if not r[0].startswith((f"{prefix}next_", f"{prefix}old_"))]


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")


def published_schemas(con, prefix: str, raw_schemas: set[str]) -> list[str]:
    """What dbt and segwise built: every schema but the raw ones, the server's own and the
    serving copies."""
    with con.cursor() as cur:
        cur.execute("select nspname from pg_namespace where nspname not like 'pg\\_%' "
                    "order by 1")
        names = [r[0] for r in cur.fetchall()]
    return [n for n in names if n not in SYSTEM_SCHEMAS and n not in raw_schemas
            and not n.startswith(prefix)]


def publish_schemas(con, prefix: str) -> str:
    """Copy every built relation (tables and views alike, as tables) into fresh
    ``<prefix>next_<schema>`` schemas — readers are not touched while that runs — then
    swap them in under the serving names in one transaction (renames only: no reader's
    lock can hold it up). A reader's statement sees the previous complete state until
    the commit and the new one after it, never a missing relation. The previous copies
    are dropped afterwards, waiting at most a few seconds for a reader still inside one;
    a copy a reader still holds is left for the next publish to drop. Returns the serving
    prefix."""
    from segwise.raw_schema import CONTRACT, raw_schema_of

    raw = {raw_schema_of(t.name) for t in CONTRACT} | {"raw"}
    schemas = published_schemas(con, prefix, raw)
    stamp = datetime.now().strftime("%Y%m%d%H%M%S%f")
    con.autocommit = True
    with con.cursor() as cur:
        _drop_old(cur, prefix)
        for schema in schemas:
            nxt = pgsql.Identifier(f"{prefix}next_{schema}")
            cur.execute(pgsql.SQL("drop schema if exists {} cascade").format(nxt))
            cur.execute(pgsql.SQL("create schema {}").format(nxt))
            cur.execute("select table_name from information_schema.tables where "
                        "table_schema = %s order by 1", [schema])
            for (name,) in cur.fetchall():
                cur.execute(pgsql.SQL("create table {} as select * from {}").format(
                    pgsql.Identifier(f"{prefix}next_{schema}", name),
                    pgsql.Identifier(schema, name)))
        cur.execute("begin")
        try:
            for schema in schemas:
                live = f"{prefix}{schema}"
                cur.execute("select 1 from pg_namespace where nspname = %s", [live])
                if cur.fetchone():
                    cur.execute(pgsql.SQL("alter schema {} rename to {}").format(
                        pgsql.Identifier(live),
                        pgsql.Identifier(f"{prefix}old_{stamp}_{schema}"[:63])))
                cur.execute(pgsql.SQL("alter schema {} rename to {}").format(
                    pgsql.Identifier(f"{prefix}next_{schema}"), pgsql.Identifier(live)))
            cur.execute("commit")
        except BaseException:
            cur.execute("rollback")
            raise
        _drop_old(cur, prefix)
    return prefix


def _drop_old(cur, prefix: str, wait_s: float = 3.0) -> None:
    """Drop the copies earlier publishes replaced, unless a reader still uses one."""
    cur.execute("select nspname from pg_namespace where nspname like %s order by 1",
                [_like(f"{prefix}old_") + "%"])
    for (name,) in cur.fetchall():
        cur.execute("begin")
        cur.execute(f"set local lock_timeout = '{int(wait_s * 1000)}ms'")
        try:
            cur.execute(pgsql.SQL("drop schema {} cascade").format(pgsql.Identifier(name)))
            cur.execute("commit")
        except psycopg2.errors.LockNotAvailable:
            cur.execute("rollback")  # a reader is inside it: the next publish drops it


# ---- databases (tests and first-time set-up)
def create_database(name: str, env: Mapping[str, str] | None = None) -> None:
    """A new, empty database ``name`` on the server (an existing one is dropped)."""
    drop_database(name, env)
    _on_server(pgsql.SQL("create database {}").format(pgsql.Identifier(name)), env)


def drop_database(name: str, env: Mapping[str, str] | None = None) -> None:
    _on_server(pgsql.SQL("drop database if exists {} with (force)").format(
        pgsql.Identifier(name)), env)


def _on_server(statement, env: Mapping[str, str] | None) -> None:
    """One statement in the server's ``postgres`` database (outside any transaction)."""
    con = open_raw(pg_dsn("postgres", env))
    try:
        with con.cursor() as cur:
            cur.execute(statement)
    finally:
        con.close()
