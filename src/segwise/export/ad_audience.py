"""Ad-audience export: SHA-256 of the normalised (trimmed, lower-cased) email, as Google
Customer Match, Meta Custom Audiences and TikTok require — only for the activation feed's
sendable members (consent, suppressions and erasure decided once, in dbt)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from segwise.ops import assert_gate_open, list_segments
from segwise.settings import Settings
from segwise.warehouse import FEED, connect


def normalised_sha256(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def export_ad_audiences(settings: Settings, segments: list[str] | None = None) -> list[Path]:
    out_dir = settings.output_dir / "exports" / "ad_audiences"
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    with connect(settings.duckdb_path) as con:
        assert_gate_open(con)
        names = segments or list_segments(con)
        for name in names:
            emails = con.execute(f"select email from {FEED} where segment_name = ? and "
                                 "is_sendable order by customer_id", [name]).df()["email"]
            frame = pd.DataFrame({"email_sha256": [normalised_sha256(e) for e in emails]})
            path = out_dir / f"{name}.csv"
            frame.to_csv(path, index=False)
            paths.append(path)
    return paths
