"""HubSpot CRM v3 sandbox — the contract in ../shared/specs/esp_api.md.

Enforced: ``Authorization: Bearer <private app token>``; ``POST
/crm/v3/objects/contacts/batch/upsert`` with ``idProperty: email`` and at most 100 inputs
(400 VALIDATION_ERROR otherwise), answered 200, or 207 Multi-Status with ``results`` and
``errors`` when some inputs fail; the marketing opt-out (``hs_email_optout``) is never
changed by an upsert; the upsert echo holds the properties sent plus HubSpot's defaults (not
``hs_email_optout``), and a property sent as an empty string is cleared; ``POST
/crm/v3/objects/contacts/batch/read`` by email returns the properties asked for (207 with
an OBJECT_NOT_FOUND error per unknown address); manual lists ``POST /crm/v3/lists``
(``processingType: MANUAL``), lookup by (URL-encoded) name, ``PUT
/crm/v3/lists/{id}/memberships/add|remove`` with record ids (``recordsIdsAdded`` /
``recordIdsRemoved`` / ``recordIdsMissing``, as hubspot-api-client's
MembershipsUpdateResponse spells them); 100 requests per rolling 10 s (429 with HubSpot's
RATE_LIMIT body and ``X-HubSpot-RateLimit-*`` headers) and, optionally, a daily cap (429
with ``policyName: DAILY``); every body has the fields of the SDK model of its endpoint
(tests/python/test_esp_contracts.py);
GDPR erase ``POST /crm/v3/objects/contacts/gdpr-delete`` (204; by email the address is
blocklisted even when unknown, and a blocklisted address can't be upserted again);
communication preferences v4 ``POST /communication-preferences/v4/statuses/{email}/
unsubscribe-all?channel=EMAIL`` (``channel`` required, 400 without it) opts the address
out of all email (``hs_email_optout`` true), kept for the address even before a contact
has it.
Contact properties ``GET``/``POST /crm/v3/properties/contacts`` and property groups
``GET``/``POST /crm/v3/properties/contacts/groups`` (409 when the name exists); an upsert
naming a property that does not exist, or a value of the wrong type, is a per-input error.
Max ids per membership call is not confirmed *(verify)*: the sandbox accepts 100,000.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import time
import uuid
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from segwise.sync.sandboxes.common import install_common, persist

MAX_BATCH = 100
MAX_MEMBERSHIP_IDS = 100_000
WINDOW_S, WINDOW_MAX = 10.0, 100
MARKETING_ID = "1"  # the subscription type an unsubscribe-all status names
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def error(status: int, message: str, category: str = "VALIDATION_ERROR") -> JSONResponse:
    """HubSpot's Error body (correlationId, category, message; errors, links)."""
    return JSONResponse({"message": message, "correlationId": str(uuid.uuid4()),
                         "category": category, "errors": [], "links": {}},
                        status_code=status)


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def batch_error(category: str, message: str, ids: list) -> dict:
    """One entry of a 207's ``errors`` (the SDK's StandardError)."""
    return {"status": "error", "category": category, "message": message,
            "context": {"ids": [str(i) for i in ids]}, "errors": [], "links": {}}


