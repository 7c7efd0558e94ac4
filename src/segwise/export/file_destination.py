"""File destination: current members and the diff as CSV and Parquet, per segment."""

from __future__ import annotations

from pathlib import Path

from segwise.export.base import Destination, DestinationReport, SegmentDelta


class FileDestination(Destination):
    def __init__(self, root: Path, name: str = "file") -> None:
        self.root = root
        self.name = name

    def apply(self, delta: SegmentDelta, run_id: str) -> DestinationReport:
        folder = self.root / delta.segment_name
        folder.mkdir(parents=True, exist_ok=True)
        outputs = []
        for label, frame in (("members", delta.members), ("added", delta.added),
                             ("removed", delta.removed)):
            csv = folder / f"{label}.csv"
            parquet = folder / f"{label}.parquet"
            # write-then-rename: a crash never leaves a half-written file behind
            tmp_csv, tmp_pq = csv.with_suffix(".csv.tmp"), parquet.with_suffix(".parquet.tmp")
            frame.to_csv(tmp_csv, index=False)
            frame.to_parquet(tmp_pq, index=False)
            tmp_csv.replace(csv)
            tmp_pq.replace(parquet)
            outputs += [csv, parquet]
        return DestinationReport(self.name, delta.segment_name, len(delta.members),
                                 len(delta.added), len(delta.removed), outputs)
