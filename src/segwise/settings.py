"""One settings object, read from the environment when asked for (never at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def project_root() -> Path:
    """The repository root: where dbt_project.yml lives."""
    env = os.environ.get("SEGWISE_PROJECT_DIR")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "dbt_project.yml").exists():
            return parent
    return Path.cwd()


def project_vars(project_dir: Path) -> dict:
    """The dbt vars declared in ``project_dir/dbt_project.yml``."""
    import yaml

    doc = yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}
    return doc.get("vars") or {}


def default_shared_data(root: Path) -> Path:
    """``shared/data`` in the nearest folder above the checkout that has one — the
    documented ``../shared/data`` for a checkout beside it, and the same folder for a
    clone nested deeper below it. ``SEGWISE_SHARED_DATA`` overrides it."""
    for parent in root.parents:
        candidate = parent / "shared" / "data"
        if candidate.is_dir():
            return candidate.resolve()
    return (root.parent / "shared" / "data").resolve()


@dataclass(frozen=True)
class Settings:
    project_dir: Path
    duckdb_path: Path
    output_dir: Path
    shared_data_dir: Path
    dbt_target: str = "duckdb"
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Settings:
        root = project_root()
        duckdb_path = Path(
            os.environ.get("SEGWISE_DUCKDB_PATH", root / "warehouse" / "segwise.duckdb")
        ).resolve()
        output_dir = Path(os.environ.get("SEGWISE_OUTPUT_DIR", root / "output")).resolve()
        shared = Path(os.environ["SEGWISE_SHARED_DATA"]) if os.environ.get(
            "SEGWISE_SHARED_DATA") else default_shared_data(root)
        return cls(
            project_dir=root,
            duckdb_path=duckdb_path,
            output_dir=output_dir,
            shared_data_dir=shared,
            dbt_target=os.environ.get("SEGWISE_DBT_TARGET", "duckdb"),
        )

    @property
    def raw_dir(self) -> Path:
        """Where generated raw Parquet files are written before loading."""
        return self.duckdb_path.parent / "raw"

    @property
    def gx_dir(self) -> Path:
        return self.output_dir / "gx"
