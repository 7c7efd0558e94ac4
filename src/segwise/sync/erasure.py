"""Erasure ("right to be forgotten") propagated to every destination, with receipts.

``forget`` records the request (a SHA-256 of the normalised address, never the address),
asks each destination to delete the contact for good (Mailchimp ``delete-permanent``,
Klaviyo data-privacy deletion job, HubSpot ``gdpr-delete``, SendGrid contact deletion),
writes one receipt per destination and address (``erased`` / ``accepted`` for an
asynchronous job / ``not_found`` / ``failed`` with the error), and erases the address
from everything segwise holds:

* raw rows that carry it are deleted (and deleted again after every load, since the
  source system may still send them — the source must run its own erasure);
* in every other table an exact address becomes null and any mention (quarantine
  payloads, say) becomes ``[erased]``; the ledger, suppression and rejection rows go;
* files segwise wrote (exports, ad audiences, Data Docs, validation batches, generated raw
  files) are rewritten without it — tabular files lose the rows that hold it.

The consent model excludes the address (by hash) from every later sync and export. A
failed destination can be retried by running ``forget`` again: erasing twice is harmless.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from segwise.load.warehouse import forget_in_raw
from segwise.ops import utcnow
from segwise.settings import Settings
from segwise.sync.destinations.base import DestinationError, ErasureResult, HttpDestination
from segwise.warehouse import as_connection, connect, ensure_ops, is_published, publish


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


TOMBSTONE = "[erased]"
EMAIL_LIKE = re.compile(r"[^\s@]+@[^\s@]+")
TEXT_SUFFIXES = {".json", ".md", ".html", ".txt", ".js", ".log", ".sql"}


def check_reason(reason: str) -> None:
    """The reason is kept in plain text: it may not hold an address (a ticket id, say)."""
    if EMAIL_LIKE.search(reason or ""):
        raise ValueError("--reason looks like it holds an email address; give a ticket id or "
                         "a description instead (the reason is kept in plain text)")


def _pattern(emails: list[str]) -> str:
    """One case-insensitive regular expression for the addresses and their SHA-256."""
    special = set(r"\.^$*+?{}[]|()")
    words = [*emails, *(email_sha256(e) for e in emails)]
    return "|".join("".join("\\" + ch if ch in special else ch for ch in w) for w in words)


def scrub_warehouse(con, emails: list[str]) -> int:
    """Delete the raw rows that carry the addresses; in every other table, turn an exact
    address into null and any mention into ``[erased]``. Returns the cells changed."""
    con = as_connection(con)
    changed = forget_in_raw(con)
    pattern = _pattern(emails)
    columns = con.execute("""
        select c.table_schema, c.table_name, c.column_name
        from information_schema.columns as c
        join information_schema.tables as t
            on t.table_catalog = c.table_catalog and t.table_schema = c.table_schema
            and t.table_name = c.table_name
        where t.table_type = 'BASE TABLE' and t.table_catalog = current_database()
            and lower(c.data_type) in ('varchar', 'text', 'character varying')
            and c.table_schema not in ('information_schema', 'pg_catalog')
            and not (c.table_schema = 'ops' and c.table_name in ('erasure_requests',
                                                                   'erasure_receipts'))
        order by 1, 2, 3""").fetchall()
    for schema, table, column in columns:
        ident = f'"{schema}"."{table}"'
        col = f'"{column}"'
        changed += con.execute(
            f"update {ident} set {col} = case when lower(trim({col})) in (select unnest(?)) "
            f"then null else regexp_replace({col}, ?, ?, 'gi') end "
            f"where {con.matches_ci(col)}",
            [emails, pattern, TOMBSTONE, pattern]).fetchall()[0][0]
    return changed


def scrub_files(roots: list[Path], emails: list[str]) -> list[Path]:
    """Rewrite every file under ``roots`` that mentions an address or its SHA-256: CSV and
    Parquet files lose the rows that hold one, text files get ``[erased]``. Returns the
    files rewritten (each written beside and renamed over, never half-written)."""
    regex = re.compile(_pattern(emails), re.IGNORECASE)
    rewritten = []
    for root in roots:
        for path in sorted(root.rglob("*")) if root.exists() else []:
            if not path.is_file():
                continue
            if path.suffix in (".csv", ".parquet"):
                frame = (pd.read_parquet(path) if path.suffix == ".parquet"
                         else pd.read_csv(path, dtype=str, keep_default_na=False))
                text = frame.astype(str)
                hit = text.apply(lambda col: col.str.contains(regex, na=False)).any(axis=1)
                if not hit.any():
                    continue
                tmp = path.with_name(path.name + ".tmp")
                kept = frame[~hit]
                if path.suffix == ".parquet":
                    kept.to_parquet(tmp, index=False)
                else:
                    kept.to_csv(tmp, index=False)
            elif path.suffix in TEXT_SUFFIXES:
                content = path.read_text(errors="replace")
                if not regex.search(content):
                    continue
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_text(regex.sub(TOMBSTONE, content))
            else:
                continue
            tmp.replace(path)
            rewritten.append(path)
    return rewritten


def _confirm(con, receipts: list[Receipt],
             destinations: list[HttpDestination], emails: list[str], wait_s: float) -> None:
    """Poll the providers that erase asynchronously (receipt ``accepted``) until they no
    longer find the address — then the receipt says ``erased`` — or ``wait_s`` passes.
    Only while ``forget`` runs: afterwards segwise no longer knows the address."""
    by_hash = {email_sha256(e): e for e in emails}
    pending = [r for r in receipts if r.status == "accepted"]
    deadline, pause = time.monotonic() + wait_s, 0.2

    def record(r: Receipt) -> None:
        con.execute("update ops.erasure_receipts set status = ?, detail = ?, recorded_at = ? "
                    "where request_id = ? and destination = ? and email_sha256 = ?",
                    [r.status, r.detail, utcnow(), r.request_id, r.destination,
                     r.email_sha256])

    while pending:
        for dest in destinations:
            mine = [r for r in pending if r.destination == dest.ledger_name]
            if not mine:
                continue
            try:
                gone = dest.confirm_erased([by_hash[r.email_sha256] for r in mine])
            except DestinationError:
                gone = set()  # asked again on the next round
            for r in mine:
                if by_hash[r.email_sha256] in gone:
                    r.status, r.detail = "erased", "confirmed: the provider no longer has it"
                    record(r)
        pending = [r for r in pending if r.status == "accepted"]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(pause)
        pause = min(pause * 2, 5.0)
    for r in pending:
        r.detail = (f"deletion accepted, not confirmed within {wait_s:g} s: run forget again "
                    "with the address to confirm")
        record(r)


def forget(settings: Settings, emails: list[str], destinations: list[HttpDestination],
           reason: str = "") -> list[Receipt]:
    """Erase ``emails`` everywhere; returns one receipt per destination and address."""
    check_reason(reason)
    emails = sorted({e.strip().lower() for e in emails if e and e.strip()})
    if not emails:
        raise ValueError("no email address to forget")
    request_id = uuid.uuid4().hex[:12]
    receipts: list[Receipt] = []
    with connect(settings) as con:
        ensure_ops(con)
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
        _confirm(con, receipts, destinations, emails,
                 float(os.environ.get("SEGWISE_ERASURE_CONFIRM_S", "60")))
        for table in ("destination_ledger", "destination_suppressions", "sync_rejections"):
            con.execute(f"delete from ops.{table} where lower(trim(email)) in "
                        "(select unnest(?))", [emails])
        scrub_warehouse(con, emails)
    scrub_files([settings.output_dir, settings.raw_dir], emails)
    if is_published(settings):
        publish(settings)  # readers' copy: rewritten from live rows only
    return receipts
