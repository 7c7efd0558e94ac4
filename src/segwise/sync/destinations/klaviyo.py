"""Klaviyo adapter (JSON:API, ``revision`` header).

Contacts are upserted with an asynchronous profile bulk-import job (≤ 10,000 profiles
and 5 MB per job), polled until ``complete``; per-profile failures come from the job's
import errors, profile ids and consent from ``GET /api/profiles`` (tier L, 100 emails
per call, ``additional-fields[profile]=subscriptions``); collections are read page by
page. Importing never touches consent, and a profile whose email consent is
``UNSUBSCRIBED`` or that is suppressed is reported back (``remote_status``) so the sync
never adds it to a list. Each segwise segment is a Klaviyo list of the same name;
membership calls take ≤ 1,000 profile ids.
"""

from __future__ import annotations

import json
import re

import httpx

from segwise.sync.destinations.base import (
    Contact,
    DestinationError,
    ErasureResult,
    HttpDestination,
    MemberResult,
)

REVISION = "2024-10-15"
MAX_IMPORT_BYTES = 5 * 1024 * 1024
PAGE_SIZE = 100  # the largest page (and any() filter) the JSON:API endpoints take
TIERS = {"S": ((3, 1.0), (60, 60.0)), "M": ((10, 1.0), (150, 60.0)),
         "L": ((75, 1.0), (700, 60.0))}
ENDPOINT_TIERS = {"GET /api/profiles": "L", "POST /api/data-privacy-deletion-jobs": "S",
                  # published as 75/s burst, 750/min steady: tier L is the safe side of it
                  "POST /api/profile-subscription-bulk-delete-jobs": "L"}
UNSUBSCRIBE_BATCH = 100  # profiles per bulk-unsubscribe job