def rate_limited(retry_after: int = 1, window_max: int = WINDOW_MAX,
                 daily: bool = False) -> JSONResponse:
    """HubSpot's 429 body (developers.hubspot.com/docs/api/usage-details): the message and
    ``policyName`` say which limit was hit."""
    resp = JSONResponse({"status": "error",
                         "message": ("You have reached your daily limit." if daily else
                                     "You have reached your ten_secondly_rolling limit."),
                         "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()),
                         "policyName": "DAILY" if daily else "TEN_SECONDLY_ROLLING"},
                        status_code=429)
    resp.headers.update({"X-HubSpot-RateLimit-Max": str(window_max),
                         "X-HubSpot-RateLimit-Remaining": "0",
                         "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                         "Retry-After": str(retry_after)})
    return resp


def _property(name: str, label: str, type_: str, field_type: str, group: str,
              options: list | None = None, description: str = "") -> dict:
    """A contact property as the SDK's Property model has it."""
    return {"name": name, "label": label, "type": type_, "fieldType": field_type,
            "groupName": group, "description": description, "options": options or [],
            "hidden": False, "formField": True, "calculated": False,
            "externalOptions": False, "hasUniqueValue": False}


NUMBER_RE = re.compile(r"\A-?\d+(\.\d+)?\Z")


@dataclass
class HubSpotState:
    token: str
    contacts: dict[str, dict] = field(default_factory=dict)  # id -> contact
    by_email: dict[str, str] = field(default_factory=dict)
    lists: dict[str, dict] = field(default_factory=dict)  # listId -> {name, members}
    calls: list[float] = field(default_factory=list)
    calls_today: int = 0
    blocklist: set[str] = field(default_factory=set)  # emails erased by gdpr-delete
    optouts: set[str] = field(default_factory=set)  # unsubscribed from all email
    # contact properties (name -> definition) and property groups (name -> definition)
    properties: dict[str, dict] = field(default_factory=lambda: {
        name: _property(name, label, "string", "text", "contactinformation")
        for name, label in (("email", "Email"), ("firstname", "First Name"),
                            ("lastname", "Last Name"))} | {
        "hs_email_optout": _property("hs_email_optout", "Unsubscribed from all email",
                                     "bool", "booleancheckbox", "emailinformation")})
    groups: dict[str, dict] = field(default_factory=lambda: {
        g: {"name": g, "label": g, "displayOrder": -1, "archived": False}
        for g in ("contactinformation", "emailinformation")})
    ids: itertools.count = field(default_factory=lambda: itertools.count(51))

    def dump(self) -> dict:
        return {"contacts": self.contacts, "blocklist": sorted(self.blocklist),
                "properties": self.properties, "groups": self.groups,
                "optouts": sorted(self.optouts),
                "lists": {k: {"name": v["name"], "members": sorted(v["members"])}
                          for k, v in self.lists.items()}}

    def load(self, data: dict) -> None:
        self.contacts = data["contacts"]
        self.blocklist = set(data.get("blocklist", []))
        self.optouts = set(data.get("optouts", []))
        self.properties.update(data.get("properties", {}))
        self.groups.update(data.get("groups", {}))
        self.by_email = {c["properties"]["email"]: cid for cid, c in self.contacts.items()}
        self.lists = {k: {"name": v["name"], "members": set(v["members"])}
                      for k, v in data["lists"].items()}
        self.ids = itertools.count(51 + len(self.contacts) + len(self.lists))


def create_app(token: str, state_file=None, window: tuple[int, float] = (WINDOW_MAX, WINDOW_S),
               daily_max: int | None = None) -> FastAPI:
    """``window``: (requests, seconds) of the rolling rate limit — the private-app
    default, or a smaller one so a test can exercise it quickly; ``daily_max``: the
    account's daily request cap (none by default)."""
    window_max, window_s = window
    app = FastAPI(title="HubSpot sandbox")
    state = HubSpotState(token=token)
    persist(app, state, state_file)
    install_common(app, state, rate_limited=rate_limited,
                   server_error=lambda: error(502, "Bad gateway", "INTERNAL_ERROR"))

    @app.middleware("http")
    async def auth_and_rate(request: Request, call_next):
        if request.url.path.startswith("/_sandbox"):
            return await call_next(request)
        if request.headers.get("authorization") != f"Bearer {state.token}":
            return error(401, "Authentication credentials not found.", "INVALID_AUTHENTICATION")
        if daily_max is not None and state.calls_today >= daily_max:
            return rate_limited(3600, window_max, daily=True)
        now = time.monotonic()
        state.calls = [t for t in state.calls if now - t < window_s]
        if len(state.calls) >= window_max:  # wait until the oldest call leaves the window
            return rate_limited(max(1, math.ceil(window_s - (now - state.calls[0]))),
                                window_max)
        state.calls.append(now)
        state.calls_today += 1
        return await call_next(request)

    @app.post("/crm/v3/objects/contacts/batch/upsert")
    async def batch_upsert(body: dict):
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            return error(400, "inputs must be a non-empty array")
        if len(inputs) > MAX_BATCH:
            return error(400, f"Batch size must be at most {MAX_BATCH} inputs.")
        results, errors = [], []
        for item in inputs:
            if item.get("idProperty") != "email":
                errors.append(batch_error("VALIDATION_ERROR", "idProperty must be email",
                                          [item.get("id")]))
                continue
            email = str(item.get("id", "")).strip().lower()
            if not EMAIL_RE.match(email):
                errors.append(batch_error("VALIDATION_ERROR",
                                          f"Email address {email} is invalid",
                                          [item.get("id")]))
                continue
            if email in state.blocklist:  # erased with gdpr-delete: can't come back
                errors.append(batch_error("VALIDATION_ERROR", f"{email} was permanently "
                                          "deleted (GDPR) and is blocklisted",
                                          [item.get("id")]))
                continue
            props = item.get("properties")
            if not isinstance(props, dict) or not all(
                    isinstance(v, str) for v in props.values()):
                errors.append(batch_error("VALIDATION_ERROR", "properties must map names "
                                          "to string values", [item.get("id")]))
                continue
            # subscription status is not a sync's to set
            props = {k: v for k, v in props.items() if k != "hs_email_optout"}
            bad = [k for k in props if k not in state.properties]
            wrong = [k for k, v in props.items() if k in state.properties and v != "" and (
                (state.properties[k]["type"] == "number" and not NUMBER_RE.match(v))
                or (state.properties[k]["type"] == "bool" and v not in ("true", "false")))]
            if bad or wrong:
                errors.append(batch_error("VALIDATION_ERROR", (
                    f"Property values were not valid: {bad} do not exist" if bad else
                    f"Property values were not valid: {wrong} have the wrong type"),
                    [item.get("id")]))
                continue
            cid = state.by_email.get(email)
            new = cid is None
            stamp = now_iso()
            if new:
                cid = str(next(state.ids))
                state.by_email[email] = cid
                state.contacts[cid] = {"id": cid, "createdAt": stamp, "properties": {
                    "email": email,
                    "hs_email_optout": "true" if email in state.optouts else "false"}}
            stored = state.contacts[cid]
            for key, value in props.items():  # "" clears a property (HubSpot's rule)
                if value == "":
                    stored["properties"].pop(key, None)
                else:
                    stored["properties"][key] = value
            stored["updatedAt"] = stamp
            echo = {**props, "email": email, "hs_object_id": cid,
                    "createdate": stored.get("createdAt", stamp), "lastmodifieddate": stamp}
            results.append({"id": cid, "properties": echo, "new": new,
                            "createdAt": stored.get("createdAt", stamp), "updatedAt": stamp,
                            "archived": False})
        return _batch(results, errors)

    def _batch(results: list, errors: list):
        stamp = now_iso()
        payload = {"status": "COMPLETE", "results": results, "startedAt": stamp,
                   "completedAt": stamp}
        if errors:
            payload.update(errors=errors, numErrors=len(errors))
            return JSONResponse(payload, status_code=207)
        return payload

    @app.post("/crm/v3/objects/contacts/batch/read")
    async def batch_read(body: dict):
        inputs = body.get("inputs")
        if body.get("idProperty") != "email" or not isinstance(inputs, list) or any(
                not isinstance(i, dict) or "id" not in i for i in inputs):
            return error(400, "inputs must be [{id}] and idProperty email")
        if len(inputs) > MAX_BATCH:
            return error(400, f"Batch size must be at most {MAX_BATCH} inputs.")
        if not isinstance(body.get("properties"), list) or not isinstance(
                body.get("propertiesWithHistory"), list):
            return error(400, "properties and propertiesWithHistory are required")
        asked = set(body["properties"])
        results, missing = [], []
        for item in inputs:
            cid = state.by_email.get(str(item["id"]).strip().lower())
            if cid is None:
                missing.append(item["id"])
                continue
            stored = state.contacts[cid]
            props = {k: v for k, v in stored["properties"].items() if k in asked}
            props["hs_object_id"] = cid
            results.append({"id": cid, "properties": props, "archived": False,
                            "createdAt": stored.get("createdAt", now_iso()),
                            "updatedAt": stored.get("updatedAt", now_iso())})
        errors = [batch_error("OBJECT_NOT_FOUND", "Could not get some CONTACT objects, they "
                              "may be deleted or not exist.", missing)] if missing else []
        return _batch(results, errors)

    @app.post("/crm/v3/objects/contacts/gdpr-delete")
    async def gdpr_delete(body: dict):
        """GDPR erase (204): the contact and its list memberships are permanently deleted
        and, by email, the address is blocklisted — even when no contact had it (as
        HubSpot documents); by record id, an unknown id is a 404."""
        key, prop = str(body.get("objectId", "")), body.get("idProperty")
        if prop == "email":
            email = key.strip().lower()
            state.blocklist.add(email)
            cid = state.by_email.get(email)
            if cid is None:
                return Response(status_code=204)
        else:
            cid = key if key in state.contacts else None
            if cid is None:
                return error(404, "resource not found", "OBJECT_NOT_FOUND")
        email = state.contacts.pop(cid)["properties"]["email"]
        state.blocklist.add(email)
        state.by_email.pop(email, None)
        for lst in state.lists.values():
            lst["members"].discard(cid)
        return Response(status_code=204)

    @app.post("/communication-preferences/v4/statuses/{subscriber}/unsubscribe-all")
    async def unsubscribe_all(subscriber: str, channel: str | None = None):
        if channel != "EMAIL":
            return error(400, "channel is required and must be EMAIL")
        email = subscriber.strip().lower()
        if not EMAIL_RE.match(email):
            return error(400, f"Email address {email} is invalid")
        state.optouts.add(email)
        cid = state.by_email.get(email)
        if cid is not None:
            state.contacts[cid]["properties"]["hs_email_optout"] = "true"
        stamp = now_iso()
        return {"status": "COMPLETE", "startedAt": stamp, "completedAt": stamp,
                "results": [{"channel": "EMAIL", "status": "NOT_SUBSCRIBED",
                             "subscriberIdString": email, "timestamp": stamp,
                             "source": "Public API", "subscriptionId": MARKETING_ID,
                             "subscriptionName": "Marketing Information"}]}

    @app.post("/crm/v3/lists")
    async def create_list(body: dict):
        if body.get("processingType") != "MANUAL" or body.get("objectTypeId") != "0-1":
            return error(400, "Only MANUAL contact lists (objectTypeId 0-1) are supported.")
        name = body.get("name")
        if any(v["name"] == name for v in state.lists.values()):
            return error(409, f"A list named {name} already exists.", "CONFLICT")
        lid = str(next(state.ids))
        state.lists[lid] = {"name": name, "members": set()}
        return {"list": _public_list(lid)}

    def _public_list(lid: str) -> dict:
        """The SDK's PublicObjectList (listId, name, processingType, objectTypeId,
        processingStatus and listVersion are required)."""
        return {"listId": lid, "name": state.lists[lid]["name"], "processingType": "MANUAL",
                "objectTypeId": "0-1", "processingStatus": "COMPLETE", "listVersion": 1,
                "size": len(state.lists[lid]["members"])}

    # the name is one URL path segment: a client must percent-encode "/" and the like
    @app.get("/crm/v3/lists/object-type-id/0-1/name/{name:path}")
    async def list_by_name(name: str, request: Request):
        raw = request.scope.get("raw_path", b"").decode()
        if raw.count("/") != 7:  # ['', crm, v3, lists, object-type-id, 0-1, name, <name>]
            return error(404, "No route: the list name must be URL-encoded",
                         "OBJECT_NOT_FOUND")
        for lid, v in state.lists.items():
            if v["name"] == name:
                return {"list": _public_list(lid)}
        return error(404, f"List {name} not found.", "OBJECT_NOT_FOUND")

    async def _membership(list_id: str, request: Request, add: bool):
        lst = state.lists.get(list_id)
        if lst is None:
            return error(404, f"List {list_id} not found.", "OBJECT_NOT_FOUND")
        ids = json.loads(await request.body() or b"[]")
        if not isinstance(ids, list):
            return error(400, "Body must be an array of record ids.")
        if len(ids) > MAX_MEMBERSHIP_IDS:
            return error(400, f"At most {MAX_MEMBERSHIP_IDS} record ids per call.")
        done, missing = [], []
        for rid in map(str, ids):
            if rid not in state.contacts:
                missing.append(rid)
                continue
            (lst["members"].add if add else lst["members"].discard)(rid)
            done.append(rid)
        # the SDK's MembershipsUpdateResponse spells them so (one with "records")
        return {"recordsIdsAdded": done if add else [],
                "recordIdsRemoved": [] if add else done, "recordIdsMissing": missing}

    @app.put("/crm/v3/lists/{list_id}/memberships/add")
    async def add(list_id: str, request: Request):
        return await _membership(list_id, request, add=True)

    @app.put("/crm/v3/lists/{list_id}/memberships/remove")
    async def remove(list_id: str, request: Request):
        return await _membership(list_id, request, add=False)

    @app.post("/_sandbox/contacts")
    async def seed(body: dict):
        email = body["email"].lower()
        cid = state.by_email.get(email) or str(next(state.ids))
        state.by_email[email] = cid
        state.contacts[cid] = {"id": cid, "properties": {
            "email": email, "hs_email_optout": "true" if body.get("optout") else "false"}}
        return state.contacts[cid]

    @app.get("/crm/v3/properties/contacts/groups")
    async def list_groups():
        return {"results": list(state.groups.values())}

    @app.post("/crm/v3/properties/contacts/groups")
    async def create_group(body: dict):
        name = body.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name) or not \
                isinstance(body.get("label"), str):
            return error(400, "name (lower case) and label are required")
        if name in state.groups:
            return error(409, f"A property group named {name} already exists.", "CONFLICT")
        state.groups[name] = {"name": name, "label": body["label"],
                              "displayOrder": int(body.get("displayOrder", -1)),
                              "archived": False}
        return JSONResponse(state.groups[name], status_code=201)

    @app.get("/crm/v3/properties/contacts")
    async def list_properties():
        return {"results": list(state.properties.values())}

    @app.post("/crm/v3/properties/contacts")
    async def create_property(body: dict):
        """A new contact property: name, label, type, fieldType and an existing
        groupName are required; the type and field type must go together."""
        required = {"name", "label", "type", "fieldType", "groupName"}
        missing = sorted(required - set(body))
        if missing:
            return error(400, f"missing {missing}")
        name, type_, field_type = body["name"], body["type"], body["fieldType"]
        pairs = {"string": {"text", "textarea"}, "number": {"number"},
                 "bool": {"booleancheckbox"}, "enumeration": {"select", "radio", "checkbox",
                                                             "booleancheckbox"},
                 "date": {"date"}, "datetime": {"date"}}
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,99}", str(name)):
            return error(400, f"{name!r} is not a valid property name")
        if field_type not in pairs.get(type_, set()):
            return error(400, f"fieldType {field_type} does not go with type {type_}")
        if body["groupName"] not in state.groups:
            return error(400, f"property group {body['groupName']} does not exist")
        if type_ == "bool" and len(body.get("options") or []) != 2:
            return error(400, "a bool property needs its two options")
        if name in state.properties:
            return error(409, f"A property named {name} already exists.", "CONFLICT")
        state.properties[name] = _property(name, body["label"], type_, field_type,
                                           body["groupName"], body.get("options"),
                                           body.get("description", ""))
        return JSONResponse(state.properties[name], status_code=201)

    @app.post("/_sandbox/contacts/delete")
    async def delete_contact(body: dict):
        """A user deletes a contact in HubSpot's UI (not an erasure: no blocklist)."""
        cid = state.by_email.pop(body["email"].lower(), None)
        if cid is not None:
            state.contacts.pop(cid)
            for lst in state.lists.values():
                lst["members"].discard(cid)
        return {"deleted": cid is not None}

    @app.get("/_sandbox/contacts/{email}")
    async def get_contact(email: str):
        cid = state.by_email.get(email.lower())
        if cid is None:
            return error(404, f"{email} not found", "OBJECT_NOT_FOUND")
        return state.contacts[cid]

    @app.get("/_sandbox/state")
    async def dump_state():
        return {"contacts": {c["properties"]["email"]: c["properties"]["hs_email_optout"]
                             for c in state.contacts.values()},
                "lists": {v["name"]: sorted(state.contacts[i]["properties"]["email"]
                                            for i in v["members"])
                          for v in state.lists.values()}}

    return app
