"""HubSpot CRM v3 adapter: contacts batch upsert (≤ 100, 207 on partial failure) and
manual-list memberships by record id. A contact opted out of marketing email
(``hs_email_optout``) is reported as unsubscribed and never added; the sync never sends
the opt-out property (subscription status is HubSpot's, not ours)."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from segwise.sync.destinations.base import (
    Contact,
    DestinationError,
    ErasureResult,
    HttpDestination,
    MemberResult,
)


class HubSpotDestination(HttpDestination):
    name = "hubspot"
    max_batch = 100
    max_concurrency = 10
    rate_limits = ((100, 10.0),)  # private apps: 100 requests per rolling 10 s (Free/Starter)

    def __init__(self, base_url: str, token: str, **kwargs) -> None:
        self._token = token
        self._list_ids: dict[str, str] = {}
        self._record_ids: dict[str, str] = {}
        super().__init__(base_url, **kwargs)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def _check(self, response: httpx.Response, ok: tuple[int, ...] = (200, 201, 207)) -> dict:
        if response.status_code not in ok:
            body = response.json() if response.content else {}
            raise DestinationError(f"hubspot {response.request.method} "
                                   f"{response.request.url.path}: {response.status_code} "
                                   f"{body.get('category')}: {body.get('message')}")
        return response.json() if response.content else {}

    def upsert_contacts(self, contacts: list[Contact]) -> list[MemberResult]:
        assert len(contacts) <= self.max_batch, "callers batch by max_batch"
        body = {"inputs": [{"idProperty": "email", "id": c.email, "properties": {
            "email": c.email, "firstname": c.fields.get("first_name", ""),
            "lastname": c.fields.get("last_name", "")}} for c in contacts]}
        data = self._check(self.request("POST", "/crm/v3/objects/contacts/batch/upsert",
                                        json=body))
        status = {}
        for r in data.get("results", []):
            email = r["properties"]["email"].lower()
            self._record_ids[email] = r["id"]
            optout = str(r["properties"].get("hs_email_optout", "false")).lower() == "true"
            status[email] = "unsubscribed" if optout else None
        failed = {}
        for e in data.get("errors", []):
            for ident in e.get("context", {}).get("ids", []):
                failed[str(ident).lower()] = e.get("message")
        out = []
        for c in contacts:
            key = c.email.lower()
            if key in failed or key not in status:
                out.append(MemberResult(c.email, False, failed.get(key, "not in the response")))
            else:
                out.append(MemberResult(c.email, status[key] is None, None, status[key]))
        return out

    def _list_id(self, list_name: str) -> str:
        """The manual contact list named after the segment (created once)."""
        def find() -> str | None:
            if list_name not in self._list_ids:
                r = self.request("GET", f"/crm/v3/lists/object-type-id/0-1/name/{list_name}")
                if r.status_code == 404:
                    return None
                self._list_ids[list_name] = self._check(r)["list"]["listId"]
            return self._list_ids[list_name]

        def create() -> str:
            return self._check(self.request("POST", "/crm/v3/lists", idempotent=False, json={
                "name": list_name, "objectTypeId": "0-1",
                "processingType": "MANUAL"}))["list"]["listId"]

        self._list_ids[list_name] = self.create_once(find, create)
        return self._list_ids[list_name]

    def _membership(self, action: str, list_name: str, contacts: list[Contact]
                    ) -> list[MemberResult]:
        assert len(contacts) <= self.max_batch, "callers batch by max_batch"
        lid = self._list_id(list_name)
        ids = {c.email.lower(): self._record_ids.get(c.email.lower()) for c in contacts}
        known = [i for i in ids.values() if i]
        missing: set[str] = set()
        if known:
            data = self._check(self.request("PUT", f"/crm/v3/lists/{lid}/memberships/{action}",
                                            json=known))
            missing = set(data.get("recordsIdsMissing", []))
        out = []
        for c in contacts:
            rid = ids[c.email.lower()]
            ok = action == "remove" or (rid is not None and rid not in missing)
            out.append(MemberResult(c.email, ok, None if ok else "no HubSpot record id"))
        return out

    def add_to_list(self, list_name: str, contacts: list[Contact]) -> list[MemberResult]:
        return self._membership("add", list_name, contacts)

    def remove_from_list(self, list_name: str, contacts: list[Contact]) -> list[MemberResult]:
        unknown = [c for c in contacts if c.email.lower() not in self._record_ids]
        if unknown:  # a new process: learn record ids with an idempotent upsert by email
            for start in range(0, len(unknown), self.max_batch):
                chunk = unknown[start:start + self.max_batch]
                data = self._check(self.request(
                    "POST", "/crm/v3/objects/contacts/batch/upsert",
                    json={"inputs": [{"idProperty": "email", "id": c.email,
                                      "properties": {"email": c.email}} for c in chunk]}))
                for r in data.get("results", []):
                    self._record_ids[r["properties"]["email"].lower()] = r["id"]
        return self._membership("remove", list_name, contacts)

    def unsubscribe(self, contacts: list[Contact]) -> list[MemberResult]:
        """Unsubscribe each address from all email (communication preferences v4,
        ``unsubscribe-all`` with ``channel=EMAIL``), one request per contact: the batch
        endpoint needs Marketing Hub Enterprise scopes."""
        out = []
        for c in contacts:
            try:
                self._check(self.request(
                    "POST", f"/communication-preferences/v4/statuses/"
                    f"{quote(c.email, safe='@')}/unsubscribe-all", params={"channel": "EMAIL"}))
            except DestinationError as exc:
                out.append(MemberResult(c.email, False, str(exc)))
                continue
            out.append(MemberResult(c.email, True, None, "unsubscribed"))
        return out

    def erase(self, emails: list[str]) -> list[ErasureResult]:
        """``gdpr-delete`` by email: the contact is permanently deleted."""
        results = self._erase_each(emails, lambda e: self.request(
            "POST", "/crm/v3/objects/contacts/gdpr-delete",
            json={"objectId": e, "idProperty": "email"}))
        for r in results:
            self._record_ids.pop(r.email.lower(), None)
        return results
