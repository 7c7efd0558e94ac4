"""Twilio SendGrid Marketing Campaigns v3 adapter.

SendGrid adds contacts to lists in the upsert itself (``PUT /v3/marketing/contacts`` with
``list_ids``, an asynchronous job polled until it ends), so ``add_to_list`` is an upsert
into that list. A job that ends ``errored`` finished with some errors: the contacts its
errors file names are rejected one by one, the others went in. Suppressions are read
first, every page (``limit``/``offset``, 500 a page): global unsubscribes, group
unsubscribes, bounces and spam reports — such an address is reported back
(``unsubscribed`` / ``bounced`` / ``complained``) and never sent. Removal needs contact
ids (``search/emails``, ≤ 100 per call, which answers an unknown address with an
``error`` entry) and ``DELETE …/lists/{id}/contacts`` (404 when the ids are gone: nothing
left to remove). A field segwise has no value for is not sent. 429s carry
``X-RateLimit-Reset`` (epoch seconds), honoured by the retry wait. Shapes as SendGrid's
OpenAPI definitions publish them (tests/python/test_esp_contracts.py).
"""

from __future__ import annotations

import csv
import io
import json

import httpx

from segwise.sync.destinations.base import (
    Contact,
    DestinationError,
    ErasureResult,
    HttpDestination,
    MemberResult,
    present,
)

MAX_BYTES = 6 * 1024 * 1024
SUPPRESSION_PAGE = 500  # limit (≤ 500) per page of the suppression lists
# where SendGrid keeps addresses it will not send to, and what each means for segwise
SUPPRESSIONS = (("/v3/suppression/unsubscribes", "unsubscribed", True),
                ("/v3/asm/suppressions", "unsubscribed", False),  # every group, one reply
                ("/v3/suppression/spam_reports", "complained", True),
                ("/v3/suppression/bounces", "bounced", True))
