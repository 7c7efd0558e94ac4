"""Preview and diff segment definitions against the built warehouse without writing.

The working-tree definitions are compiled in memory, rendered to SQL by
``dbt compile --inline`` (refs and macros resolve against the built project, nothing is
materialised) and run read-only on the warehouse. ``diff`` compares that membership with
the segment views as last built — what a pull request would change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from segwise.ops import list_segments
from segwise.segments.compiler import compile_segment
from segwise.segments.spec import Segment
from segwise.settings import Settings
from segwise.transform.dbt import run_dbt
from segwise.warehouse import connect

CONFIG_RE = re.compile(r"^\{\{ config\(.*\) \}\}\n", re.MULTILINE)


def _model_sql(seg: Segment) -> str:
    return CONFIG_RE.sub("", compile_segment(seg))


def last_build_vars(settings: Settings) -> dict:
    """The as-of date of the latest build, so previews compare like with like."""
    from segwise.ops import last_build
    from segwise.pipeline_vars import dbt_vars

    with connect(settings, read_only=True) as con:
        build = last_build(con)
    return dbt_vars(*build) if build else {}


def render(settings: Settings, sql: str) -> str:
    """Render ``sql`` with dbt against the built project. On DuckDB dbt opens the
    warehouse read-only (the ``duckdb_read_only`` target), so rendering cannot write."""
    target = ["--target", "duckdb_read_only"] if settings.dbt_target == "duckdb" else []
    result = run_dbt(settings, ["compile", "--quiet", "--inline", sql, *target],
                     dbt_vars=last_build_vars(settings))
    return result.output.strip()


@dataclass
class Preview:
    segment: str
    size: int
    sample: pd.DataFrame


def preview(settings: Settings, seg: Segment, sample: int = 10) -> Preview:
    compiled = render(settings, _model_sql(seg))
    with connect(settings, read_only=True) as con:
        size = con.execute(f"select count(*) from ({compiled}) as s").fetchall()[0][0]
        rows = con.execute(f"select customer_id, reason, is_holdout from ({compiled}) as s "
                           f"order by customer_id limit {int(sample)}").df()
    return Preview(seg.name, size, rows)


@dataclass
class SegmentDiff:
    segment: str
    built: bool
    before: int
    after: int
    added: pd.DataFrame = field(repr=False)
    removed: pd.DataFrame = field(repr=False)
    rule_version_before: str | None = None
    rule_version_after: str | None = None

    @property
    def changed(self) -> bool:
        return (not self.added.empty or not self.removed.empty
                or self.rule_version_before != self.rule_version_after)


def diff(settings: Settings, segments: list[Segment],
         report_deleted: bool = True) -> list[SegmentDiff]:
    """Membership under ``segments`` (working tree) vs the views as last built; with
    ``report_deleted``, built segments without a definition show as fully removed."""
    if not segments:
        return []
    union = "\nunion all\n".join(
        f"select '{s.name}' as segment_name, customer_id, reason, rule_version "
        f"from (\n{_model_sql(s)}\n) as seg_{i}" for i, s in enumerate(segments))
    compiled = render(settings, union)
    out = []
    with connect(settings, read_only=True) as con:
        new = con.execute(f"select * from ({compiled}) as s").df()
        built = set(list_segments(con))
        versions: dict[str, str] = {}
        if con.execute("select count(*) from information_schema.tables where table_schema = "
                       "'segmentation' and table_name = 'segment_catalog'").fetchall()[0][0]:
            versions = dict(con.execute("select segment_name, rule_version from "
                                        "segmentation.segment_catalog").fetchall())
        deleted = built - {s.name for s in segments} if report_deleted else set()
        for name in sorted(deleted):  # definition deleted
            before = con.execute(f'select customer_id, reason from segments."{name}"').df()
            out.append(SegmentDiff(name, True, len(before), 0, before.iloc[0:0],
                                   before.sort_values("customer_id"), versions.get(name), None))
        for seg in segments:
            after = new[new["segment_name"] == seg.name]
            if seg.name in built:
                before = con.execute(f'select customer_id, reason, rule_version from '
                                     f'segments."{seg.name}"').df()
            else:
                before = pd.DataFrame(columns=["customer_id", "reason", "rule_version"])
            added = after[~after["customer_id"].isin(before["customer_id"])]
            removed = before[~before["customer_id"].isin(after["customer_id"])]
            out.append(SegmentDiff(
                seg.name, seg.name in built, len(before), len(after),
                added[["customer_id", "reason"]].sort_values("customer_id"),
                removed[["customer_id", "reason"]].sort_values("customer_id"),
                versions.get(seg.name), seg.rule_version,
            ))
    return out
