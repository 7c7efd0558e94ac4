"""The destination interface: where segment membership goes.

The export engine computes, per segment, the current members and the change since the
destination last received it (``SegmentDelta``); a destination applies a delta and
reports what it did. The file destination writes CSV + Parquet; ESP adapters (Mailchimp,
Klaviyo, HubSpot, SendGrid) implement the same interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

MEMBER_COLUMNS = ["customer_id", "email", "has_email_consent", "segment_name", "reason",
                  "computed_at"]


@dataclass
class SegmentDelta:
    segment_name: str
    members: pd.DataFrame  # MEMBER_COLUMNS, every current member
    added: pd.DataFrame  # members not yet in the destination
    removed: pd.DataFrame  # customer_id of members the destination holds that left

    @property
    def is_noop(self) -> bool:
        return self.added.empty and self.removed.empty


@dataclass
class DestinationReport:
    destination: str
    segment_name: str
    members: int
    added: int
    removed: int
    outputs: list[Path] = field(default_factory=list)


class Destination(ABC):
    """Receives segment deltas. Implementations must be idempotent: applying the same
    delta twice leaves the destination as applying it once."""

    name: str

    @abstractmethod
    def apply(self, delta: SegmentDelta, run_id: str) -> DestinationReport: ...
