"""Imported experiments: a randomised test run outside segwise (a published data set, an
A/B tool's export) lands in the ``experiments`` schema, and the dbt measurement marts
compute its per-arm results and lift by any unit attribute.

The tables' columns and types are declared once, in
``models/staging/experiments/_experiments__sources.yml``; this module writes exactly
those. An import replaces one experiment's rows in one transaction, so re-running it is
safe and a failed import leaves the previous rows. Rows are written as given: staging
judges them (a unit without an arm, a negative revenue, a duplicate unit is quarantined
with a reason in ``quarantine.quarantine_rows``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from segwise.contract import declared_columns
from segwise.errors import ConfigurationError
from segwise.warehouse import as_connection, table_exists

SOURCES_YAML = Path("models/staging/experiments/_experiments__sources.yml")
SCHEMA = "experiments"
CATALOG, UNITS, ATTRIBUTES = "experiment_catalog", "experiment_units", "experiment_unit_attributes"


@dataclass(frozen=True)
class Experiment:
    """One experiment to import. ``units``: unit_id, arm, visited, converted, revenue (one
    row per randomised unit); ``attributes``: unit_id, attribute, value (long)."""

    experiment_id: str
    name: str
    control_arm: str
    outcome_window_days: int
    description: str
    units: pd.DataFrame
    attributes: pd.DataFrame


HILLSTROM_ATTRIBUTES = ("history_segment", "newbie", "channel", "zip_code", "mens", "womens")


def hillstrom(shared_data: Path) -> Experiment:
    """Kevin Hillstrom's MineThatData e-mail test (2008): 64,000 customers randomised to a
    men's e-mail, a women's e-mail or none, outcomes over two weeks. The file has no ids:
    the unit id is the row number (1-based)."""
    path = shared_data / "hillstrom_email" / "hillstrom.csv"
    if not path.exists():
        raise ConfigurationError(f"{path} not found: set SEGWISE_SHARED_DATA to the folder "
                                 "holding hillstrom_email/hillstrom.csv")
    raw = pd.read_csv(path, dtype={"zip_code": str, "history_segment": str, "channel": str,
                                   "segment": str})
    unit_id = (pd.RangeIndex(len(raw)) + 1).astype(str)
    units = pd.DataFrame({
        "unit_id": unit_id,
        "arm": raw["segment"],
        "visited": raw["visit"].astype(bool),
        "converted": raw["conversion"].astype(bool),
        "revenue": raw["spend"].astype(float),
    })
    attributes = pd.concat(
        [pd.DataFrame({"unit_id": unit_id, "attribute": name, "value": raw[name].astype(str)})
         for name in HILLSTROM_ATTRIBUTES], ignore_index=True)
    return Experiment("hillstrom", "MineThatData e-mail test (Hillstrom 2008)", "No E-Mail", 14,
                      "64,000 customers randomised to a men's e-mail, a women's e-mail or no "
                      "e-mail; visit, conversion and spend over the following two weeks.",
                      units, attributes)


KNOWN = {"hillstrom": hillstrom}


def ensure_tables(con, project_dir: Path) -> None:
    """Create the experiments tables that are missing (the same DDL the dbt hook
    ``create_declared_sources`` runs), on DuckDB and PostgreSQL."""
    con = as_connection(con)
    con.execute(f"create schema if not exists {SCHEMA}")
    for table, columns in declared_columns(project_dir / SOURCES_YAML, SCHEMA).items():
        if not table_exists(con, SCHEMA, table):
            con.execute(f"create table {SCHEMA}.{table} ("
                        + ", ".join(f"{name} {dtype}" for name, dtype in columns) + ")")


def import_experiment(con, project_dir: Path, experiment: Experiment) -> dict[str, int]:
    """Replace ``experiment``'s rows in the three tables in one transaction; the row counts
    written per table."""
    con = as_connection(con)
    ensure_tables(con, project_dir)
    columns = declared_columns(project_dir / SOURCES_YAML, SCHEMA)
    now = datetime.now(UTC).replace(tzinfo=None)
    frames = {
        CATALOG: pd.DataFrame([{
            "experiment_id": experiment.experiment_id, "experiment_name": experiment.name,
            "control_arm": experiment.control_arm,
            "outcome_window_days": experiment.outcome_window_days,
            "description": experiment.description}]),
        UNITS: experiment.units,
        ATTRIBUTES: experiment.attributes,
    }
    written: dict[str, int] = {}
    con.execute("begin transaction")
    try:
        for table, frame in frames.items():
            frame = frame.assign(experiment_id=experiment.experiment_id, imported_at=now)
            names = [name for name, _ in columns[table]]
            missing = sorted(set(names) - set(frame.columns))
            if missing:
                raise ConfigurationError(f"{SCHEMA}.{table}: the import lacks {missing}")
            con.execute(f"delete from {SCHEMA}.{table} where experiment_id = ?",
                        [experiment.experiment_id])
            written[table] = con.insert_frame(f"{SCHEMA}.{table}", frame[names])
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return written
