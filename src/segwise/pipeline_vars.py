"""The dbt vars a run passes: as-of date and the source's timezone."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

from segwise.load.datasets import SOURCE_TIMEZONES


def dbt_vars(as_of: date | None, dataset: str) -> dict:
    # landed data: the zone its naive timestamps are in (SEGWISE_SOURCE_TIMEZONE, UTC)
    zone = SOURCE_TIMEZONES.get(dataset) or os.environ.get("SEGWISE_SOURCE_TIMEZONE", "UTC")
    out: dict = {"source_timezone": zone}
    if as_of is not None:
        out["as_of_date"] = as_of.isoformat()
    return out


def default_as_of(dataset: str) -> date | None:
    """Generated data ends at the end of yesterday (UTC), so it is computed as of then;
    real data sets default to now (no as-of date)."""
    if dataset == "generated":
        return datetime.now(UTC).date() - timedelta(days=1)
    return None