class KlaviyoDestination(HttpDestination):
    name = "klaviyo"
    max_batch = 1_000  # list-membership limit; import jobs allow 10,000
    max_concurrency = 5
    # per account and endpoint, burst (1 s) and steady (1 min): tier M for everything
    # segwise calls except reading profiles, which is tier L
    rate_limits = TIERS["M"]

    def __init__(self, base_url: str, api_key: str, poll_interval: float = 0.05,
                 job_timeout: float = 300.0, **kwargs) -> None:
        self._api_key = api_key
        self.poll_interval = poll_interval
        self.job_timeout = job_timeout
        self._list_ids: dict[str, str] = {}
        self._profile_ids: dict[str, str] = {}
        super().__init__(base_url, **kwargs)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Klaviyo-API-Key {self._api_key}", "revision": REVISION,
                "accept": "application/vnd.api+json",
                "content-type": "application/vnd.api+json"}

    def rate_key(self, method: str, path: str) -> str:
        return f"{method} " + re.sub(r"^(/api/[a-z-]+/)[^/]+", r"\1{id}", path.rstrip("/"))

    def rate_limits_for(self, key: str) -> tuple[tuple[int, float], ...]:
        return TIERS[ENDPOINT_TIERS.get(key, "M")]

    def _check(self, response: httpx.Response) -> dict:
        if response.status_code >= 400:
            errors = response.json().get("errors", [{}]) if response.content else [{}]
            first = errors[0] if errors else {}
            raise DestinationError(f"klaviyo {response.request.method} "
                                   f"{response.request.url.path}: {response.status_code} "
                                   f"{first.get('title')}: {first.get('detail')}")
        return response.json() if response.content else {}

    def upsert_contacts(self, contacts: list[Contact]) -> list[MemberResult]:
        assert len(contacts) <= self.max_batch, "callers batch by max_batch"
        body = {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {
            "data": [{"type": "profile", "attributes": {
                "email": c.email, "first_name": c.fields.get("first_name", ""),
                "last_name": c.fields.get("last_name", "")}} for c in contacts]}}}}
        payload = json.dumps(body)
        if len(payload.encode()) > MAX_IMPORT_BYTES:
            raise DestinationError("klaviyo import job over 5 MB: lower the batch size")
        job = self._check(self.request("POST", "/api/profile-bulk-import-jobs",
                                       content=payload))["data"]["id"]
        self.wait_for_job(f"/api/profile-bulk-import-jobs/{job}",
                          lambda body: body["data"]["attributes"]["status"], "complete",
                          ("cancelled", "failed"), self.poll_interval, self.job_timeout)
        failed = {str(e["attributes"].get("original_payload", {}).get("email", "")).lower():
                  e["attributes"].get("detail")
                  for e in self._paged(f"/api/profile-bulk-import-jobs/{job}/import-errors")}
        found = self._lookup([c.email for c in contacts if c.email.lower() not in failed])
        out = []
        for c in contacts:
            key = c.email.lower()
            if key in failed:
                out.append(MemberResult(c.email, False, failed[key]))
            elif key not in found:
                out.append(MemberResult(c.email, False, "not found after the import job"))
            else:
                out.append(MemberResult(c.email, found[key] is None, None, found[key]))
        return out

    def _paged(self, path: str, params: dict | None = None) -> list[dict]:
        """Every item of a cursor-paginated collection (100 per page, ``links.next``)."""
        items: list[dict] = []
        url: str | None = path
        query = {**(params or {}), "page[size]": PAGE_SIZE}
        while url:
            body = self._check(self.request("GET", url, params=query))
            items += body.get("data", [])
            url, query = (body.get("links") or {}).get("next"), None  # next carries the query
        return items

    def _lookup(self, emails: list[str]) -> dict[str, str | None]:
        """Profile ids (cached) and ESP-side status by email, 100 emails per call:
        ``unsubscribed`` / ``suppressed`` or None (free to add to a list)."""
        out: dict[str, str | None] = {}
        keys = [e.lower() for e in emails]
        for start in range(0, len(keys), PAGE_SIZE):
            chunk = keys[start:start + PAGE_SIZE]
            flt = "any(email,[" + ",".join(f'"{e}"' for e in chunk) + "])"
            for p in self._paged("/api/profiles", {"filter": flt,
                                                   "additional-fields[profile]": "subscriptions"}):
                email = p["attributes"]["email"].lower()
                self._profile_ids[email] = p["id"]
                marketing = p["attributes"]["subscriptions"]["email"]["marketing"]
                if marketing.get("suppression"):
                    out[email] = "suppressed"
                elif marketing.get("consent") == "UNSUBSCRIBED":
                    out[email] = "unsubscribed"
                else:
                    out[email] = None
        return out

    def _list_id(self, list_name: str) -> str:
        """The Klaviyo list named after the segment. Klaviyo allows duplicate list names,
        so a create whose reply was lost is looked up again, never blindly re-sent."""
        def find() -> str | None:
            if list_name not in self._list_ids:
                for item in self._check(self.request("GET", "/api/lists"))["data"]:
                    self._list_ids.setdefault(item["attributes"]["name"], item["id"])
            return self._list_ids.get(list_name)

        def create() -> str:
            return self._check(self.request("POST", "/api/lists", idempotent=False,
                                            content=json.dumps({"data": {
                                                "type": "list",
                                                "attributes": {"name": list_name}}})))["data"]["id"]

        self._list_ids[list_name] = self.create_once(find, create)
        return self._list_ids[list_name]

    def _ids(self, contacts: list[Contact]) -> dict[str, str]:
        missing = [c.email for c in contacts if c.email.lower() not in self._profile_ids]
        if missing:  # a new process removing members: learn their ids
            self._lookup(missing)
        return {c.email.lower(): self._profile_ids.get(c.email.lower()) for c in contacts}

    def _membership(self, method: str, list_name: str, contacts: list[Contact]
                    ) -> list[MemberResult]:
        assert len(contacts) <= self.max_batch, "callers batch by max_batch"
        lid = self._list_id(list_name)
        ids = self._ids(contacts)
        known = [{"type": "profile", "id": pid} for pid in ids.values() if pid]
        if known:
            self._check(self.request(method, f"/api/lists/{lid}/relationships/profiles",
                                     content=json.dumps({"data": known})))
        return [MemberResult(c.email, bool(ids[c.email.lower()]) or method == "DELETE",
                             None if ids[c.email.lower()] or method == "DELETE"
                             else "no Klaviyo profile for this email")
                for c in contacts]

    def add_to_list(self, list_name: str, contacts: list[Contact]) -> list[MemberResult]:
        return self._membership("POST", list_name, contacts)

    def remove_from_list(self, list_name: str, contacts: list[Contact]) -> list[MemberResult]:
        return self._membership("DELETE", list_name, contacts)

    @property
    def unsubscribe_batch(self) -> int:
        return min(self.batch_size, UNSUBSCRIBE_BATCH)

    def unsubscribe(self, contacts: list[Contact]) -> list[MemberResult]:
        """Bulk Unsubscribe Profiles (≤ 100 per job) from email marketing. No list is given,
        so the profile is unsubscribed globally — consent was withdrawn, not a list left."""
        assert len(contacts) <= UNSUBSCRIBE_BATCH, "callers batch by unsubscribe_batch"
        self._check(self.request("POST", "/api/profile-subscription-bulk-delete-jobs",
                                 content=json.dumps({"data": {
                                     "type": "profile-subscription-bulk-delete-job",
                                     "attributes": {"profiles": {"data": [
                                         {"type": "profile", "attributes": {
                                             "email": c.email, "subscriptions": {"email": {
                                                 "marketing": {"consent": "UNSUBSCRIBED"}}}}}
                                         for c in contacts]}}}})))
        return [MemberResult(c.email, True, None, "unsubscribed") for c in contacts]

    def confirm_erased(self, emails: list[str]) -> set[str]:
        """Deletion jobs run asynchronously: confirmed once no profile has the address."""
        still = self._lookup(emails)
        return {e for e in emails if e.lower() not in still}

    def erase(self, emails: list[str]) -> list[ErasureResult]:
        """A data-privacy deletion job per address (tier S); Klaviyo deletes the profile
        asynchronously, so the receipt says ``accepted``."""
        results = self._erase_each(emails, lambda e: self.request(
            "POST", "/api/data-privacy-deletion-jobs", content=json.dumps({"data": {
                "type": "data-privacy-deletion-job", "attributes": {"profile": {"data": {
                    "type": "profile", "attributes": {"email": e}}}}}})), done="accepted")
        for r in results:
            self._profile_ids.pop(r.email.lower(), None)
        return results
