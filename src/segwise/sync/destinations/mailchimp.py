"""Mailchimp Marketing API v3 adapter.

One Mailchimp audience (``list_id``) holds the contacts; each segwise segment is a static
segment of that audience, named after the segment. Upserts use ``status_if_new`` so an
existing member's status is never overwritten (an unsubscribed or cleaned member stays
so); the member's status in the response is reported so the sync can record ESP-side
unsubscribes. Batch limit: 500 members per call. The segment is looked up among the
audience's *static* segments (``type=static``, every page: 10 a page by default, at most
1,000) — a saved segment of the same name is not it. Removing an address that is not in
the segment is not an error (Mailchimp ignores emails not on the list); a merge field
segwise has no value for is not sent (an empty string would blank it); an error body
that is not JSON (a proxy's 403 page) is reported, not a crash. Shapes as the Marketing
API reference publishes them (tests/python/test_esp_contracts.py).
"""

from __future__ import annotations

import hashlib

import httpx

from segwise.sync.destinations.base import (
    Contact,
    DestinationError,
    ErasureResult,
    HttpDestination,
    MemberResult,
    present,
)

SUPPRESSED = {"unsubscribed", "cleaned", "archived"}
MERGE_FIELDS = {"first_name": "FNAME", "last_name": "LNAME"}
MAX_TAG = 10  # a merge tag is at most 10 characters: letters, digits and _
KIND_TYPES = {"numeric": "number"}  # everything else is a text merge field


def merge_tag(trait: str, taken: set[str] = frozenset()) -> str:
    """The merge tag of a personal field: the trait's name upper-cased, letters, digits
    and _ only, cut to 10 characters (a digit replaces the end when that collides)."""
    import re

    base = re.sub(r"[^A-Z0-9_]", "", trait.upper())[:MAX_TAG] or "FIELD"
    tag, n = base, 1
    while tag in taken:
        n += 1
        tag = base[:MAX_TAG - len(str(n))] + str(n)
    return tag
