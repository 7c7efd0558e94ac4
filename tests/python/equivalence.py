"""Comparing two warehouses table by table (DuckDB against PostgreSQL, an incremental
build against a full one): rows as plain, engine-neutral values, sorted."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from conftest import query

# columns stamped with each run's own clock (the builds ran one after the other) or the
# time its generated files landed, and ids hashed from those
RUN_CLOCK = {"computed_at", "built_at", "synced_at", "valid_from", "valid_to",
             "dbt_updated_at", "dbt_valid_from", "changed_at", "observed_at", "snapshot_at",
             "loaded_at", "_loaded_at", "quarantined_at", "membership_period_id", "size_id",
             "model_run_id", "scorecard_id", "history_id"}


def plain(value):
    """One value as both engines' drivers should agree on it."""
    if value is None:
        return None
    if isinstance(value, float | Decimal):
        return None if value != value else round(float(value), 6)
    if isinstance(value, datetime):  # DuckDB's dates reach pandas as midnight timestamps
        value = value.replace(tzinfo=None)
        return value.date().isoformat() if value == datetime.combine(
            value.date(), datetime.min.time()) else value.isoformat(sep=" ")
    if hasattr(value, "item"):  # numpy scalars
        return plain(value.item())
    if isinstance(value, date):
        return value.isoformat()
    return value


def rows(settings, relation: str, skip: set[str] = frozenset()) -> tuple[list, list]:
    frame = query(settings, f"select * from {relation}")
    cols = sorted(c for c in frame.columns if c not in skip)
    values = [tuple(plain(v) for v in r) for r in frame[cols].astype(object)
              .where(frame[cols].notna(), None).itertuples(index=False, name=None)]
    return cols, sorted(values, key=repr)


def relations(settings, schema: str) -> list[str]:
    return query(settings, "select table_name from information_schema.tables where "
                 f"table_schema = '{schema}' order by 1")["table_name"].tolist()
