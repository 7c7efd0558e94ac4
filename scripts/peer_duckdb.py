"""The single-query limit: scripts/peers/limit.sql on a warehouse's raw tables.

Attaches the warehouse read-only, runs the one statement into a separate DuckDB file and
prints the wall time. scripts/benchmark_generate.py runs it beside the build; a test
checks it computes what the marts compute.

    .venv/bin/python scripts/peer_duckdb.py WAREHOUSE.duckdb --as-of 2026-06-30
"""

from __future__ import annotations

import argparse
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb

SQL = Path(__file__).with_name("peers") / "limit.sql"


def run(warehouse: Path, as_of: date, out: Path, memory_limit: str | None = None,
        threads: int | None = None) -> float:
    """Seconds the statement took; the result is the table ``customer_aggregates`` in ``out``."""
    out.unlink(missing_ok=True)
    config = {"preserve_insertion_order": False}
    if memory_limit:
        config["memory_limit"] = memory_limit
    if threads:
        config["threads"] = threads
    con = duckdb.connect(str(out), config=config)
    try:
        con.execute(f"attach '{warehouse}' as wh (read_only)")
        end_of_day = f"timestamp '{as_of + timedelta(days=1)} 00:00:00'"
        start = time.perf_counter()
        con.execute(SQL.read_text().replace("$as_of_ts", end_of_day))
        return time.perf_counter() - start
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    parser.add_argument("--out", type=Path, default=Path("peer_limit.duckdb"))
    args = parser.parse_args()
    print(f"single-query limit {run(args.warehouse, args.as_of, args.out):8.1f} s")


if __name__ == "__main__":
    main()