SEGMENTS_PAGE = 1000  # GET …/segments: count default 10, at most 1000


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: MD5 of the lower-cased address."""
    return hashlib.md5(email.strip().lower().encode()).hexdigest()


class MailchimpDestination(HttpDestination):
    name = "mailchimp"
    max_batch = 500
    max_concurrency = 10  # "10 simultaneous connections" per API key; no per-second cap

    def __init__(self, base_url: str, api_key: str, list_id: str, **kwargs) -> None:
        self._api_key = api_key
        self.list_id = list_id
        self._segment_ids: dict[str, int] = {}
        self._merge_tags: dict[str, str] = {}  # trait -> merge tag
        kwargs["account"] = list_id  # one Mailchimp audience = one ledger
        super().__init__(base_url, **kwargs)

    def auth(self) -> httpx.Auth:
        return httpx.BasicAuth("segwise", self._api_key)

    def _check(self, response: httpx.Response) -> dict:
        if response.status_code >= 400:
            try:
                body = response.json() if response.content else {}
            except ValueError:
                body = {"title": "not JSON", "detail": response.text[:200]}
            raise DestinationError(f"mailchimp {response.request.method} "
                                   f"{response.request.url.path}: {response.status_code} "
                                   f"{body.get('title')}: {body.get('detail')}")
        return response.json()

    def upsert_contacts(self, contacts: list[Contact]) -> list[MemberResult]:
        assert len(contacts) <= self.max_batch, "callers batch by max_batch"
        body = {"members": [self._member(c) for c in contacts], "update_existing": True}
        data = self._check(self.request("POST", f"/3.0/lists/{self.list_id}", json=body))
        status = {m["email_address"].lower(): m["status"]
                  for m in data.get("new_members", []) + data.get("updated_members", [])}
        errors = {e["email_address"].lower(): e["error"] for e in data.get("errors", [])}
        out = []
        for c in contacts:
            key = c.email.lower()
            if key in errors:
                out.append(MemberResult(c.email, False, errors[key]))
            else:
                remote = status.get(key)
                out.append(MemberResult(c.email, remote not in SUPPRESSED, None, remote))
        return out

    def _member(self, c: Contact) -> dict:
        merge = {tag: str(c.fields[field]) for field, tag in MERGE_FIELDS.items()
                 if present(c.fields.get(field))}
        for trait, value in c.traits.items():
            if value is not None and trait in self._merge_tags:
                merge[self._merge_tags[trait]] = (
                    str(value).lower() if isinstance(value, bool) else value)
        member = {"email_address": c.email, "status_if_new": "subscribed"}
        if merge:
            member["merge_fields"] = merge
        return member

    def prepare_fields(self, fields: dict[str, str]) -> None:
        """One merge field per personal field, created when the audience lacks it (found
        by its name, in one read). A create whose reply was lost is looked up again,
        never re-sent blindly."""
        with self._lists_lock:
            if set(fields) <= set(self._merge_tags):
                return

            def existing() -> dict[str, str]:
                data = self._check(self.request(
                    "GET", f"/3.0/lists/{self.list_id}/merge-fields", params={"count": 1000}))
                return {m["name"]: m["tag"] for m in data.get("merge_fields", [])}

            have = existing()
            taken = set(have.values()) | set(MERGE_FIELDS.values())
            for trait, kind in fields.items():
                if trait in have:
                    self._merge_tags[trait] = have[trait]
                    continue
                tag = merge_tag(trait, taken)
                taken.add(tag)
                self._merge_tags[trait] = self.create_once(
                    lambda trait=trait: existing().get(trait),
                    lambda trait=trait, kind=kind, tag=tag: self._check(self.request(
                        "POST", f"/3.0/lists/{self.list_id}/merge-fields", idempotent=False,
                        json={"name": trait, "tag": tag, "type": KIND_TYPES.get(kind, "text"),
                              "public": False}))["tag"],
                    known_missing=True)

    def unsubscribe(self, contacts: list[Contact]) -> list[MemberResult]:
        """Batch subscribe/unsubscribe with ``status: unsubscribed`` and
        ``update_existing``: the member's audience status becomes unsubscribed."""
        assert len(contacts) <= self.max_batch, "callers batch by max_batch"
        body = {"members": [{"email_address": c.email, "status": "unsubscribed"}
                            for c in contacts], "update_existing": True}
        data = self._check(self.request("POST", f"/3.0/lists/{self.list_id}", json=body))
        status = {m["email_address"].lower(): m["status"]
                  for m in data.get("new_members", []) + data.get("updated_members", [])}
        errors = {e["email_address"].lower(): e["error"] for e in data.get("errors", [])}
        return [MemberResult(c.email, status.get(c.email.lower()) == "unsubscribed",
                             errors.get(c.email.lower()), status.get(c.email.lower()))
                for c in contacts]

    def _list_id(self, list_name: str) -> int:
        """The static segment named after the segwise segment (created once)."""
        def find() -> int | None:
            offset = 0
            while list_name not in self._segment_ids:
                data = self._check(self.request(
                    "GET", f"/3.0/lists/{self.list_id}/segments",
                    params={"type": "static", "count": SEGMENTS_PAGE, "offset": offset}))
                page = data.get("segments", [])
                for seg in page:
                    if seg.get("type", "static") == "static":
                        self._segment_ids.setdefault(seg["name"], seg["id"])
                offset += len(page)
                if not page or offset >= int(data.get("total_items", 0)):
                    break
            return self._segment_ids.get(list_name)

        def create() -> int:
            return self._check(self.request(
                "POST", f"/3.0/lists/{self.list_id}/segments", idempotent=False,
                json={"name": list_name, "static_segment": []}))["id"]

        self._segment_ids[list_name] = self.create_once(find, create)
        return self._segment_ids[list_name]

    def _segment_call(self, list_name: str, key: str, contacts: list[Contact]
                      ) -> list[MemberResult]:
        assert len(contacts) <= self.max_batch, "callers batch by max_batch"
        sid = self._list_id(list_name)
        data = self._check(self.request(
            "POST", f"/3.0/lists/{self.list_id}/segments/{sid}",
            json={key: [c.email for c in contacts]}))
        failed = {}
        for e in data.get("errors", []):
            for email in e.get("email_addresses", []):
                failed[email.lower()] = e.get("error")
        return [MemberResult(c.email, c.email.lower() not in failed, failed.get(c.email.lower()))
                for c in contacts]

    def add_to_list(self, list_name: str, contacts: list[Contact]) -> list[MemberResult]:
        return self._segment_call(list_name, "members_to_add", contacts)

    def remove_from_list(self, list_name: str, contacts: list[Contact]) -> list[MemberResult]:
        return self._segment_call(list_name, "members_to_remove", contacts)

    def erase(self, emails: list[str]) -> list[ErasureResult]:
        """``delete-permanent``: Mailchimp then refuses to re-import the address."""
        return self._erase_each(emails, lambda e: self.request(
            "POST", f"/3.0/lists/{self.list_id}/members/{subscriber_hash(e)}"
            "/actions/delete-permanent"))
