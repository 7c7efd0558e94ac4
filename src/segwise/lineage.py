"""Which warehouse relations a segment is built from, and which ones a failure touches.

The data gate is scoped per segment: a failing dbt test or GX expectation blocks the
activation of the segments built from the relation it checks (directly or upstream), not
of unrelated ones. Lineage comes from the dbt manifest of the latest build; relations are
named ``schema.table`` as in the warehouse (``marts.dim_customers``, ``raw.orders``). When
lineage is unknown (no manifest, a node not found, a failure that names no relation) the
answer is "everything": the gate stays closed for all segments.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from segwise.settings import Settings

RELATION_RE = re.compile(r"\b(?:from|join)\s+([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)\b",
                         re.IGNORECASE)


def manifest_path(settings: Settings) -> Path:
    return settings.duckdb_path.parent / "dbt_target" / "manifest.json"


def load_manifest(settings: Settings) -> dict | None:
    """The latest build's manifest (parsed once per file version: a sync of every segment
    to every destination asks for it dozens of times). Treat it as read-only."""
    path = manifest_path(settings)
    try:
        return _parse_manifest(str(path), path.stat().st_mtime_ns)
    except (OSError, ValueError):
        return None


@lru_cache(maxsize=4)
def _parse_manifest(path: str, mtime_ns: int) -> dict:
    return json.loads(Path(path).read_text())


def relation_name(node: dict) -> str:
    """``schema.table`` of a manifest node (model, seed, snapshot or source)."""
    table = node.get("identifier") or node.get("alias") or node["name"]
    return f"{node['schema']}.{table}".lower()


def _nodes(manifest: dict) -> dict[str, dict]:
    return {**manifest.get("nodes", {}), **manifest.get("sources", {})}


def relations_in_sql(sql: str) -> set[str]:
    """The ``schema.table`` relations a query reads (``from`` / ``join`` clauses)."""
    return {f"{s}.{t}".lower() for s, t in RELATION_RE.findall(sql)}


def upstream_relations(manifest: dict | None, segment: str,
                       feed: str | None = None, union: str = "segment_memberships"
                       ) -> set[str] | None:
    """The segment's own view and every relation upstream of it, or None if unknown.

    With ``feed`` (the model a sync reads), also the feed and its lineage — except the
    other segments that reach it through the ``union`` of all memberships: a sync of one
    segment is not blocked by a failure in another segment."""
    if not manifest:
        return None
    nodes = _nodes(manifest)
    by_name = {}
    for uid, n in nodes.items():
        if n.get("resource_type") == "model":
            by_name.setdefault(n.get("name"), []).append(uid)
    names = [segment] + ([feed] if feed else [])
    if any(len(by_name.get(name, [])) != 1 for name in names):
        return None
    stop = set(by_name.get(union, [])) if feed else set()
    parents = manifest.get("parent_map", {})
    seen, todo = set(), [by_name[name][0] for name in names]
    while todo:
        uid = todo.pop()
        if uid in seen:
            continue
        seen.add(uid)
        if uid not in stop:
            todo.extend(parents.get(uid, []))
    return {relation_name(nodes[uid]) for uid in seen
            if uid in nodes and nodes[uid].get("resource_type") in
            ("model", "source", "seed", "snapshot")}


def failed_relations(manifest: dict | None, failed_ids: list[str]) -> list[str] | None:
    """Relations touched by failing dbt nodes: a test touches what it tests, a model or
    seed that errored touches itself. None if any failing node can't be placed."""
    if not manifest or not failed_ids:
        return None
    nodes = _nodes(manifest)
    out: set[str] = set()
    for uid in failed_ids:
        node = nodes.get(uid)
        if node is None:
            return None
        if node.get("resource_type") == "test":
            deps = [d for d in node.get("depends_on", {}).get("nodes", []) if d in nodes]
            if not deps:
                return None
            out |= {relation_name(nodes[d]) for d in deps}
        elif node.get("resource_type") == "unit_test":
            model = node.get("model") or ""
            match = [u for u, n in nodes.items()
                     if n.get("resource_type") == "model" and n.get("name") == model]
            if len(match) != 1:
                return None
            out.add(relation_name(nodes[match[0]]))
        else:
            out.add(relation_name(node))
    return sorted(out)
