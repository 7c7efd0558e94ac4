"""HubSpot CRM v3 adapter: contacts batch upsert (≤ 100, 207 on partial failure), a batch
read by email for record ids and the marketing opt-out, and manual-list memberships by
record id. A contact opted out of marketing email (``hs_email_optout``) is reported as
unsubscribed and never added; the sync never sends the opt-out property (subscription
status is HubSpot's, not ours), nor a property it has no value for (HubSpot clears a
property sent as an empty string).

Checked against hubspot-api-client's models (tests/python/test_esp_contracts.py):
memberships answer ``recordsIdsAdded`` / ``recordIdsRemoved`` / ``recordIdsMissing``; the
upsert echo carries the properties sent, not ``hs_email_optout``, so the opt-out is read
with ``properties: [email, hs_email_optout]``. The daily cap answers 429 with
``policyName: DAILY`` until midnight (developers.hubspot.com/docs/api/usage-details):
not retried."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from segwise.sync.destinations.base import (
    Contact,
    DestinationError,
    ErasureResult,
    HttpDestination,
    MemberResult,
    present,
)

# segwise's neutral field names -> HubSpot contact properties
PROPERTIES = {"first_name": "firstname", "last_name": "lastname"}
# personal fields live in contact properties of segwise's own property group
GROUP = "segwise"
KIND_TYPES = {"numeric": ("number", "number"), "boolean": ("bool", "booleancheckbox"),
              "string": ("string", "text"), "temporal": ("string", "text")}


def property_name(trait: str) -> str:
    """The HubSpot contact property a trait is synced to (prefixed: never a user's own)."""
    return f"segwise_{trait}"


def property_value(value) -> str:
    """HubSpot takes every property value as a string (booleans as true/false)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


class HubSpotDestination(HttpDestination):
    name = "hubspot"
    max_batch = 100
    max_concurrency = 10
    rate_limits = ((100, 10.0),)  # private apps: 100 requests per rolling 10 s (Free/Starter)

    def __init__(self, base_url: str, token: str, **kwargs) -> None:
        self._token = token
        self._list_ids: dict[str, str] = {}
        self._record_ids: dict[str, str] = {}
        self._properties_ready: set[str] = set()
        super().__init__(base_url, **kwargs)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def lasting_rate_limit(self, response: httpx.Response) -> str | None:
        """The ten-second window passes; the daily limit lasts until midnight."""
        try:
            daily = response.json().get("policyName") == "DAILY"
        except ValueError:
            daily = False
        return ("hubspot: the account's daily limit of API requests is reached (it resets "
                "at midnight in the account's time zone); nothing more is sent today"
                if daily else None)

    def _check(self, response: httpx.Response, ok: tuple[int, ...] = (200, 201, 207)) -> dict:
        if response.status_code not in ok:
            try:
                body = response.json() if response.content else {}
            except ValueError:
                body = {"message": response.text[:200]}
            raise DestinationError(f"hubspot {response.request.method} "
                                   f"{response.request.url.path}: {response.status_code} "
                                   f"{body.get('category')}: {body.get('message')}")
        return response.json() if response.content else {}

    @staticmethod
    def _properties(c: Contact) -> dict[str, str]:
        props = {"email": c.email}
        for field, prop in PROPERTIES.items():
            value = c.fields.get(field)
            if present(value):
                props[prop] = str(value)
        for trait, value in c.traits.items():
            if value is not None:
                props[property_name(trait)] = property_value(value)
        return props

    def prepare_fields(self, fields: dict[str, str]) -> None:
        """The ``segwise`` property group and one contact property per personal field,
        created when missing (a 409 from a create whose reply was lost is success)."""
        with self._lists_lock:
            if set(fields) <= self._properties_ready:
                return
            groups = {g["name"] for g in self._check(self.request(
                "GET", "/crm/v3/properties/contacts/groups")).get("results", [])}
            if GROUP not in groups:
                self._check(self.request("POST", "/crm/v3/properties/contacts/groups",
                                         json={"name": GROUP, "label": "segwise",
                                               "displayOrder": -1}), ok=(201, 409))
            have = {p["name"] for p in self._check(self.request(
                "GET", "/crm/v3/properties/contacts")).get("results", [])}
            for trait, kind in fields.items():
                if property_name(trait) in have:
                    continue
                type_, field_type = KIND_TYPES[kind]
                body = {"name": property_name(trait), "label": f"segwise: {trait}",
                        "type": type_, "fieldType": field_type, "groupName": GROUP,
                        "description": f"Synced by segwise from the {trait} trait."}
                if kind == "boolean":
                    body["options"] = [
                        {"label": "Yes", "value": "true", "hidden": False, "displayOrder": 0},
                        {"label": "No", "value": "false", "hidden": False, "displayOrder": 1}]
                self._check(self.request("POST", "/crm/v3/properties/contacts", json=body),
                            ok=(201, 409))
            self._properties_ready |= set(fields)

    def _read(self, emails: list[str]) -> dict[str, dict]:
        """Batch read by email (≤ 100): email -> {id, optout} of the contacts HubSpot has
        (an unknown address is a per-input error of a 207, not a contact)."""
        data = self._check(self.request("POST", "/crm/v3/objects/contacts/batch/read", json={
            "idProperty": "email", "inputs": [{"id": e} for e in emails],
            "properties": ["email", "hs_email_optout"], "propertiesWithHistory": []}))
        found = {}
        for r in data.get("results", []):
            props = r.get("properties") or {}
            email = str(props.get("email") or "").lower()
            if email:
                self._record_ids[email] = r["id"]
                found[email] = {"id": r["id"], "optout": str(
                    props.get("hs_email_optout") or "false").lower() == "true"}
        return found

    def _upsert(self, contacts: list[Contact]) -> tuple[set[str], dict[str, str]]:
        """Batch upsert by email: (the addresses HubSpot took, address -> why not)."""
        assert len(contacts) <= self.max_batch, "callers batch by max_batch"
        body = {"inputs": [{"idProperty": "email", "id": c.email,
                            "properties": self._properties(c)} for c in contacts]}
        data = self._check(self.request("POST", "/crm/v3/objects/contacts/batch/upsert",
                                        json=body))
        taken = set()
        for r in data.get("results", []):
            email = str(r["properties"].get("email") or "").lower()
            self._record_ids[email] = r["id"]
            taken.add(email)
        failed = {str(i).lower(): e.get("message") for e in data.get("errors", [])
                  for i in e.get("context", {}).get("ids", [])}
        return taken, failed

    def upsert_contacts(self, contacts: list[Contact]) -> list[MemberResult]:
        """Upsert, then read back the opt-out (the upsert echo does not carry it)."""
        taken, failed = self._upsert(contacts)
        known = self._read(sorted(taken)) if taken else {}
        out = []
        for c in contacts:
            key = c.email.lower()
            if key in failed or key not in known:
                out.append(MemberResult(c.email, False, failed.get(key, "not in the response")))
            elif known[key]["optout"]:
                out.append(MemberResult(c.email, False, None, "unsubscribed"))
            else:
                out.append(MemberResult(c.email, True))
        return out

    def update_contacts(self, contacts: list[Contact]) -> list[MemberResult]:
        """Changed fields of members the list holds already: the upsert alone. The
        opt-out read is for adds — updating a property of an opted-out contact emails
        nobody."""
        taken, failed = self._upsert(contacts)
        return [MemberResult(c.email, True) if c.email.lower() in taken else
                MemberResult(c.email, False, failed.get(c.email.lower(), "not in the response"))
                for c in contacts]

    def _list_id(self, list_name: str) -> str:
        """The manual contact list named after the segment (created once)."""
        def find() -> str | None:
            if list_name not in self._list_ids:
                r = self.request("GET", "/crm/v3/lists/object-type-id/0-1/name/"
                                 + quote(list_name, safe=""))
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
            missing = set(data.get("recordIdsMissing", []))
        out = []
        for c in contacts:
            rid = ids[c.email.lower()]
            if action == "remove":  # a contact HubSpot does not have is in no list
                out.append(MemberResult(c.email, True))
            elif rid is None or rid in missing:
                out.append(MemberResult(c.email, False, "HubSpot has no such contact (record "
                                        f"{rid or 'unknown'})"))
            else:
                out.append(MemberResult(c.email, True))
        return out

    def add_to_list(self, list_name: str, contacts: list[Contact]) -> list[MemberResult]:
        return self._membership("add", list_name, contacts)

    def remove_from_list(self, list_name: str, contacts: list[Contact]) -> list[MemberResult]:
        unknown = [c.email for c in contacts if c.email.lower() not in self._record_ids]
        for start in range(0, len(unknown), self.max_batch):
            # a new process: learn record ids by reading, never by an upsert (which would
            # re-create a contact a user deleted in HubSpot)
            self._read(unknown[start:start + self.max_batch])
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
