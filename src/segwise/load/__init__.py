"""Landing raw data (generated Parquet or real data sets) in the warehouse — or taking
what the user's own loaders landed (``landed``)."""

from __future__ import annotations

from pathlib import Path

from segwise.errors import NothingLanded
from segwise.load.datasets import dataset_frames
from segwise.load.staging import loading
from segwise.load.warehouse import (
    create_empty_raw_table,
    load_frames,
    load_parquet_dir,
    raw_table_exists,
)
from segwise.raw_schema import RAW_TABLES, raw_relation
from segwise.settings import Settings
from segwise.warehouse import connect, describe, exclusive, is_postgres


def load_generated(settings: Settings, raw_dir: Path | None = None) -> dict[str, int]:
    with exclusive(settings), loading(settings) as con:
        return load_parquet_dir(con, raw_dir or settings.raw_dir)


def load_dataset(settings: Settings, name: str) -> dict[str, int]:
    frames = dataset_frames(name, settings.shared_data_dir)
    with exclusive(settings), loading(settings) as con:
        return load_frames(con, frames)


# the dataset name of a run that loads nothing: it builds on the raw tables as they are
LANDED = "landed"


def landed_counts(settings: Settings, say=print) -> dict[str, int]:
    """Rows in each raw table that has landed. A contract table that is missing is created
    empty (a source the business does not have, e.g. web events). Raises
    ``NothingLanded`` when no table holds a row, so a run never builds on nothing."""
    with exclusive(settings), connect(settings) as con:
        present = {table for table in RAW_TABLES if raw_table_exists(con, table)}
        counts = {t: con.execute(f"select count(*) from {raw_relation(t)}").fetchall()[0][0]
                  for t in present}
        if not any(counts.values()):
            raise NothingLanded(
                f"no raw tables have landed in {describe(settings)} (looked for "
                f"{', '.join(raw_relation(t) for t in RAW_TABLES)}): load them first "
                "(`segwise load`, or your own loader), or run the demo with dataset "
                "'generated'")
        for table in RAW_TABLES:
            if table not in present:
                say(f"  raw.{table} has not landed: created empty as {raw_relation(table)}")
                create_empty_raw_table(con, table)
                counts[table] = 0
    return counts


def load_mapping_file(settings: Settings, mapping_path: Path, mode: str = "replace"):
    """``segwise load --mapping``: the user's files through their mapping (see
    ``segwise.load.mapping``); returns the ``LoadReport``."""
    from segwise.load.mapping import load_mapped, read_mapping

    mapping = read_mapping(mapping_path)
    with exclusive(settings):
        with loading(settings, append=mode == "append") as con:
            report = load_mapped(con, mapping, mode)
        if is_postgres(settings):  # the staging area held only this load's rows
            with connect(settings) as con:
                report.rows = {t: con.execute(f"select count(*) from {raw_relation(t)}"
                                              ).fetchall()[0][0] for t in report.rows}
        return report
