"""Where the scoring step writes: the ``predictions`` tables, whose columns and types are
declared once, in the dbt sources YAML (``models/staging/segwise_predictions``), and the
project's settings for the models (dbt vars in ``dbt_project.yml``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from segwise.contract import declared_columns
from segwise.errors import ConfigurationError
from segwise.postgres import numbers_as_floats
from segwise.settings import project_vars

SOURCES_YAML = Path("models/staging/segwise_predictions/_segwise_predictions__sources.yml")
SCHEMA = "predictions"


@lru_cache(maxsize=8)
def contract(project_dir: Path) -> dict[str, list[tuple[str, str]]]:
    """table -> [(column, data_type)], in declared order."""
    return declared_columns(project_dir / SOURCES_YAML, "segwise_predictions")


# columns every predictions table has that are bookkeeping, not a score
BOOKKEEPING = ("customer_id", "as_of_date", "model_run_id")


def score_columns(project_dir: Path) -> list[str]:
    """The scores the models write (each one a customer_profile trait), in contract order."""
    return [c for cols in contract(project_dir).values() for c, _ in cols
            if c not in BOOKKEEPING]


def replace_table(con, project_dir: Path, table: str, frame: pd.DataFrame) -> int:
    """Replace ``predictions.<table>`` with ``frame`` in one transaction (readers see the
    old rows or the new ones). The frame must have exactly the contract's columns; the
    table exists (dbt's on-run-start hook ``create_declared_sources`` creates it)."""
    columns = contract(project_dir)[table]
    names = [c for c, _ in columns]
    if list(frame.columns) != names:
        raise ConfigurationError(f"predictions.{table}: columns {list(frame.columns)} are not "
                                 f"the contract's {names}")
    con.execute("begin transaction")
    try:
        con.execute(f"delete from {SCHEMA}.{table}")
        con.insert_frame(f"{SCHEMA}.{table}", frame)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return len(frame)


def read_frame(con, sql: str, order: list[str] | None = None) -> pd.DataFrame:
    """A query's rows as a frame, numbers as floats (PostgreSQL answers numeric as Decimal),
    sorted here by ``order`` (code-point order: the same on every engine, whatever its
    collation — the models see their rows in one order everywhere)."""
    frame = numbers_as_floats(con.execute(sql).df())
    if order:
        frame = frame.sort_values(order, kind="stable").reset_index(drop=True)
    return frame


@dataclass(frozen=True)
class ModelSettings:
    churn_horizon_days: int = 90
    churn_band_high: float = 0.7
    churn_band_medium: float = 0.4
    cluster_method: str = "kmeans"
    cluster_k_min: int = 3
    cluster_k_max: int = 8

    @classmethod
    def from_project(cls, project_dir: Path, overrides: dict | None = None) -> ModelSettings:
        found = {**project_vars(project_dir), **(overrides or {})}
        values = {f: found[f] for f in cls.__dataclass_fields__ if f in found}
        out = cls(**values)
        if out.cluster_method not in ("kmeans", "ward", "dbscan"):
            raise ConfigurationError(f"var cluster_method must be kmeans, ward or dbscan, got "
                                     f"{out.cluster_method!r}")
        if not 2 <= out.cluster_k_min <= out.cluster_k_max:
            raise ConfigurationError("vars cluster_k_min/cluster_k_max: need 2 <= min <= max")
        if not 0 < out.churn_band_medium <= out.churn_band_high < 1:
            raise ConfigurationError("vars churn_band_medium/churn_band_high: need "
                                     "0 < medium <= high < 1")
        if int(out.churn_horizon_days) < 7:
            raise ConfigurationError("var churn_horizon_days must be at least 7")
        return out
