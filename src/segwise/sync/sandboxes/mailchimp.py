"""Mailchimp Marketing API v3 sandbox — the contract in ../shared/specs/esp_api.md.

Enforced: HTTP Basic auth with the API key as password (401 problem+json otherwise);
batch upsert ``POST /3.0/lists/{list_id}`` with at most 500 members (400 otherwise),
``status_if_new`` / ``status`` semantics and the compliance rule (an ``unsubscribed`` or
``cleaned`` member cannot be set to ``subscribed``: a per-member error "Member In
Compliance State" inside a 200); static segments ``POST /3.0/lists/{id}/segments`` and
membership changes ``POST /3.0/lists/{id}/segments/{segment_id}`` with at most 500 adds and
500 removes (an add of a non-member of the list is a per-member error; emails not in the
segment are ignored on removal, as the reference says; only static segments take
members); segments listed ``GET /3.0/lists/{id}/segments`` with ``type``, ``count``
(default 10, at most 1000) and ``offset``, saved (condition) segments included unless
``type=static``; a merge field sent as an empty string is blanked; at most 10 simultaneous
connections per key (429 "Too Many Requests"); ``application/problem+json`` errors.
Identity: ``subscriber_hash`` = MD5 of the lower-cased email.

GDPR erase ``POST …/members/{hash}/actions/delete-permanent`` (204, 404 when absent): the
address can never be imported again ("Forgotten Email Not Subscribed").
Merge fields ``GET``/``POST /3.0/lists/{id}/merge-fields`` (a tag of at most 10
characters, unique); a member naming an unknown merge tag, or a non-number for a number
field, is a per-member error.
Not modelled (yet): ``/batches`` async operations, tags endpoint, archive.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from segwise.sync.sandboxes.common import install_common, persist

MAX_BATCH = 500
MAX_CONNECTIONS = 10
STATUSES = {"subscribed", "unsubscribed", "cleaned", "pending", "transactional", "archived"}
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode()).hexdigest()


def problem(status: int, title: str, detail: str, errors: list | None = None) -> JSONResponse:
    body = {"type": "https://mailchimp.com/developer/marketing/docs/errors/", "title": title,
            "status": status, "detail": detail, "instance": ""}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


@dataclass
class ListState:
    members: dict[str, dict] = field(default_factory=dict)  # hash -> member
    segments: dict[int, dict] = field(default_factory=dict)  # id -> {name, members:set}
    # tag -> merge field (FNAME and LNAME exist in every audience)
    merge_fields: dict[str, dict] = field(default_factory=lambda: {
        "FNAME": {"merge_id": 1, "tag": "FNAME", "name": "First Name", "type": "text"},
        "LNAME": {"merge_id": 2, "tag": "LNAME", "name": "Last Name", "type": "text"}})
    forgotten: set[str] = field(default_factory=set)  # hashes permanently deleted (GDPR)


@dataclass
class MailchimpState:
    api_key: str
    lists: dict[str, ListState] = field(default_factory=dict)
    in_flight: int = 0
    ids: itertools.count = field(default_factory=lambda: itertools.count(1000))
    # addresses Mailchimp's own checks call fake (role accounts, known traps, …): a
    # syntactically valid address can still be refused per member
    looks_fake: set[str] = field(default_factory=set)

    def list(self, list_id: str) -> ListState:
        return self.lists.setdefault(list_id, ListState())

    def dump(self) -> dict:
        return {lid: {"members": lst.members, "forgotten": sorted(lst.forgotten),
                      "merge_fields": lst.merge_fields,
                      "segments": {str(sid): {"name": seg["name"],
                                              "members": sorted(seg["members"]),
                                              "type": seg.get("type", "static")}
                                   for sid, seg in lst.segments.items()}}
                for lid, lst in self.lists.items()}

    def load(self, data: dict) -> None:
        top = 999
        for lid, lst in data.items():
            state = self.list(lid)
            state.members = lst["members"]
            state.forgotten = set(lst.get("forgotten", []))
            state.merge_fields.update(lst.get("merge_fields", {}))
            for sid, seg in lst["segments"].items():
                state.segments[int(sid)] = {"name": seg["name"], "members": set(seg["members"]),
                                            "type": seg.get("type", "static")}
                top = max(top, int(sid))
        self.ids = itertools.count(top + 1)


def create_app(api_key: str, state_file: Path | None = None) -> FastAPI:
    """``state_file``: load the destination's state from it and save it back on
    ``app.state.save()`` — so a demo destination survives between `make run`s."""
    app = FastAPI(title="Mailchimp sandbox")
    state = MailchimpState(api_key=api_key)
    persist(app, state, state_file)
    install_common(
        app, state,
        rate_limited=lambda: problem(429, "Too Many Requests",
                                     "You have exceeded the limit of 10 simultaneous "
                                     "connections."),
        server_error=lambda: problem(503, "Service Unavailable",
                                     "The service is temporarily unavailable."),
    )

    @app.middleware("http")
    async def auth_and_connections(request: Request, call_next):
        if request.url.path.startswith("/_sandbox"):
            return await call_next(request)
        header = request.headers.get("authorization", "")
        ok = False
        if header.startswith("Basic "):
            try:
                _, _, password = base64.b64decode(header[6:]).decode().partition(":")
                ok = password == state.api_key
            except ValueError:
                ok = False
        elif header.startswith("Bearer "):
            ok = header[7:] == state.api_key
        if not ok:
            return problem(401, "API Key Invalid", "Your API key may be invalid, or you've "
                           "attempted to access the wrong datacenter.")
        if state.in_flight >= MAX_CONNECTIONS:
            return problem(429, "Too Many Requests",
                           "You have exceeded the limit of 10 simultaneous connections.")
        state.in_flight += 1
        try:
            return await call_next(request)
        finally:
            state.in_flight -= 1

    @app.post("/3.0/lists/{list_id}")
    async def batch_upsert(list_id: str, body: dict):
        members = body.get("members")
        if not isinstance(members, list):
            return problem(400, "Invalid Resource", "The resource submitted could not be "
                           "validated.", [{"field": "members", "message": "Required"}])
        if len(members) > MAX_BATCH:
            return problem(400, "Invalid Resource", f"You can only add up to {MAX_BATCH} "
                           "members per batch.", [{"field": "members",
                                                  "message": "Too many members"}])
        update_existing = bool(body.get("update_existing", False))
        lst = state.list(list_id)
        new, updated, errors = [], [], []
        for m in members:
            email = str(m.get("email_address", "")).strip()
            if not EMAIL_RE.match(email) or email.lower() in state.looks_fake:
                errors.append({"email_address": email, "error": f"{email} looks fake or "
                               "invalid, please enter a real email address.",
                               "error_code": "ERROR_GENERIC"})
                continue
            h = subscriber_hash(email)
            if h in lst.forgotten:  # permanently deleted: can't be re-imported
                errors.append({"email_address": email, "error": "Forgotten Email Not "
                               f"Subscribed: {email} was permanently deleted and cannot be "
                               "re-imported. The contact must re-subscribe to get back on "
                               "the list.", "error_code": "ERROR_GENERIC"})
                continue
            status, status_if_new = m.get("status"), m.get("status_if_new")
            for s in (status, status_if_new):
                if s is not None and s not in STATUSES:
                    errors.append({"email_address": email, "error": f"Invalid status {s}",
                                   "error_code": "ERROR_GENERIC"})
                    break
            else:
                merge = m.get("merge_fields") or {}
                unknown = sorted(set(merge) - set(lst.merge_fields))
                wrong = sorted(t for t, v in merge.items() if t in lst.merge_fields
                               and lst.merge_fields[t]["type"] == "number" and v != ""
                               and (isinstance(v, bool) or not isinstance(v, (int, float))))
                if unknown or wrong:
                    errors.append({"email_address": email, "error": "Your merge fields were "
                                   f"invalid: {unknown or wrong}", "error_code":
                                   "ERROR_GENERIC", "field": "merge_fields"})
                    continue
                existing = lst.members.get(h)
                if existing is None:
                    initial = status or status_if_new
                    if initial is None:
                        errors.append({"email_address": email, "error": "The resource "
                                       "submitted could not be validated: status required",
                                       "error_code": "ERROR_GENERIC"})
                        continue
                    member = {"id": h, "email_address": email.lower(), "status": initial,
                              "merge_fields": m.get("merge_fields", {}),
                              "tags": [t for t in m.get("tags", [])]}
                    lst.members[h] = member
                    new.append(member)
                    continue
                if not update_existing:
                    errors.append({"email_address": email, "error": f"{email} is already a "
                                   "list member.", "error_code": "ERROR_CONTACT_EXISTS"})
                    continue
                if (status == "subscribed"
                        and existing["status"] in ("unsubscribed", "cleaned")):
                    errors.append({"email_address": email,
                                   "error": f"Member In Compliance State: {email} is in a "
                                   "compliance state due to unsubscribe, bounce, or "
                                   "compliance review and cannot be subscribed.",
                                   "error_code": "ERROR_CONTACT_EXISTS"})
                    continue
                if status is not None:
                    existing["status"] = status
                for tag, value in (m.get("merge_fields") or {}).items():
                    existing["merge_fields"][tag] = value  # "" blanks the field
                updated.append(existing)
        await asyncio.sleep(0)
        return {"new_members": new, "updated_members": updated, "errors": errors,
                "total_created": len(new), "total_updated": len(updated),
                "error_count": len(errors)}

    @app.get("/3.0/lists/{list_id}/members/{member_hash}")
    async def get_member(list_id: str, member_hash: str):
        member = state.list(list_id).members.get(member_hash)
        if member is None:
            return problem(404, "Resource Not Found", "The requested resource could not be "
                           "found.")
        return member

    @app.post("/3.0/lists/{list_id}/members/{member_hash}/actions/delete-permanent")
    async def delete_permanent(list_id: str, member_hash: str):
        """GDPR erase: the member and its segment memberships are gone for good, and the
        address can never be imported again (204; 404 if there is no such member)."""
        lst = state.list(list_id)
        if member_hash not in lst.members:
            return problem(404, "Resource Not Found", "The requested resource could not be "
                           "found.")
        del lst.members[member_hash]
        for seg in lst.segments.values():
            seg["members"].discard(member_hash)
        lst.forgotten.add(member_hash)
        return Response(status_code=204)

    @app.get("/3.0/lists/{list_id}/merge-fields")
    async def list_merge_fields(list_id: str, count: int = 10, offset: int = 0):
        lst = state.list(list_id)
        fields = [{**f, "list_id": list_id, "required": False, "public": False,
                   "display_order": f["merge_id"]} for f in lst.merge_fields.values()]
        return {"merge_fields": fields[offset:offset + count], "list_id": list_id,
                "total_items": len(fields)}

    @app.post("/3.0/lists/{list_id}/merge-fields")
    async def add_merge_field(list_id: str, body: dict):
        """A merge tag is 1-10 characters (letters, digits, _), unique in the audience."""
        lst = state.list(list_id)
        tag = str(body.get("tag") or "").upper()
        if not body.get("name") or body.get("type") not in ("text", "number", "date"):
            return problem(400, "Invalid Resource", "name and type are required.")
        if not re.fullmatch(r"[A-Z0-9_]{1,10}", tag):
            return problem(400, "Invalid Resource", f"The merge tag {tag!r} is invalid: "
                           "at most 10 letters, digits or underscores.")
        if tag in lst.merge_fields:
            return problem(400, "Invalid Resource", f"A merge field with the tag {tag} "
                           "already exists.")
        lst.merge_fields[tag] = {"merge_id": len(lst.merge_fields) + 1, "tag": tag,
                                 "name": body["name"], "type": body["type"]}
        return {**lst.merge_fields[tag], "list_id": list_id, "required": False,
                "public": bool(body.get("public", False)),
                "display_order": lst.merge_fields[tag]["merge_id"]}

    @app.get("/3.0/lists/{list_id}/segments")
    async def list_segments(list_id: str, count: int = 10, offset: int = 0,
                            type: str | None = None):  # noqa: A002 - the API's name
        if not 1 <= count <= 1000 or offset < 0:
            return problem(400, "Invalid Resource", "count must be between 1 and 1000.")
        lst = state.list(list_id)
        chosen = [(sid, s) for sid, s in lst.segments.items()
                  if type is None or s.get("type", "static") == type]
        return {"segments": [{"id": sid, "name": s["name"], "type": s.get("type", "static"),
                              "member_count": len(s["members"]), "list_id": list_id}
                             for sid, s in chosen[offset:offset + count]],
                "list_id": list_id, "total_items": len(chosen)}

    @app.post("/3.0/lists/{list_id}/segments")
    async def create_segment(list_id: str, body: dict):
        name = body.get("name")
        if not name or "static_segment" not in body:
            return problem(400, "Invalid Resource", "The resource submitted could not be "
                           "validated.", [{"field": "static_segment", "message": "Required"}])
        lst = state.list(list_id)
        if any(s["name"] == name and s.get("type", "static") == "static"
               for s in lst.segments.values()):
            return problem(400, "Invalid Resource", f"A segment named {name} already exists.")
        sid = next(state.ids)
        lst.segments[sid] = {"name": name, "members": set(), "type": "static"}
        return {"id": sid, "name": name, "type": "static", "member_count": 0}

    @app.post("/3.0/lists/{list_id}/segments/{segment_id}")
    async def segment_members(list_id: str, segment_id: int, body: dict):
        lst = state.list(list_id)
        seg = lst.segments.get(segment_id)
        if seg is None:
            return problem(404, "Resource Not Found", "The requested segment could not be "
                           "found.")
        if seg.get("type", "static") != "static":
            return problem(400, "Invalid Resource", "Members can only be added to or "
                           "removed from a static segment.")
        adds = body.get("members_to_add", []) or []
        removes = body.get("members_to_remove", []) or []
        if len(adds) > MAX_BATCH or len(removes) > MAX_BATCH:
            return problem(400, "Invalid Resource", f"Cannot add or remove more than "
                           f"{MAX_BATCH} members at a time.")
        added, removed, errors = [], [], []
        for email in adds:
            h = subscriber_hash(email)
            if h not in lst.members:
                errors.append({"email_addresses": [email], "error": "Email address is not "
                               "subscribed to the list"})
                continue
            if h not in seg["members"]:
                seg["members"].add(h)
            added.append(lst.members[h])
        for email in removes:  # "emails not present on the list will be ignored"
            h = subscriber_hash(email)
            if h in seg["members"]:
                seg["members"].discard(h)
                removed.append(lst.members[h])
        return {"members_added": added, "members_removed": removed, "errors": errors,
                "total_added": len(added), "total_removed": len(removed),
                "error_count": len(errors)}

    # ---- sandbox-only: seed and inspect state
    @app.post("/_sandbox/looks-fake")
    async def mark_fake(body: dict):
        state.looks_fake.add(str(body["email"]).lower())
        return {"ok": True}

    @app.post("/_sandbox/lists/{list_id}/members")
    async def seed_member(list_id: str, body: dict):
        email = body["email_address"]
        h = subscriber_hash(email)
        state.list(list_id).members[h] = {"id": h, "email_address": email.lower(),
                                          "status": body.get("status", "subscribed"),
                                          "merge_fields": {}, "tags": []}
        return state.list(list_id).members[h]

    @app.post("/_sandbox/lists/{list_id}/segments")
    async def seed_segment(list_id: str, body: dict):
        """A segment someone made in Mailchimp's UI (``type``: saved or static)."""
        sid = next(state.ids)
        state.list(list_id).segments[sid] = {"name": body["name"], "members": set(),
                                             "type": body.get("type", "saved")}
        return {"id": sid}

    @app.post("/_sandbox/lists/{list_id}/members/{member_hash}/status")
    async def set_status(list_id: str, member_hash: str, body: dict):
        state.list(list_id).members[member_hash]["status"] = body["status"]
        return state.list(list_id).members[member_hash]

    @app.get("/_sandbox/lists/{list_id}/state")
    async def dump_state(list_id: str):
        lst = state.list(list_id)
        return {
            "members": {m["email_address"]: m["status"] for m in lst.members.values()},
            "segments": {s["name"]: sorted(lst.members[h]["email_address"] for h in s["members"])
                         for s in lst.segments.values()},
        }

    return app
