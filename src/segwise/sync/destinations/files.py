"""Destinations that are files: the segment export (CSV + Parquet) and ad audiences.

They implement the same protocol as the ESP adapters and go through the same engine:
the plan comes from the activation feed (consent, holdout and erasure decided there) and
the one ledger (``ops.destination_ledger``, destination ``file`` / ``ad_audience``), the
guards apply, and every run is audited in ``ops.sync_runs``. A file is the whole list, so
both run in mirror mode; what changed since the last export is kept beside it.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pandas as pd

from segwise.sync.destinations.base import Contact, Destination, MemberResult

# the columns of members.csv / .parquet (and added.*): the feed's sendable members
MEMBER_COLUMNS = ["customer_id", "email", "has_email_consent", "segment_name", "reason",
                  "computed_at"]


def normalised_sha256(email: str) -> str:
    """SHA-256 of the trimmed, lower-cased address, as Google Customer Match, Meta Custom
    Audiences and TikTok require."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def _write_atomically(frame: pd.DataFrame, path: Path) -> None:
    """Write-then-rename: a crash never leaves a half-written file behind."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    if path.suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    else:
        frame.to_csv(tmp, index=False)
    tmp.replace(path)


class _LocalDestination(Destination):
    """Calls succeed at once; the changes of the current segment are collected (from the
    engine's worker threads) until ``finish`` writes the list."""

    max_batch = 100_000
    max_concurrency = 1
    fixed_mode = "mirror"
    wants_members = True

    def __init__(self, root: Path, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = root
        self._lock = threading.Lock()
        self._added: set[str] = set()
        self._removed: set[str] = set()

    def upsert_contacts(self, contacts: list[Contact]) -> list[MemberResult]:
        return [MemberResult(c.email, True) for c in contacts]

    def add_to_list(self, list_name: str, contacts: list[Contact]) -> list[MemberResult]:
        with self._lock:
            self._added |= {c.customer_id for c in contacts}
        return [MemberResult(c.email, True) for c in contacts]

    def remove_from_list(self, list_name: str, contacts: list[Contact]) -> list[MemberResult]:
        with self._lock:
            self._removed |= {c.customer_id for c in contacts}
        return [MemberResult(c.email, True) for c in contacts]

    def unsubscribe(self, contacts: list[Contact]) -> list[MemberResult]:
        """A file holds nobody's subscription: a withdrawn person leaves it on this write
        (the feed no longer lists them) — recorded like any other destination's."""
        return [MemberResult(c.email, True, None, "unsubscribed") for c in contacts]

    def _take_changes(self) -> tuple[set[str], set[str]]:
        with self._lock:
            added, removed = self._added, self._removed
            self._added, self._removed = set(), set()
        return added, removed


class FileDestination(_LocalDestination):
    """``<root>/<segment>/members|added|removed.csv|parquet``: every current member with
    the segment's reasons, who joined and who left since the previous export."""

    name = "file"

    def finish(self, list_name: str, members: pd.DataFrame) -> list[Path]:
        added, removed = self._take_changes()
        folder = self.root / list_name
        folder.mkdir(parents=True, exist_ok=True)
        members = members[MEMBER_COLUMNS].reset_index(drop=True)
        frames = {"members": members,
                  "added": members[members["customer_id"].isin(added)].reset_index(drop=True),
                  "removed": pd.DataFrame({"customer_id": sorted(removed)}, dtype=object)}
        outputs = []
        for label, frame in frames.items():
            for suffix in (".csv", ".parquet"):
                path = folder / f"{label}{suffix}"
                _write_atomically(frame, path)
                outputs.append(path)
        return outputs


class AdAudienceDestination(_LocalDestination):
    """``<root>/<segment>.csv``: one ``email_sha256`` per sendable member, ready to upload
    as a customer-match audience."""

    name = "ad_audience"

    def finish(self, list_name: str, members: pd.DataFrame) -> list[Path]:
        self._take_changes()
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"{list_name}.csv"
        _write_atomically(pd.DataFrame({"email_sha256": [normalised_sha256(e)
                                                         for e in members["email"]]}), path)
        return [path]
