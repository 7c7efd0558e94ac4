"""Erasure ("right to be forgotten") propagated to every destination, with receipts.

``forget`` records the request (a SHA-256 of the normalised address, never the address),
asks each destination to delete the contact for good (Mailchimp ``delete-permanent``,
Klaviyo data-privacy deletion job, HubSpot ``gdpr-delete``, SendGrid contact deletion),
writes one receipt per destination and address (``erased`` / ``accepted`` for an
asynchronous job / ``not_found`` / ``failed`` with the error), and removes the address
from segwise's own ledger, suppression and rejection tables. Syncs exclude erased
addresses from then on, even if the warehouse still holds them. A failed destination can
be retried by running ``forget`` again: erasing twice is harmless.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from segwise.ops import utcnow
from segwise.settings import Settings
from segwise.sync.destinations.base import DestinationError, ErasureResult, HttpDestination
from segwise.sync.engine import ensure_tables
from segwise.warehouse import connect


def email_sha256(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


@dataclass
class Receipt:
    request_id: str
    destination: str
    email_sha256: str
    status: str
    reference: str | None
    detail: str | None


def forget(settings: Settings, emails: list[str], destinations: list[HttpDestination],
           reason: str = "") -> list[Receipt]:
    """Erase ``emails`` everywhere; returns one receipt per destination and address."""
    emails = sorted({e.strip().lower() for e in emails if e and e.strip()})
    if not emails:
        raise ValueError("no email address to forget")
    request_id = uuid.uuid4().hex[:12]
    receipts: list[Receipt] = []
    with connect(settings.duckdb_path) as con:
        ensure_tables(con)
        now = utcnow()
        for email in emails:  # recorded first: syncs stop pushing the address right away
            con.execute("insert into ops.erasure_requests values (?, ?, ?, ?)",
                        [request_id, email_sha256(email), now, reason])
        for dest in destinations:
            try:
                results = dest.erase(emails)
            except (DestinationError, NotImplementedError) as exc:
                results = [ErasureResult(e, "failed", None, str(exc)) for e in emails]
            for r in results:
                receipt = Receipt(request_id, dest.ledger_name, email_sha256(r.email),
                                  r.status, r.reference, r.detail)
                receipts.append(receipt)
                con.execute("insert into ops.erasure_receipts values (?, ?, ?, ?, ?, ?, ?)",
                            [receipt.request_id, receipt.destination, receipt.email_sha256,
                             receipt.status, receipt.reference, receipt.detail, utcnow()])
        for table in ("destination_ledger", "destination_suppressions", "sync_rejections"):
            con.execute(f"delete from ops.{table} where lower(trim(email)) in "
                        "(select unnest(?))", [emails])
    return receipts
