"""Declarative segments: YAML definitions → validated condition trees → dbt models."""

from __future__ import annotations

from pathlib import Path

from segwise.segments.compiler import write_models
from segwise.segments.spec import (
    Segment,
    SegmentDefinitionError,
    load_definitions,
    load_traits,
)

COMPILED_DIR = Path("models") / "segments" / "compiled"
CATALOG_DIR = Path("models") / "segmentation" / "generated"


def definitions(project_dir: Path, folder: Path | None = None) -> list[Segment]:
    return load_definitions(folder or project_dir / "segments", load_traits(project_dir),
                            root=project_dir, project_dir=project_dir)


def compile_project(project_dir: Path, folder: Path | None = None) -> list[Segment]:
    """Validate every definition and (re)write the compiled dbt models."""
    segs = definitions(project_dir, folder)
    write_models(segs, project_dir / COMPILED_DIR, project_dir / CATALOG_DIR)
    return segs


__all__ = ["CATALOG_DIR", "COMPILED_DIR", "Segment", "SegmentDefinitionError", "compile_project",
           "definitions"]
