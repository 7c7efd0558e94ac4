"""Klaviyo adapter (JSON:API, ``revision`` header).

Contacts are upserted with an asynchronous profile bulk-import job (≤ 10,000 profiles
and 5 MB per job), polled until ``complete``; per-profile failures come from the job's
import errors, profile ids and consent from ``GET /api/profiles`` (75/s, 100 emails
per call, ``additional-fields[profile]=subscriptions``); collections are read page by
page (``links.next`` is absolute: followed as a path on the same host, under the same
endpoint's rate limit, never to another host). Importing never touches consent, and a
profile whose email consent is ``UNSUBSCRIBED`` or that is suppressed is reported back
(``remote_status``) so the sync never adds it to a list. Each segwise segment is a
Klaviyo list of the same name, found with ``filter=equals(name,"…")`` (``GET
/api/lists`` returns 10 per page, and creating one is capped at 150 a day); membership
calls take ≤ 1,000 profile ids. A field segwise has no value for is not sent. Checked
against klaviyo-api's models and its published rate limits
(tests/python/test_esp_contracts.py).
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
    present,
)

REVISION = "2026-10-15"  # the revision klaviyo-api 25 (the current official SDK) targets
MAX_IMPORT_BYTES = 5 * 1024 * 1024
PAGE_SIZE = 100  # the largest page (and any() filter) the JSON:API endpoints take
LISTS_PAGE = 10  # GET /api/lists: at most 10 per page
# per account and endpoint, (requests, seconds) of the burst and steady windows as each
# endpoint's reference publishes them; everything else segwise calls is 10/s, 150/min
DEFAULT_LIMITS = ((10, 1.0), (150, 60.0))
ENDPOINT_LIMITS = {"GET /api/profiles": ((75, 1.0), (750, 60.0)),
                   "GET /api/lists": ((75, 1.0), (750, 60.0)),
                   "POST /api/profile-subscription-bulk-delete-jobs": ((75, 1.0), (750, 60.0)),
                   "POST /api/data-privacy-deletion-jobs": ((3, 1.0), (60, 60.0))}
# segwise's neutral field names -> Klaviyo profile attributes
ATTRIBUTES = {"first_name": "first_name", "last_name": "last_name"}
UNSUBSCRIBE_BATCH = 100  # profiles per bulk-unsubscribe job


class KlaviyoDestination(HttpDestination):
    name = "klaviyo"
    max_batch = 1_000  # list-membership limit; import jobs allow 10,000
    max_concurrency = 5
    rate_limits = DEFAULT_LIMITS

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
        path = path.split("?", 1)[0].rstrip("/")  # a next-page link carries its query
        return f"{method} " + re.sub(r"^(/api/[a-z-]+/)[^/]+", r"\1{id}", path)

    def rate_limits_for(self, key: str) -> tuple[tuple[int, float], ...]:
        return ENDPOINT_LIMITS.get(key, DEFAULT_LIMITS)

    def _check(self, response: httpx.Response) -> dict:
        if response.status_code >= 400:
            try:
                errors = response.json().get("errors", [{}]) if response.content else [{}]
            except ValueError:
                errors = [{"title": "not JSON", "detail": response.text[:200]}]
            first = errors[0] if errors else {}
            raise DestinationError(f"klaviyo {response.request.method} "
                                   f"{response.request.url.path}: {response.status_code} "
                                   f"{first.get('title')}: {first.get('detail')}")
        return response.json() if response.content else {}

    def upsert_contacts(self, contacts: list[Contact]) -> list[MemberResult]:
        assert len(contacts) <= self.max_batch, "callers batch by max_batch"
        body = {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {
            "data": [{"type": "profile", "attributes": self._attributes(c)}
                     for c in contacts]}}}}
        payload = json.dumps(body)
        if len(payload.encode()) > MAX_IMPORT_BYTES:
            raise DestinationError("klaviyo import job over 5 MB: lower the batch size")
        job = self._check(self.request("POST", "/api/profile-bulk-import-jobs",
                                       content=payload))["data"]["id"]
        self.wait_for_job(f"/api/profile-bulk-import-jobs/{job}",
                          lambda body: body["data"]["attributes"]["status"], "complete",
                          ("cancelled", "failed"), self.poll_interval, self.job_timeout)
        failed = {}
        for e in self._paged(f"/api/profile-bulk-import-jobs/{job}/import-errors"):
            email = self._failed_email(e["attributes"], contacts)
            if email:
                failed[email] = e["attributes"].get("detail")
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

    @staticmethod
    def _attributes(c: Contact) -> dict:
        attrs = {"email": c.email}
        for field, name in ATTRIBUTES.items():
            value = c.fields.get(field)
            if present(value):
                attrs[name] = value
        # personal fields: custom profile properties, sent as typed JSON values
        properties = {k: v for k, v in c.traits.items() if v is not None}
        if properties:
            attrs["properties"] = properties
        return attrs

    @staticmethod
    def _failed_email(error: dict, contacts: list[Contact]) -> str | None:
        """Which contact an import error is about: its ``original_payload`` (nullable), or
        the index in ``source.pointer`` (``/data/attributes/profiles/data/<i>``)."""
        payload = error.get("original_payload") or {}
        if payload.get("email"):
            return str(payload["email"]).lower()
        m = re.search(r"/profiles/data/(\d+)", str((error.get("source") or {}).get("pointer")))
        if m and int(m.group(1)) < len(contacts):
            return contacts[int(m.group(1))].email.lower()
        return None

    def _paged(self, path: str, params: dict | None = None,
               page_size: int = PAGE_SIZE) -> list[dict]:
        """Every item of a cursor-paginated collection (``links.next``)."""
        items: list[dict] = []
        url: str | None = path
        query = {**(params or {}), "page[size]": page_size}
        while url:
            body = self._check(self.request("GET", url, params=query))
            items += body.get("data", [])
            nxt = (body.get("links") or {}).get("next")
            url, query = (self.same_host_path(nxt) if nxt else None), None  # it carries the query
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
                # nullable all the way down: no marketing record is no ESP-side status
                subs = p["attributes"].get("subscriptions") or {}
                marketing = (subs.get("email") or {}).get("marketing") or {}
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
                quoted = list_name.replace("\\", "\\\\").replace('"', '\\"')
                for item in self._paged("/api/lists", {"filter": f'equals(name,"{quoted}")'},
                                        page_size=LISTS_PAGE):
                    if item["attributes"].get("name") == list_name:
                        self._list_ids.setdefault(list_name, item["id"])
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
