"""Twilio SendGrid Marketing Campaigns v3 sandbox — the contract in
../shared/specs/esp_api.md.

Enforced: ``Authorization: Bearer SG.…``; ``PUT /v3/marketing/contacts`` with at most
30,000 contacts and 6 MB, answered 202 ``{"job_id"}`` and completed asynchronously
(``pending`` → ``completed``) at ``GET /v3/marketing/contacts/imports/{id}``, adding the
contacts to ``list_ids``; lists ``POST``/``GET /v3/marketing/lists``; contact ids by
email ``POST /v3/marketing/contacts/search/emails`` (≤ 100 *(verify)*, 404 when none is
found); list removal ``DELETE /v3/marketing/lists/{id}/contacts?contact_ids=…`` (202 job);
contact deletion ``DELETE /v3/marketing/contacts?ids=…`` (≤ 100, 202 job);
global unsubscribes at ``GET /v3/suppression/unsubscribes``, added to with ``POST
/v3/asm/suppressions/global`` ``{"recipient_emails": [...]}`` (201, echoed); ``{"errors":[{field,
message}]}`` bodies; 429 ``too many requests`` with ``X-RateLimit-*`` headers.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from segwise.sync.sandboxes.common import install_common, persist, schedule_erasure

MAX_CONTACTS = 30_000
MAX_BYTES = 6 * 1024 * 1024
MAX_SEARCH = 100
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def error(status: int, message: str, field_name: str | None = None) -> JSONResponse:
    return JSONResponse({"errors": [{"field": field_name, "message": message}]},
                        status_code=status)


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
    jobs: dict[str, dict] = field(default_factory=dict)

    def dump(self) -> dict:
        return {"contacts": self.contacts, "unsubscribes": sorted(self.unsubscribes),
                "lists": {k: {"name": v["name"], "members": sorted(v["members"])}
                          for k, v in self.lists.items()}}

    def load(self, data: dict) -> None:
        self.contacts = data["contacts"]
        self.by_email = {c["email"]: cid for cid, c in self.contacts.items()}
        self.unsubscribes = set(data["unsubscribes"])
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
        job["apply"]()
        job["status"] = "completed"

    def _new_job(apply) -> str:
        job_id = uuid.uuid4().hex
        state.jobs[job_id] = {"status": "pending", "polls": 0, "apply": apply}
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
        for c in contacts:
            if not EMAIL_RE.match(str(c.get("email", ""))):
                return error(400, f"invalid email {c.get('email')!r}", "contacts")

        def apply() -> None:
            for c in contacts:
                email = c["email"].strip().lower()
                cid = state.by_email.get(email)
                if cid is None:
                    cid = str(uuid.uuid4())
                    state.by_email[email] = cid
                    state.contacts[cid] = {"id": cid, "email": email}
                state.contacts[cid].update({k: v for k, v in c.items() if k != "email"})
                for lid in list_ids:
                    state.lists[lid]["members"].add(cid)

        return JSONResponse({"job_id": _new_job(apply)}, status_code=202)

    @app.get("/v3/marketing/contacts/imports/{job_id}")
    async def import_status(job_id: str):
        job = state.jobs.get(job_id)
        if job is None:
            return error(404, "job not found")
        _finish(job)
        return {"id": job_id, "status": job["status"], "job_type": "upsert"}

    @app.post("/v3/marketing/contacts/search/emails")
    async def search(body: dict):
        emails = body.get("emails")
        if not isinstance(emails, list) or not emails:
            return error(400, "emails is required", "emails")
        if len(emails) > MAX_SEARCH:
            return error(400, f"emails must have at most {MAX_SEARCH} items", "emails")
        result = {}
        for e in emails:
            cid = state.by_email.get(str(e).strip().lower())
            if cid:
                result[e] = {"contact": state.contacts[cid]}
        if not result:
            return error(404, "no contacts found")
        return {"result": result}

    @app.get("/v3/marketing/lists")
    async def get_lists():
        return {"result": [{"id": k, "name": v["name"], "contact_count": len(v["members"])}
                           for k, v in state.lists.items()]}

    @app.post("/v3/marketing/lists")
    async def create_list(body: dict):
        name = body.get("name")
        if not name:
            return error(400, "name is required", "name")
        if any(v["name"] == name for v in state.lists.values()):
            return error(400, "list name already exists", "name")
        lid = str(uuid.uuid4())
        state.lists[lid] = {"name": name, "members": set()}
        return JSONResponse({"id": lid, "name": name, "contact_count": 0}, status_code=201)

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
        return JSONResponse({"job_id": _new_job(lambda: None)}, status_code=202)

    @app.get("/v3/suppression/unsubscribes")
    async def unsubscribes():
        return [{"email": e, "created": 1700000000} for e in sorted(state.unsubscribes)]

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
        state.unsubscribes.add(body["email"].lower())
        return {"ok": True}

    @app.get("/_sandbox/state")
    async def dump_state():
        return {"contacts": sorted(c["email"] for c in state.contacts.values()),
                "unsubscribes": sorted(state.unsubscribes),
                "lists": {v["name"]: sorted(state.contacts[i]["email"] for i in v["members"])
                          for v in state.lists.values()}}

    return app
