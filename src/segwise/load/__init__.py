"""Landing raw data (generated Parquet or real data sets) in the warehouse."""

from __future__ import annotations

from pathlib import Path

from segwise.load.datasets import dataset_frames
from segwise.load.warehouse import load_frames, load_parquet_dir
from segwise.settings import Settings
from segwise.warehouse import connect, exclusive


def load_generated(settings: Settings, raw_dir: Path | None = None) -> dict[str, int]:
    with exclusive(settings.duckdb_path), connect(settings.duckdb_path) as con:
        return load_parquet_dir(con, raw_dir or settings.raw_dir)


def load_dataset(settings: Settings, name: str) -> dict[str, int]:
    frames = dataset_frames(name, settings.shared_data_dir)
    with exclusive(settings.duckdb_path), connect(settings.duckdb_path) as con:
        return load_frames(con, frames)
