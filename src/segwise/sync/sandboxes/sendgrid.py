"""Twilio SendGrid Marketing Campaigns v3 sandbox — the contract in
../shared/specs/esp_api.md.

Enforced: ``Authorization: Bearer SG.…``; ``PUT /v3/marketing/contacts`` with at most
30,000 contacts and 6 MB, answered 202 ``{"job_id"}`` and completed asynchronously at
``GET /v3/marketing/contacts/imports/{id}`` (``pending`` → ``completed``, or ``errored``
when some contacts failed — ``results.errored_count`` and an ``errors_url`` whose CSV
names each failed address and why — the others are in), adding the contacts to
``list_ids``; a field sent as an empty string is cleared; lists ``POST``/``GET
/v3/marketing/lists`` (``page_size`` ≤ 1000, ``_metadata.next``); contact ids by email
``POST /v3/marketing/contacts/search/emails`` (≤ 100 *(verify)*; an unknown address is a
``{"error": "contact not found"}`` entry, 404 when none is found); list removal ``DELETE
/v3/marketing/lists/{id}/contacts?contact_ids=…`` (202 job; 404 when an id no longer
exists); contact deletion ``DELETE /v3/marketing/contacts?ids=…`` (≤ 100, 202 job);
suppressions, paged by ``limit`` (≤ 500, default 500) and ``offset``: global
unsubscribes ``GET /v3/suppression/unsubscribes`` (added to with ``POST
/v3/asm/suppressions/global`` ``{"recipient_emails": [...]}``, 201, echoed), bounces
``GET /v3/suppression/bounces``, spam reports ``GET /v3/suppression/spam_reports``; group
unsubscribes ``GET /v3/asm/suppressions`` (all groups, not paged); ``{"errors":[{field,
message}]}`` bodies; 429 ``too many requests`` with ``X-RateLimit-*`` headers (the reset
as epoch seconds, no ``Retry-After``); custom fields ``GET``/``POST
/v3/marketing/field_definitions`` (contacts carry them by id; an unknown id or a
non-number for a Number field fails that contact in the job). Every body has the shape
SendGrid's OpenAPI definitions publish (tests/python/test_esp_contracts.py).
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
import uuid
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from segwise.sync.sandboxes.common import install_common, persist, schedule_erasure

MAX_CONTACTS = 30_000
MAX_BYTES = 6 * 1024 * 1024
MAX_SEARCH = 100
SUPPRESSION_PAGE = 500  # the largest (and here the default) limit of a suppression page
LISTS_PAGE_DEFAULT, LISTS_PAGE_MAX = 100, 1000
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def error(status: int, message: str, field_name: str | None = None) -> JSONResponse:
    return JSONResponse({"errors": [{"field": field_name, "message": message}]},
                        status_code=status)


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def rate_limited() -> JSONResponse:
    resp = error(429, "too many requests")
    resp.headers.update({"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0",
                         "X-RateLimit-Reset": str(int(time.time()) + 1)})
    return resp


@dataclass
class SendGridState:
    key: str
    contacts: dict[str, dict] = field(default_factory=dict)  # id -> contact
    by_email: dict[str, str] = field(default_factory=dict)
    lists: dict[str, dict] = field(default_factory=dict)  # id -> {name, members}
    unsubscribes: set[str] = field(default_factory=set)
    bounces: set[str] = field(default_factory=set)
    spam_reports: set[str] = field(default_factory=set)
    group_unsubscribes: set[str] = field(default_factory=set)
    jobs: dict[str, dict] = field(default_factory=dict)
    custom_fields: dict[str, dict] = field(default_factory=dict)  # id -> {name, field_type}

    def dump(self) -> dict:
        return {"contacts": self.contacts, "unsubscribes": sorted(self.unsubscribes),
                "bounces": sorted(self.bounces), "spam_reports": sorted(self.spam_reports),
                "group_unsubscribes": sorted(self.group_unsubscribes),
                "custom_fields": self.custom_fields,
                "lists": {k: {"name": v["name"], "members": sorted(v["members"])}
                          for k, v in self.lists.items()}}

    def load(self, data: dict) -> None:
        self.contacts = data["contacts"]
        self.by_email = {c["email"]: cid for cid, c in self.contacts.items()}
        self.unsubscribes = set(data["unsubscribes"])
        self.bounces = set(data.get("bounces", []))
        self.spam_reports = set(data.get("spam_reports", []))
        self.group_unsubscribes = set(data.get("group_unsubscribes", []))
        self.custom_fields = data.get("custom_fields", {})
        self.lists = {k: {"name": v["name"], "members": set(v["members"])}
                      for k, v in data["lists"].items()}


def create_app(key: str, state_file=None) -> FastAPI:
    app = FastAPI(title="SendGrid sandbox")
    state = SendGridState(key=key)
    persist(app, state, state_file)
    install_common(app, state, rate_limited=rate_limited,
                   server_error=lambda: error(500, "internal server error"))

    @app.middleware("http")
    async def auth(request: Request, call_next):
        if request.url.path.startswith("/_sandbox"):
            return await call_next(request)
        if request.headers.get("authorization") != f"Bearer {state.key}":
            return error(401, "authorization required")
        return await call_next(request)

    def _finish(job: dict) -> None:
        if job["status"] != "pending":
            return
        job["polls"] += 1
        if job["polls"] < 2:
            return
        if state.faults.fail_jobs_next > 0:
            state.faults.fail_jobs_next -= 1
            job["status"] = "failed"
            return
        job["errors"] = job["apply"]() or []
        job["status"] = "errored" if job["errors"] else "completed"
        job["finished_at"] = now_iso()

    def _new_job(apply, requested: int = 0, job_type: str = "upsert") -> str:
        job_id = uuid.uuid4().hex
        state.jobs[job_id] = {"status": "pending", "polls": 0, "apply": apply,
                              "requested": requested, "job_type": job_type, "errors": [],
                              "started_at": now_iso(), "created": 0, "updated": 0}
        return job_id

    @app.put("/v3/marketing/contacts")
    async def upsert(request: Request):
        raw = await request.body()
        if len(raw) > MAX_BYTES:
            return error(413, "request body is larger than 6 MB")
        body = json.loads(raw)
        contacts = body.get("contacts")
        if not isinstance(contacts, list) or not contacts:
            return error(400, "contacts is required", "contacts")
        if len(contacts) > MAX_CONTACTS:
            return error(400, f"contacts must have at most {MAX_CONTACTS} items", "contacts")
        list_ids = body.get("list_ids", [])
        for lid in list_ids:
            if lid not in state.lists:
                return error(404, f"list {lid} not found", "list_ids")
        job_id = ""

        def apply() -> list[tuple[str, str]]:
            """The job: invalid contacts are errors of the job, the others go in."""
            failed = []
            for c in contacts:
                email = str(c.get("email", "")).strip().lower()
                if not EMAIL_RE.match(email):
                    failed.append((str(c.get("email", "")), "invalid email"))
                    continue
                custom = c.get("custom_fields") or {}
                unknown = sorted(set(custom) - set(state.custom_fields))
                wrong = sorted(k for k, v in custom.items() if k in state.custom_fields
                               and state.custom_fields[k]["field_type"] == "Number"
                               and (isinstance(v, bool) or not isinstance(v, (int, float))))
                if unknown or wrong:
                    failed.append((email, f"invalid custom field(s) {unknown or wrong}"))
                    continue
                cid = state.by_email.get(email)
                job = state.jobs[job_id]
                if cid is None:
                    cid = str(uuid.uuid4())
                    state.by_email[email] = cid
                    state.contacts[cid] = {"id": cid, "email": email,
                                           "created_at": now_iso()}
                    job["created"] += 1
                else:
                    job["updated"] += 1
                stored = state.contacts[cid]
                for key, value in c.items():
                    if key == "custom_fields":
                        stored.setdefault("custom_fields", {}).update(value)
                        continue
                    if key == "email":
                        continue
                    if value == "":  # an empty string clears the field
                        stored.pop(key, None)
                    else:
                        stored[key] = value
                stored["updated_at"] = now_iso()
                for lid in list_ids:
                    state.lists[lid]["members"].add(cid)
            return failed

        job_id = _new_job(apply, len(contacts))
        return JSONResponse({"job_id": job_id}, status_code=202)

    @app.get("/v3/marketing/contacts/imports/{job_id}")
    async def import_status(job_id: str, request: Request):
        job = state.jobs.get(job_id)
        if job is None:
            return error(404, "job not found")
        _finish(job)
        body = {"id": job_id, "status": job["status"], "job_type": job["job_type"],
                "started_at": job["started_at"],
                "results": {"requested_count": job["requested"],
                            "created_count": job["created"],
                            "updated_count": job["updated"], "deleted_count": 0,
                            "errored_count": len(job["errors"])}}
        if job.get("finished_at"):
            body["finished_at"] = job["finished_at"]
        if job["errors"]:
            body["results"]["errors_url"] = (f"{str(request.base_url).rstrip('/')}"
                                             f"/v3/marketing/contacts/imports/{job_id}/errors")
        return body

    @app.get("/v3/marketing/contacts/imports/{job_id}/errors")
    async def import_errors(job_id: str):
        """The errors file of a job: a CSV of the failed addresses and why."""
        job = state.jobs.get(job_id)
        if job is None:
            return error(404, "job not found")
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["email", "error"])
        writer.writerows(job["errors"])
        return Response(out.getvalue(), media_type="text/csv")

    @app.post("/v3/marketing/contacts/search/emails")
    async def search(body: dict):
        emails = body.get("emails")
        if not isinstance(emails, list) or not emails:
            return error(400, "emails is required", "emails")
        if len(emails) > MAX_SEARCH:
            return error(400, f"emails must have at most {MAX_SEARCH} items", "emails")
        result, found = {}, False
        for e in emails:
            cid = state.by_email.get(str(e).strip().lower())
            if cid:
                result[e] = {"contact": _contact_json(cid)}
                found = True
            else:
                result[e] = {"error": "contact not found"}
        if not found:
            return error(404, "no contacts found")
        return {"result": result}

    def _contact_json(cid: str) -> dict:
        """A contact as search/emails returns it (id, list_ids, segment_ids, created_at,
        updated_at are required)."""
        c = state.contacts[cid]
        return {**{k: v for k, v in c.items() if k not in ("created_at", "updated_at")},
                "list_ids": sorted(lid for lid, lst in state.lists.items()
                                   if cid in lst["members"]),
                "segment_ids": [], "created_at": c.get("created_at", now_iso()),
                "updated_at": c.get("updated_at", now_iso())}

    def _list_json(lid: str) -> dict:
        return {"id": lid, "name": state.lists[lid]["name"],
                "contact_count": len(state.lists[lid]["members"]),
                "_metadata": {"self": f"/v3/marketing/lists/{lid}"}}

    RESERVED = [{"name": n, "field_type": "Text", "read_only": n in ("created_at",)}
                for n in ("first_name", "last_name", "email", "created_at")]

    @app.get("/v3/marketing/field_definitions")
    async def field_definitions():
        return {"custom_fields": [{"id": fid, **f} for fid, f in state.custom_fields.items()],
                "reserved_fields": RESERVED}

    @app.post("/v3/marketing/field_definitions")
    async def create_field_definition(body: dict):
        """Names: letters, digits and _, case-insensitively unique, at most 500 fields."""
        name, kind = body.get("name"), body.get("field_type")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,99}", name):
            return error(400, "name must be 1-100 letters, digits or underscores", "name")
        if kind not in ("Text", "Number", "Date"):
            return error(400, "field_type must be Text, Number or Date", "field_type")
        if any(f["name"].lower() == name.lower() for f in state.custom_fields.values()) or \
                name.lower() in {r["name"] for r in RESERVED}:
            return error(400, f"a field named {name} already exists", "name")
        if len(state.custom_fields) >= 500:
            return error(400, "at most 500 custom fields", "name")
        fid = f"e{len(state.custom_fields) + 1}_{kind[0]}"
        state.custom_fields[fid] = {"name": name, "field_type": kind}
        return {"id": fid, "name": name, "field_type": kind}

    @app.get("/v3/marketing/lists")
    async def get_lists(request: Request, page_size: int = LISTS_PAGE_DEFAULT,
                        page_token: str = "0"):
        if not 1 <= page_size <= LISTS_PAGE_MAX:
            return error(400, f"page_size must be between 1 and {LISTS_PAGE_MAX}",
                         "page_size")
        start = int(page_token) if page_token.isdigit() else 0
        ids = list(state.lists)
        meta = {"self": str(request.url), "count": len(ids)}
        if start + page_size < len(ids):
            meta["next"] = str(request.url.include_query_params(
                page_token=str(start + page_size)))
        return {"result": [_list_json(lid) for lid in ids[start:start + page_size]],
                "_metadata": meta}

    @app.post("/v3/marketing/lists")
    async def create_list(body: dict):
        name = body.get("name")
        if not name:
            return error(400, "name is required", "name")
        if any(v["name"] == name for v in state.lists.values()):
            return error(400, "list name already exists", "name")
        lid = str(uuid.uuid4())
        state.lists[lid] = {"name": name, "members": set()}
        return JSONResponse(_list_json(lid), status_code=201)

    @app.delete("/v3/marketing/lists/{list_id}/contacts")
    async def remove(list_id: str, contact_ids: str = ""):
        lst = state.lists.get(list_id)
        if lst is None:
            return error(404, "list not found")
        ids = [i for i in contact_ids.split(",") if i]
        if not ids:
            return error(400, "contact_ids is required", "contact_ids")
        if len(ids) > MAX_SEARCH:
            return error(400, f"at most {MAX_SEARCH} contact_ids", "contact_ids")
        gone = [i for i in ids if i not in state.contacts]
        if gone:  # the contact was deleted since its id was read
            return error(404, f"contact(s) {gone} not found", "contact_ids")

        def apply() -> None:
            for i in ids:
                lst["members"].discard(i)

        apply()  # list removals show immediately in the sandbox; the job id is returned
        return JSONResponse({"job_id": _new_job(lambda: None)}, status_code=202)

    @app.delete("/v3/marketing/contacts")
    async def delete_contacts(ids: str = "", delete_all_contacts: str = ""):
        """Delete contacts by id (≤ 100 per call): 202 with a job id; the contacts and
        their list memberships go asynchronously (after ``erasure_delay_ms``)."""
        wanted = [i for i in ids.split(",") if i]
        if delete_all_contacts:
            return error(400, "delete_all_contacts is not allowed here", "delete_all_contacts")
        if not wanted:
            return error(400, "ids is required", "ids")
        if len(wanted) > MAX_SEARCH:
            return error(400, f"at most {MAX_SEARCH} ids", "ids")
        def delete() -> None:
            for cid in wanted:
                contact = state.contacts.pop(cid, None)
                if contact is not None:
                    state.by_email.pop(contact["email"], None)
                for lst in state.lists.values():
                    lst["members"].discard(cid)

        schedule_erasure(state, delete)  # a job: the contacts go a little later
        return JSONResponse({"job_id": _new_job(lambda: None, len(wanted), "delete")},
                            status_code=202)

    def _suppression_page(emails: set[str], row, limit: int, offset: int):
        if not 1 <= limit <= SUPPRESSION_PAGE or offset < 0:
            return error(400, f"limit must be between 1 and {SUPPRESSION_PAGE}", "limit")
        return [row(e) for e in sorted(emails)[offset:offset + limit]]

    @app.get("/v3/suppression/unsubscribes")
    async def unsubscribes(limit: int = SUPPRESSION_PAGE, offset: int = 0):
        return _suppression_page(state.unsubscribes, lambda e: {
            "email": e, "created": 1700000000}, limit, offset)

    @app.get("/v3/suppression/bounces")
    async def bounces(limit: int = SUPPRESSION_PAGE, offset: int = 0):
        return _suppression_page(state.bounces, lambda e: {
            "email": e, "created": 1700000000, "reason": "550 5.1.1 user unknown",
            "status": "5.1.1"}, limit, offset)

    @app.get("/v3/suppression/spam_reports")
    async def spam_reports(limit: int = SUPPRESSION_PAGE, offset: int = 0):
        return _suppression_page(state.spam_reports, lambda e: {
            "email": e, "created": 1700000000, "ip": "192.0.2.1"}, limit, offset)

    @app.get("/v3/asm/suppressions")
    async def group_suppressions():
        return [{"email": e, "group_id": 1, "group_name": "Newsletter",
                 "created_at": 1700000000} for e in sorted(state.group_unsubscribes)]

    @app.post("/v3/asm/suppressions/global")
    async def add_global_suppressions(body: dict):
        emails = body.get("recipient_emails")
        if not isinstance(emails, list) or not emails or not all(
                isinstance(e, str) and EMAIL_RE.match(e.strip()) for e in emails):
            return error(400, "recipient_emails must be a non-empty array of email "
                         "addresses", "recipient_emails")
        state.unsubscribes |= {e.strip().lower() for e in emails}
        return JSONResponse({"recipient_emails": emails}, status_code=201)

    @app.post("/_sandbox/unsubscribes")
    async def seed_unsubscribe(body: dict):
        """``kind``: unsubscribe (global, the default), bounce, spam or group."""
        target = {"unsubscribe": state.unsubscribes, "bounce": state.bounces,
                  "spam": state.spam_reports, "group": state.group_unsubscribes}
        emails = body.get("emails") or [body["email"]]
        target[body.get("kind", "unsubscribe")].update(e.lower() for e in emails)
        return {"ok": True}

    @app.post("/_sandbox/contacts/delete")
    async def delete_contact(body: dict):
        """A user deletes a contact in SendGrid's UI."""
        cid = state.by_email.pop(body["email"].lower(), None)
        if cid is not None:
            state.contacts.pop(cid)
            for lst in state.lists.values():
                lst["members"].discard(cid)
        return {"deleted": cid is not None}

    @app.get("/_sandbox/contacts/{email}")
    async def get_contact(email: str):
        cid = state.by_email.get(email.lower())
        return state.contacts[cid] if cid else error(404, "not found")

    @app.get("/_sandbox/state")
    async def dump_state():
        return {"contacts": sorted(c["email"] for c in state.contacts.values()),
                "unsubscribes": sorted(state.unsubscribes),
                "lists": {v["name"]: sorted(state.contacts[i]["email"] for i in v["members"])
                          for v in state.lists.values()}}

    return app
