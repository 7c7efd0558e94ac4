"""Land a new batch of events in a warehouse's raw tables, as a loader appending a file
would: a fraction of the web and email events again under new ids, an hour later, plus a
few late copies of existing events, all under one new load stamp (now). For measuring
incremental builds (scripts/benchmark_generate.py); not a test.

    .venv/bin/python scripts/append_events.py WAREHOUSE.duckdb [--fraction 0.001]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

EVENTS = {"web_events": "event_id", "email_events": "email_event_id"}


def append(warehouse: Path, fraction: float, tag: str = "new", late_copies: int = 100) -> dict:
    """Rows appended per raw event table."""
    con = duckdb.connect(str(warehouse))
    try:
        added = {}
        stamp = con.execute("select cast(now() as timestamp)").fetchone()[0]
        for table, key in EVENTS.items():
            n = con.execute(f"select count(*) from raw.{table}").fetchone()[0]
            sample = max(1, int(n * fraction))
            con.execute(f"""
                insert into raw.{table}
                select * replace ({key} || '-{tag}' as {key},
                                  occurred_at + interval 1 hour as occurred_at,
                                  ? as _loaded_at)
                from raw.{table} using sample {sample} rows (reservoir, 7)""", [stamp])
            con.execute(f"""
                insert into raw.{table}
                select * replace (? as _loaded_at)
                from raw.{table} using sample {late_copies} rows (reservoir, 9)""", [stamp])
            added[table] = sample + late_copies
        return added
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--fraction", type=float, default=0.001)
    parser.add_argument("--tag", default="new")
    args = parser.parse_args()
    print(append(args.warehouse, args.fraction, args.tag))


if __name__ == "__main__":
    main()