FIELDS = {"first_name": "first_name", "last_name": "last_name"}
KIND_TYPES = {"numeric": "Number"}  # everything else is a Text custom field


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
        self._suppressed: dict[str, str] | None = None
        self._field_ids: dict[str, str] = {}  # trait -> custom field id
        super().__init__(base_url, **kwargs)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"}

    def _check(self, response: httpx.Response) -> dict | list:
        if response.status_code >= 400:
            try:
                body = response.json() if response.content else {}
            except ValueError:
                body = {"errors": [{"message": response.text[:200]}]}
            errors = body.get("errors", []) if isinstance(body, dict) else []
            if isinstance(errors, dict):  # some endpoints answer one error object
                errors = [errors]
            msg = "; ".join(str(e.get("message", "")) for e in errors)
            raise DestinationError(f"sendgrid {response.request.method} "
                                   f"{response.request.url.path}: {response.status_code} {msg}")
        return response.json() if response.content else {}

    def prepare(self, list_name: str) -> None:
        super().prepare(list_name)
        self.suppressed()  # read the global unsubscribes once, before parallel batches

    def suppressed(self) -> dict[str, str]:
        """Every address SendGrid will not send to -> why (read once per adapter)."""
        if self._suppressed is None:
            found: dict[str, str] = {}
            for path, why, paged in SUPPRESSIONS:
                offset = 0
                while True:
                    params = {"limit": SUPPRESSION_PAGE, "offset": offset} if paged else None
                    rows = self._check(self.request("GET", path, params=params))
                    for row in rows:
                        found.setdefault(str(row["email"]).lower(), why)
                    if not paged or len(rows) < SUPPRESSION_PAGE:
                        break
                    offset += SUPPRESSION_PAGE
            self._suppressed = found
        return self._suppressed

    def _fields(self, c: Contact) -> dict:
        out = {"email": c.email}
        for field, name in FIELDS.items():
            value = c.fields.get(field)
            if present(value):
                out[name] = str(value)
        custom = {self._field_ids[t]: (str(v).lower() if isinstance(v, bool) else v)
                  for t, v in c.traits.items() if v is not None and t in self._field_ids}
        if custom:  # custom fields are keyed by their definition's id
            out["custom_fields"] = custom
        return out

    def prepare_fields(self, fields: dict[str, str]) -> None:
        """One custom field definition per personal field, created when missing (names
        are unique without regard to case; found in one read); a create whose reply was
        lost is looked up again, never re-sent blindly."""
        with self._lists_lock:
            if set(fields) <= set(self._field_ids):
                return

            def existing() -> dict[str, str]:
                data = self._check(self.request("GET", "/v3/marketing/field_definitions"))
                return {f["name"].lower(): f["id"] for f in data.get("custom_fields", [])}

            have = existing()
            for trait, kind in fields.items():
                if trait.lower() in have:
                    self._field_ids[trait] = have[trait.lower()]
                    continue
                self._field_ids[trait] = self.create_once(
                    lambda trait=trait: existing().get(trait.lower()),
                    lambda trait=trait, kind=kind: self._check(self.request(
                        "POST", "/v3/marketing/field_definitions", idempotent=False,
                        json={"name": trait,
                              "field_type": KIND_TYPES.get(kind, "Text")}))["id"],
                    known_missing=True)

    def _errored(self, job: dict, sent: list[Contact]) -> dict[str, str]:
        """email -> reason for the contacts an ``errored`` job did not take, from its
        errors file (a CSV of the addresses and their error reasons). If the file can't be
        read, every contact of the job counts as failed: a re-run sends them again."""
        results = job.get("results") or {}
        url = results.get("errors_url")
        count = int(results.get("errored_count") or 0)
        fallback = {c.email.lower(): f"the import job errored for {count} of {len(sent)} "
                    "contacts and its errors file could not be read" for c in sent}
        if not url:
            return fallback
        try:
            path = self.same_host_path(url)
        except DestinationError:  # a download link elsewhere: fetched without our key
            path = None
        try:
            r = self.request("GET", path) if path else httpx.get(url, timeout=30.0)
        except (DestinationError, httpx.HTTPError):
            return fallback
        if r.status_code >= 400:
            return fallback
        rows = list(csv.DictReader(io.StringIO(r.text)))
        if not rows:
            return fallback
        keys = list(rows[0])
        email_key = next((k for k in keys if "email" in k.lower()), None)
        reason_key = next((k for k in keys if "error" in k.lower() or "reason" in k.lower()),
                          None)
        if email_key is None:
            return fallback
        return {str(row[email_key]).strip().lower(): (row.get(reason_key) if reason_key
                                                      else "rejected by the import job")
                for row in rows if row.get(email_key)}

    def _upsert(self, contacts: list[Contact], list_ids: list[str]) -> list[MemberResult]:
        assert len(contacts) <= self.max_batch, "callers batch by max_batch"
        blocked = self.suppressed()
        send = [c for c in contacts if c.email.lower() not in blocked]
        rejected: dict[str, str] = {}
        if send:
            body: dict = {"contacts": [self._fields(c) for c in send]}
            if list_ids:
                body["list_ids"] = list_ids
            payload = json.dumps(body)
            if len(payload.encode()) > MAX_BYTES:
                raise DestinationError("sendgrid upsert over 6 MB: lower the batch size")
            job = self._check(self.request("PUT", "/v3/marketing/contacts", content=payload,
                                           headers={"content-type": "application/json"}))
            ended = self.wait_for_job(f"/v3/marketing/contacts/imports/{job['job_id']}",
                                      lambda body: body["status"], ("completed", "errored"),
                                      ("failed",), self.poll_interval, self.job_timeout)
            if ended.get("status") == "errored":  # finished with some errors
                rejected = self._errored(ended, send)
        out = []
        for c in contacts:
            key = c.email.lower()
            if key in blocked:
                out.append(MemberResult(c.email, False, None, blocked[key]))
            elif key in rejected:
                out.append(MemberResult(c.email, False, rejected[key]))
            else:
                out.append(MemberResult(c.email, True))
        return out

    def upsert_contacts(self, contacts: list[Contact]) -> list[MemberResult]:
        # contacts are created by add_to_list's upsert (one job instead of two); here we
        # only screen them against SendGrid's global unsubscribes
        blocked = self.suppressed()
        return [MemberResult(c.email, False, None, blocked[c.email.lower()])
                if c.email.lower() in blocked else MemberResult(c.email, True)
                for c in contacts]

    def update_contacts(self, contacts: list[Contact]) -> list[MemberResult]:
        """Members already in the list whose fields changed: an upsert job without
        ``list_ids`` (their lists stay as they are)."""
        return self._upsert(contacts, [])

    def _list_id(self, list_name: str) -> str:
        """The Marketing Campaigns list named after the segment (created once)."""
        def find() -> str | None:
            if list_name not in self._list_ids:
                params: dict | None = {"page_size": 1000}
                path = "/v3/marketing/lists"
                while path:  # at most 1,000 lists an account: one page, but follow next
                    body = self._check(self.request("GET", path, params=params))
                    for row in body.get("result", []):
                        self._list_ids.setdefault(row["name"], row["id"])
                    nxt = (body.get("_metadata") or {}).get("next")
                    path, params = (self.same_host_path(nxt) if nxt else None), None
            return self._list_ids.get(list_name)

        def create() -> str:
            return self._check(self.request("POST", "/v3/marketing/lists", idempotent=False,
                                            json={"name": list_name}))["id"]

        self._list_ids[list_name] = self.create_once(find, create)
        return self._list_ids[list_name]

    def _contact_ids(self, emails: list[str]) -> dict[str, str]:
        """email -> contact id of the addresses SendGrid has (≤ 100 per call): an unknown
        address comes back as ``{"error": "contact not found"}``, or all of them as 404."""
        r = self.request("POST", "/v3/marketing/contacts/search/emails",
                         json={"emails": emails})
        if r.status_code == 404:
            return {}
        found = self._check(r).get("result") or {}
        return {e.lower(): v["contact"]["id"] for e, v in found.items()
                if isinstance(v, dict) and isinstance(v.get("contact"), dict)}

    def add_to_list(self, list_name: str, contacts: list[Contact]) -> list[MemberResult]:
        return self._upsert(contacts, [self._list_id(list_name)])

    def remove_from_list(self, list_name: str, contacts: list[Contact]) -> list[MemberResult]:
        lid = self._list_id(list_name)
        for start in range(0, len(contacts), self.search_batch):
            chunk = contacts[start:start + self.search_batch]
            ids = list(self._contact_ids([c.email for c in chunk]).values())
            if ids:
                r = self.request("DELETE", f"/v3/marketing/lists/{lid}/contacts",
                                 params={"contact_ids": ",".join(ids)})
                if r.status_code != 404:  # 404: the ids are gone, so are the members
                    self._check(r)
        return [MemberResult(c.email, True) for c in contacts]

    def unsubscribe(self, contacts: list[Contact]) -> list[MemberResult]:
        """Add the addresses to the global suppression group (global unsubscribes)."""
        data = self._check(self.request("POST", "/v3/asm/suppressions/global", json={
            "recipient_emails": [c.email for c in contacts]}))
        taken = {e.lower() for e in data.get("recipient_emails", [])}
        if self._suppressed is not None:
            self._suppressed.update({e: "unsubscribed" for e in taken})
        return [MemberResult(c.email, c.email.lower() in taken,
                             None if c.email.lower() in taken else "not in the reply",
                             "unsubscribed" if c.email.lower() in taken else None)
                for c in contacts]

    def confirm_erased(self, emails: list[str]) -> set[str]:
        """Deletion is a job: confirmed once ``search/emails`` no longer finds the address."""
        gone = set()
        for start in range(0, len(emails), self.search_batch):
            chunk = emails[start:start + self.search_batch]
            found = self._contact_ids(chunk)
            gone |= {e for e in chunk if e.lower() not in found}
        return gone

    def erase(self, emails: list[str]) -> list[ErasureResult]:
        """Contact ids by ``search/emails`` (≤ 100), then ``DELETE /v3/marketing/contacts``
        (an asynchronous job: the receipt says ``accepted`` with the job id)."""
        out: list[ErasureResult] = []
        for start in range(0, len(emails), self.search_batch):
            chunk = emails[start:start + self.search_batch]
            try:
                ids = self._contact_ids(chunk)
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
