"""Generic signed webhook: segment membership changes POSTed as JSON to any HTTPS endpoint.

Every request carries ``X-Segwise-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is
HMAC-SHA256 of ``"<t>.<raw body>"`` with the shared secret (the receiver recomputes it and
rejects stale timestamps), and ``Idempotency-Key`` (a hash of the body) so a retried
request can be recognised. Bodies: ``{"contacts": [...]}`` to ``/contacts`` and
``{"list": name, "add"|"remove": [...]}`` to ``/lists/{name}/members`` and, when consent
is withdrawn, ``{"unsubscribe": [...]}`` to ``/unsubscribes``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from segwise.sync.destinations.base import (
    Contact,
    DestinationError,
    HttpDestination,
    MemberResult,
)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, tolerance_s: int = 300,
           now: float | None = None) -> bool:
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        ts = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), header)


class WebhookDestination(HttpDestination):
    name = "webhook"
    max_batch = 1_000

    def __init__(self, base_url: str, secret: str, **kwargs) -> None:
        self._secret = secret
        super().__init__(base_url, **kwargs)

    def _post(self, path: str, payload: dict) -> dict:
        body = json.dumps(payload, sort_keys=True).encode()
        headers = {"content-type": "application/json",
                   "X-Segwise-Signature": sign(self._secret, int(time.time()), body),
                   "Idempotency-Key": hashlib.sha256(path.encode() + body).hexdigest()}
        response = self.request("POST", path, content=body, headers=headers)
        if response.status_code >= 400:
            raise DestinationError(f"webhook POST {path}: {response.status_code} "
                                   f"{response.text[:200]}")
        return response.json() if response.content else {}

    def upsert_contacts(self, contacts: list[Contact]) -> list[MemberResult]:
        data = self._post("/contacts", {"contacts": [
            {"customer_id": c.customer_id, "email": c.email, **c.fields} for c in contacts]})
        rejected = {r["email"].lower(): r.get("error") for r in data.get("rejected", [])}
        return [MemberResult(c.email, c.email.lower() not in rejected,
                             rejected.get(c.email.lower())) for c in contacts]

    def unsubscribe(self, contacts: list[Contact]) -> list[MemberResult]:
        self._post("/unsubscribes", {"unsubscribe": [c.email for c in contacts]})
        return [MemberResult(c.email, True, None, "unsubscribed") for c in contacts]

    def add_to_list(self, list_name: str, contacts: list[Contact]) -> list[MemberResult]:
        self._post(f"/lists/{list_name}/members", {"list": list_name,
                                                   "add": [c.email for c in contacts]})
        return [MemberResult(c.email, True) for c in contacts]

    def remove_from_list(self, list_name: str, contacts: list[Contact]) -> list[MemberResult]:
        self._post(f"/lists/{list_name}/members", {"list": list_name,
                                                   "remove": [c.email for c in contacts]})
        return [MemberResult(c.email, True) for c in contacts]
