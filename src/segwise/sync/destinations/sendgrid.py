"""Twilio SendGrid Marketing Campaigns v3 adapter.

SendGrid adds contacts to lists in the upsert itself (``PUT /v3/marketing/contacts`` with
``list_ids``, an asynchronous job polled until ``completed``), so ``add_to_list`` is an
upsert into that list. Global unsubscribes (``/v3/suppression/unsubscribes``) are read
first: a suppressed address is reported as unsubscribed and never sent. Removal needs
contact ids (``search/emails``, ≤ 100 per call) and ``DELETE …/lists/{id}/contacts``.
"""

from __future__ import annotations

import json

import httpx

from segwise.sync.destinations.base import (
    Contact,
    DestinationError,
    ErasureResult,
    HttpDestination,
    MemberResult,
)

MAX_BYTES = 6 * 1024 * 1024


class SendGridDestination(HttpDestination):
    name = "sendgrid"
    max_batch = 1_000  # the API takes 30,000; smaller jobs keep checkpoints frequent
    max_concurrency = 4
    search_batch = 100

    def __init__(self, base_url: str, api_key: str, poll_interval: float = 0.05,
                 job_timeout: float = 300.0, **kwargs) -> None:
        self._api_key = api_key
        self.poll_interval = poll_interval
        self.job_timeout = job_timeout
        self._list_ids: dict[str, str] = {}
        self._suppressed: set[str] | None = None
        super().__init__(base_url, **kwargs)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"}

    def _check(self, response: httpx.Response) -> dict | list:
        if response.status_code >= 400:
            body = response.json() if response.content else {}
            msg = "; ".join(e.get("message", "") for e in body.get("errors", []))
            raise DestinationError(f"sendgrid {response.request.method} "
                                   f"{response.request.url.path}: {response.status_code} {msg}")
        return response.json() if response.content else {}

    def prepare(self, list_name: str) -> None:
        super().prepare(list_name)
        self.suppressed()  # read the global unsubscribes once, before parallel batches

    def suppressed(self) -> set[str]:
        if self._suppressed is None:
            data = self._check(self.request("GET", "/v3/suppression/unsubscribes"))
            self._suppressed = {row["email"].lower() for row in data}
        return self._suppressed

    def _upsert(self, contacts: list[Contact], list_ids: list[str]) -> list[MemberResult]:
        assert len(contacts) <= self.max_batch, "callers batch by max_batch"
        blocked = self.suppressed()
        send = [c for c in contacts if c.email.lower() not in blocked]
        if send:
            payload = json.dumps({"list_ids": list_ids, "contacts": [
                {"email": c.email, "first_name": c.fields.get("first_name", ""),
                 "last_name": c.fields.get("last_name", "")} for c in send]})
            if len(payload.encode()) > MAX_BYTES:
                raise DestinationError("sendgrid upsert over 6 MB: lower the batch size")
            job = self._check(self.request("PUT", "/v3/marketing/contacts", content=payload,
                                           headers={"content-type": "application/json"}))
            self.wait_for_job(f"/v3/marketing/contacts/imports/{job['job_id']}",
                              lambda body: body["status"], "completed", ("errored", "failed"),
                              self.poll_interval, self.job_timeout)
        return [MemberResult(c.email, False, None, "unsubscribed")
                if c.email.lower() in blocked else MemberResult(c.email, True)
                for c in contacts]

    def upsert_contacts(self, contacts: list[Contact]) -> list[MemberResult]:
        # contacts are created by add_to_list's upsert (one job instead of two); here we
        # only screen them against SendGrid's global unsubscribes
        blocked = self.suppressed()
        return [MemberResult(c.email, False, None, "unsubscribed")
                if c.email.lower() in blocked else MemberResult(c.email, True)
                for c in contacts]

    def _list_id(self, list_name: str) -> str:
        """The Marketing Campaigns list named after the segment (created once)."""
        def find() -> str | None:
            if list_name not in self._list_ids:
                for row in self._check(self.request("GET", "/v3/marketing/lists",
                                                    params={"page_size": 1000}))["result"]:
                    self._list_ids.setdefault(row["name"], row["id"])
            return self._list_ids.get(list_name)

        def create() -> str:
            return self._check(self.request("POST", "/v3/marketing/lists", idempotent=False,
                                            json={"name": list_name}))["id"]

        self._list_ids[list_name] = self.create_once(find, create)
        return self._list_ids[list_name]

    def add_to_list(self, list_name: str, contacts: list[Contact]) -> list[MemberResult]:
        return self._upsert(contacts, [self._list_id(list_name)])

    def remove_from_list(self, list_name: str, contacts: list[Contact]) -> list[MemberResult]:
        lid = self._list_id(list_name)
        for start in range(0, len(contacts), self.search_batch):
            chunk = contacts[start:start + self.search_batch]
            r = self.request("POST", "/v3/marketing/contacts/search/emails",
                             json={"emails": [c.email for c in chunk]})
            if r.status_code == 404:  # none of them exist: already not in the list
                continue
            found = self._check(r)["result"]
            ids = [v["contact"]["id"] for v in found.values()]
            if ids:
                self._check(self.request("DELETE", f"/v3/marketing/lists/{lid}/contacts",
                                         params={"contact_ids": ",".join(ids)}))
        return [MemberResult(c.email, True) for c in contacts]

    def unsubscribe(self, contacts: list[Contact]) -> list[MemberResult]:
        """Add the addresses to the global suppression group (global unsubscribes)."""
        data = self._check(self.request("POST", "/v3/asm/suppressions/global", json={
            "recipient_emails": [c.email for c in contacts]}))
        taken = {e.lower() for e in data.get("recipient_emails", [])}
        if self._suppressed is not None:
            self._suppressed |= taken
        return [MemberResult(c.email, c.email.lower() in taken,
                             None if c.email.lower() in taken else "not in the reply",
                             "unsubscribed" if c.email.lower() in taken else None)
                for c in contacts]

    def confirm_erased(self, emails: list[str]) -> set[str]:
        """Deletion is a job: confirmed once ``search/emails`` no longer finds the address."""
        gone = set()
        for start in range(0, len(emails), self.search_batch):
            chunk = emails[start:start + self.search_batch]
            r = self.request("POST", "/v3/marketing/contacts/search/emails",
                             json={"emails": chunk})
            found = {} if r.status_code == 404 else self._check(r)["result"]
            gone |= {e for e in chunk if e.lower() not in {k.lower() for k in found}}
        return gone

    def erase(self, emails: list[str]) -> list[ErasureResult]:
        """Contact ids by ``search/emails`` (≤ 100), then ``DELETE /v3/marketing/contacts``
        (an asynchronous job: the receipt says ``accepted`` with the job id)."""
        out: list[ErasureResult] = []
        for start in range(0, len(emails), self.search_batch):
            chunk = emails[start:start + self.search_batch]
            try:
                r = self.request("POST", "/v3/marketing/contacts/search/emails",
                                 json={"emails": chunk})
                found = {} if r.status_code == 404 else self._check(r)["result"]
                ids = {e.lower(): v["contact"]["id"] for e, v in found.items()}
                job = None
                if ids:
                    job = self._check(self.request(
                        "DELETE", "/v3/marketing/contacts",
                        params={"ids": ",".join(ids.values())}))["job_id"]
            except DestinationError as exc:
                out += [ErasureResult(e, "failed", None, str(exc)) for e in chunk]
                continue
            out += [ErasureResult(e, "accepted", job) if e.lower() in ids
                    else ErasureResult(e, "not_found") for e in chunk]
        return out
