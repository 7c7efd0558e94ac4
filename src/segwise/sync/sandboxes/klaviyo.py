"""Klaviyo API (JSON:API) sandbox — the contract in ../shared/specs/esp_api.md.

Enforced: ``Authorization: Klaviyo-API-Key <key>``; a known ``revision`` header (400
otherwise); JSON:API error bodies ``{"errors": [{id, status, code, title, detail,
source}]}``; ``POST /api/profile-bulk-import-jobs`` with at most 10,000 profiles and 5
MB (413/400 otherwise), answered 202 and completed asynchronously (``queued`` →
``processing`` → ``complete``, a poll or two later), per-profile failures at
``…/import-errors``, the job's profiles at ``…/profiles``; importing never changes a
profile's email consent, and merges its custom ``properties``; lists ``POST
/api/lists``, ``GET /api/lists``; membership
``POST``/``DELETE /api/lists/{id}/relationships/profiles`` with at most 1,000 profiles
(204, idempotent); ``GET /api/profiles?filter=any(email,[…])`` with consent in
``subscriptions.email.marketing.consent`` when
``additional-fields[profile]=subscriptions`` is asked for; cursor pagination
(``page[size]`` default 20, at most 100, ``links.next``); per-account, per-endpoint
fixed-window rate limits with a burst (1 s) and a steady (1 min) window as each
endpoint publishes them — 10/s, 150/min for import jobs, list creation (and at most 150
lists a day) and memberships; 75/s, 750/min for ``GET /api/profiles``, ``GET /api/lists``
(10 per page, ``filter=equals(name,"…")``) and bulk unsubscribe; 3/s, 60/min for GDPR
erase ``POST /api/data-privacy-deletion-jobs`` (202);
Bulk Unsubscribe Profiles ``POST /api/profile-subscription-bulk-delete-jobs`` (≤ 100
profiles, each with ``subscriptions.email.marketing.consent: UNSUBSCRIBED``; 202; a
missing profile is created unsubscribed; without a list the unsubscribe is global) —
answered 429 with ``Retry-After`` and ``RateLimit-*`` headers; other responses carry the
steady window's ``RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` (see
sandboxes/VERIFIED.md).
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

from segwise.sync.sandboxes.common import install_common, persist, schedule_erasure

# revisions are supported for two years (stable one year, deprecated the next), then
# retired (developers.klaviyo.com/en/docs/api_versioning_and_deprecation_policy); the
# current SDK, klaviyo-api 25, targets 2026-10-15
REVISIONS = {"2025-01-15", "2025-04-15", "2025-07-15", "2025-10-15", "2026-01-15",
             "2026-04-15", "2026-07-15", "2026-10-15"}
RETIRED = re.compile(r"\A20(2[2-4])-\d\d-15(\.pre)?\Z")
MAX_IMPORT = 10_000
MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_RELATIONSHIPS = 1_000
PAGE_DEFAULT, PAGE_MAX = 20, 100
LISTS_PAGE = 10  # GET /api/lists: page[size] default 10, at most 10 (klaviyo-api get_lists)
# per account and endpoint: (requests, seconds) of the burst and the steady window, as
# each endpoint's reference publishes them; everything else segwise calls: 10/s, 150/min
DEFAULT_LIMITS = ((10, 1.0), (150, 60.0))
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
JSONAPI = "application/vnd.api+json"
ENDPOINT_LIMITS = {"GET /api/profiles": ((75, 1.0), (750, 60.0)),
                   "GET /api/lists": ((75, 1.0), (750, 60.0)),
                   "POST /api/profile-subscription-bulk-delete-jobs": ((75, 1.0), (750, 60.0)),
                   "POST /api/data-privacy-deletion-jobs": ((3, 1.0), (60, 60.0))}
MAX_UNSUBSCRIBE = 100
MAX_LISTS_PER_DAY = 150  # POST /api/lists: 150 per day (klaviyo-api create_list)


def endpoint_key(method: str, path: str) -> str:
    """Rate limits apply per endpoint: the resource id after the collection is folded."""
    return f"{method} " + re.sub(r"^(/api/[a-z-]+/)[^/]+", r"\1{id}", path.rstrip("/"))


def error(status: int, code: str, title: str, detail: str, pointer: str = "/data"
          ) -> JSONResponse:
    return JSONResponse({"errors": [{"id": str(uuid.uuid4()), "status": status, "code": code,
                                     "title": title, "detail": detail,
                                     "source": {"pointer": pointer}}]},
                        status_code=status, media_type=JSONAPI)


def rate_limited(retry_after: int = 1, limit: int = 10) -> JSONResponse:
    resp = error(429, "throttled", "Request was throttled.",
                 f"Request was throttled. Expected available in {retry_after} second.")
    resp.headers.update({"Retry-After": str(retry_after), "RateLimit-Limit": str(limit),
                         "RateLimit-Remaining": "0", "RateLimit-Reset": str(retry_after)})
    return resp


@dataclass
class KlaviyoState:
    api_key: str
    profiles: dict[str, dict] = field(default_factory=dict)  # id -> profile
    by_email: dict[str, str] = field(default_factory=dict)
    lists: dict[str, dict] = field(default_factory=dict)  # id -> {name, members:set}
    jobs: dict[str, dict] = field(default_factory=dict)
    # (endpoint, window seconds) -> [window start, requests counted in it]
    windows: dict[tuple[str, float], list[float]] = field(default_factory=dict)
    lists_created_today: int = 0
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def profile_for(self, email: str, attrs: dict) -> dict:
        key = email.strip().lower()
        pid = self.by_email.get(key)
        if pid is None:
            pid = f"01K{next(self.ids):020d}"
            self.by_email[key] = pid
            self.profiles[pid] = {"id": pid, "email": key, "consent": "NEVER_SUBSCRIBED",
                                  "suppressed": False, "attributes": {}}
        profile = self.profiles[pid]
        for key, value in attrs.items():
            if key == "properties" and isinstance(value, dict):  # custom properties merge
                profile["attributes"].setdefault("properties", {}).update(value)
            elif key != "email":
                profile["attributes"][key] = value
        return profile

    def dump(self) -> dict:
        return {"profiles": self.profiles,
                "lists": {lid: {"name": lst["name"], "members": sorted(lst["members"]),
                                "created": lst["created"]}
                          for lid, lst in self.lists.items()}}

    def load(self, data: dict) -> None:
        self.profiles = data["profiles"]
        self.by_email = {p["email"]: pid for pid, p in self.profiles.items()}
        self.lists = {lid: {"name": lst["name"], "members": set(lst["members"]),
                            "created": lst.get("created", now_iso())}
                      for lid, lst in data["lists"].items()}
        self.ids = itertools.count(len(self.profiles) + 1)


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())


def resource(kind: str, rid: str, attributes: dict, request: Request) -> dict:
    """A JSON:API resource object as Klaviyo returns it (``links.self`` is required by
    the SDK's models)."""
    return {"type": kind, "id": rid, "attributes": attributes,
            "links": {"self": f"{str(request.base_url).rstrip('/')}/api/{kind}s/{rid}/"}}


def _profile_json(p: dict, subscriptions: bool = False) -> dict:
    """A profile resource; ``subscriptions`` only when asked for with
    ``additional-fields[profile]=subscriptions`` (as the real API does)."""
    attrs = {"email": p["email"], **p["attributes"]}
    if subscriptions:
        # nullable in the SDK's model: a profile with no email marketing record has none
        attrs["subscriptions"] = {"email": {"marketing": None if p["consent"] is None else {
            "consent": p["consent"], "can_receive_email_marketing":
            p["consent"] == "SUBSCRIBED" and not p["suppressed"],
            "suppression": [{"reason": "USER_SUPPRESSED", "timestamp": now_iso()}]
            if p["suppressed"] else []}}}
    return {"type": "profile", "id": p["id"], "attributes": attrs,
            "links": {"self": f"/api/profiles/{p['id']}/"}}


def _page(request: Request, items: list, default: int = PAGE_DEFAULT,
          largest: int = PAGE_MAX) -> JSONResponse:
    """Cursor pagination as the JSON:API endpoints do it: ``page[size]`` (default 20, at
    most 100; lists 10 and 10), ``page[cursor]``, and ``links.next`` (an absolute URL)
    while more remain."""
    try:
        size = int(request.query_params.get("page[size]", default))
        start = int(request.query_params.get("page[cursor]", "0"))
    except ValueError:
        size, start = -1, 0
    if not 1 <= size <= largest:
        return error(400, "invalid", "Invalid input.", f"page[size] must be between 1 and "
                     f"{largest}.", "/page[size]")
    links = {"self": str(request.url), "next": None}
    if start + size < len(items):
        links["next"] = str(request.url.include_query_params(**{"page[cursor]": start + size}))
    return JSONResponse({"data": items[start:start + size], "links": links},
                        media_type=JSONAPI)


def _wants_subscriptions(request: Request) -> bool:
    return "subscriptions" in request.query_params.get("additional-fields[profile]", "")


def create_app(api_key: str, state_file=None) -> FastAPI:
    app = FastAPI(title="Klaviyo sandbox")
    state = KlaviyoState(api_key=api_key)
    persist(app, state, state_file)
    install_common(app, state, rate_limited=rate_limited,
                   server_error=lambda: error(503, "service_unavailable",
                                              "Service Unavailable", "Try again later."))

    @app.middleware("http")
    async def auth_revision_and_rate(request: Request, call_next):
        if request.url.path.startswith("/_sandbox"):
            return await call_next(request)
        if request.headers.get("authorization") != f"Klaviyo-API-Key {state.api_key}":
            return error(401, "not_authenticated", "Authentication credentials were not "
                         "provided.", "Missing or invalid private key.")
        revision = request.headers.get("revision")
        if revision and RETIRED.match(revision):
            return error(410, "gone", "Gone.", f"Revision {revision} is retired.",
                         "/headers/revision")
        if revision not in REVISIONS:
            return error(400, "invalid", "Invalid input.", f"Invalid revision '{revision}'.",
                         "/headers/revision")
        endpoint = endpoint_key(request.method, request.url.path)
        now = time.monotonic()
        counters = []
        for limit, seconds in ENDPOINT_LIMITS.get(endpoint, DEFAULT_LIMITS):
            counter = state.windows.setdefault((endpoint, seconds), [now, 0])
            if now - counter[0] >= seconds:  # a new fixed window starts
                counter[:] = [now, 0]
            if counter[1] >= limit:
                return rate_limited(max(1, math.ceil(seconds - (now - counter[0]))), limit)
            counters.append((limit, seconds, counter))
        for _, _, counter in counters:
            counter[1] += 1
        response = await call_next(request)
        limit, seconds, steady = counters[-1]
        response.headers.update({
            "RateLimit-Limit": str(limit), "RateLimit-Remaining": str(int(limit - steady[1])),
            "RateLimit-Reset": str(max(0, math.ceil(seconds - (now - steady[0]))))})
        return response

    @app.post("/api/profile-bulk-import-jobs")
    async def bulk_import(request: Request):
        raw = await request.body()
        if len(raw) > MAX_IMPORT_BYTES:
            return error(413, "payload_too_large", "Payload too large.",
                         "The payload must be at most 5 MB.")
        body = json.loads(raw)
        try:
            profiles = body["data"]["attributes"]["profiles"]["data"]
        except (KeyError, TypeError):
            return error(400, "invalid", "Invalid input.", "Missing profiles.",
                         "/data/attributes/profiles/data")
        if len(profiles) > MAX_IMPORT:
            return error(400, "invalid", "Invalid input.", f"A job can have at most "
                         f"{MAX_IMPORT} profiles.", "/data/attributes/profiles/data")
        job_id = uuid.uuid4().hex[:20]
        state.jobs[job_id] = {"profiles": profiles, "polls": 0, "status": "queued",
                              "errors": [], "profile_ids": [], "created_at": now_iso()}
        return JSONResponse({"data": _job_json(job_id, request)}, status_code=202,
                            media_type=JSONAPI)

    def _job_json(job_id: str, request: Request) -> dict:
        job = state.jobs[job_id]
        attrs = {"status": job["status"], "created_at": job["created_at"],
                 "total_count": len(job["profiles"]),
                 "completed_count": len(job["profile_ids"]),
                 "failed_count": len(job["errors"])}
        return resource("profile-bulk-import-job", job_id, attrs, request)

    def _advance(job: dict) -> None:
        job["polls"] += 1
        if job["status"] == "queued":
            job["status"] = "processing"
            return
        if job["status"] == "processing" and state.faults.fail_jobs_next > 0:
            state.faults.fail_jobs_next -= 1
            job["status"] = "cancelled"
            return
        if job["status"] == "processing":
            for i, p in enumerate(job["profiles"]):
                attrs = p.get("attributes", {})
                email = str(attrs.get("email", "")).strip()
                if not EMAIL_RE.match(email):
                    # original_payload is nullable (the SDK's model): the pointer says
                    # which profile of the job failed
                    payload = None if state.faults.drop_payloads else attrs
                    job["errors"].append({"type": "import-error", "id": f"e{i}",
                                          "attributes": {"code": "invalid", "title":
                                                         "Invalid email", "detail":
                                                         f"{email!r} is not a valid email.",
                                                         "source": {"pointer": "/data/"
                                                                    "attributes/profiles/"
                                                                    f"data/{i}"},
                                                         "original_payload": payload}})
                    continue
                job["profile_ids"].append(state.profile_for(email, attrs)["id"])
            job["status"] = "complete"

    @app.get("/api/profile-bulk-import-jobs/{job_id}")
    async def job_status(job_id: str, request: Request):
        job = state.jobs.get(job_id)
        if job is None:
            return error(404, "not_found", "Not found.", f"Job {job_id} not found.")
        _advance(job)
        return JSONResponse({"data": _job_json(job_id, request)}, media_type=JSONAPI)

    @app.get("/api/profile-bulk-import-jobs/{job_id}/import-errors")
    async def job_errors(job_id: str, request: Request):
        job = state.jobs.get(job_id)
        if job is None:
            return error(404, "not_found", "Not found.", f"Job {job_id} not found.")
        return _page(request, job["errors"])

    @app.get("/api/profile-bulk-import-jobs/{job_id}/profiles")
    async def job_profiles(job_id: str, request: Request):
        job = state.jobs.get(job_id)
        if job is None:
            return error(404, "not_found", "Not found.", f"Job {job_id} not found.")
        subs = _wants_subscriptions(request)
        return _page(request, [_profile_json(state.profiles[pid], subs)
                               for pid in job["profile_ids"]])

    @app.get("/api/profiles")
    async def get_profiles(request: Request):
        flt = request.query_params.get("filter", "")
        m = re.fullmatch(r'any\(email,\[(.*)\]\)', flt) or re.fullmatch(
            r'equals\(email,(".*")\)', flt)
        if not m:
            return error(400, "invalid", "Invalid input.", f"Unsupported filter {flt!r}.",
                         "/filter")
        emails = [e.strip().strip('"').lower() for e in m.group(1).split(",") if e.strip()]
        if len(emails) > 100:
            return error(400, "invalid", "Invalid input.", "any() takes at most 100 values.",
                         "/filter")
        subs = _wants_subscriptions(request)
        return _page(request, [_profile_json(state.profiles[state.by_email[e]], subs)
                               for e in emails if e in state.by_email])

    def _list_json(lid: str, request: Request) -> dict:
        lst = state.lists[lid]
        return resource("list", lid, {"name": lst["name"], "created": lst["created"],
                                      "updated": lst["created"],
                                      "opt_in_process": "single_opt_in"}, request)

    @app.get("/api/lists")
    async def get_lists(request: Request):
        """10 per page at most; ``filter=equals(name,"…")`` / ``any(name,[…])``."""
        flt = request.query_params.get("filter")
        lists = list(state.lists)
        if flt is not None:
            m = re.fullmatch(r'equals\(name,"((?:[^"\\]|\\.)*)"\)', flt) or re.fullmatch(
                r'any\(name,\[(.*)\]\)', flt)
            if not m:
                return error(400, "invalid", "Invalid input.", f"Unsupported filter {flt!r}.",
                             "/filter")
            if flt.startswith("equals"):
                names = {m.group(1).replace('\\"', '"').replace("\\\\", "\\")}
            else:
                names = {n.strip().strip('"') for n in m.group(1).split(",")}
            lists = [lid for lid in lists if state.lists[lid]["name"] in names]
        return _page(request, [_list_json(lid, request) for lid in lists], LISTS_PAGE,
                     LISTS_PAGE)

    @app.post("/api/lists")
    async def create_list(body: dict, request: Request):
        data = body.get("data") or {}
        name = (data.get("attributes") or {}).get("name")
        if data.get("type") != "list" or not isinstance(name, str) or not name:
            return error(400, "invalid", "Invalid input.", "type list and a name are "
                         "required.", "/data/attributes/name")
        state.lists_created_today += 1
        if state.lists_created_today > MAX_LISTS_PER_DAY:
            return rate_limited(3600, MAX_LISTS_PER_DAY)
        lid = uuid.uuid4().hex[:6].upper()
        state.lists[lid] = {"name": name, "members": set(), "created": now_iso()}
        return JSONResponse({"data": _list_json(lid, request)}, status_code=201,
                            media_type=JSONAPI)

    async def _relationship(list_id: str, request: Request, add: bool):
        lst = state.lists.get(list_id)
        if lst is None:
            return error(404, "not_found", "Not found.", f"List {list_id} not found.")
        body = json.loads(await request.body() or b"{}")
        data = body.get("data")
        if not isinstance(data, list):
            return error(400, "invalid", "Invalid input.", "data must be a list.")
        if len(data) > MAX_RELATIONSHIPS:
            return error(400, "invalid", "Invalid input.", f"At most {MAX_RELATIONSHIPS} "
                         "profiles per request.")
        for item in data:
            pid = item.get("id")
            if item.get("type") != "profile" or pid not in state.profiles:
                return error(400, "invalid", "Invalid input.", f"Profile {pid} not found.",
                             "/data/id")
        for item in data:
            (lst["members"].add if add else lst["members"].discard)(item["id"])
        return Response(status_code=204)

    @app.post("/api/lists/{list_id}/relationships/profiles")
    async def add_profiles(list_id: str, request: Request):
        return await _relationship(list_id, request, add=True)

    @app.delete("/api/lists/{list_id}/relationships/profiles")
    async def remove_profiles(list_id: str, request: Request):
        return await _relationship(list_id, request, add=False)

    @app.post("/api/data-privacy-deletion-jobs")
    async def deletion_job(request: Request):
        """GDPR erase by email, phone_number or profile id: 202; the profile and its list
        memberships are deleted asynchronously (after ``erasure_delay_ms``)."""
        body = json.loads(await request.body() or b"{}")
        try:
            profile = body["data"]["attributes"]["profile"]["data"]
        except (KeyError, TypeError):
            return error(400, "invalid", "Invalid input.", "A profile is required.",
                         "/data/attributes/profile")
        attrs = profile.get("attributes") or {}
        pid = profile.get("id") or state.by_email.get(str(attrs.get("email", "")).lower())

        def delete() -> None:
            if pid and pid in state.profiles:
                email = state.profiles.pop(pid)["email"]
                state.by_email.pop(email, None)
                for lst in state.lists.values():
                    lst["members"].discard(pid)

        schedule_erasure(state, delete)  # Klaviyo deletes asynchronously
        return Response(status_code=202)

    @app.post("/api/profile-subscription-bulk-delete-jobs")
    async def bulk_unsubscribe(request: Request):
        body = json.loads(await request.body() or b"{}")
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or data.get("type") != "profile-subscription-bulk-delete-job":
            return error(400, "invalid", "Invalid input.", "data.type must be "
                         "'profile-subscription-bulk-delete-job'.", "/data/type")
        try:
            profiles = data["attributes"]["profiles"]["data"]
        except (KeyError, TypeError):
            return error(400, "invalid", "Invalid input.", "Missing profiles.",
                         "/data/attributes/profiles/data")
        if not isinstance(profiles, list) or not 1 <= len(profiles) <= MAX_UNSUBSCRIBE:
            return error(400, "invalid", "Invalid input.", f"Between 1 and {MAX_UNSUBSCRIBE} "
                         "profiles per request.", "/data/attributes/profiles/data")
        emails = []
        for i, item in enumerate(profiles):
            attrs = item.get("attributes") if isinstance(item, dict) else None
            pointer = f"/data/attributes/profiles/data/{i}"
            if item.get("type") != "profile" or not isinstance(attrs, dict):
                return error(400, "invalid", "Invalid input.", "type must be 'profile'.",
                             pointer + "/type")
            subs = attrs.get("subscriptions")
            consent = (((subs or {}).get("email") or {}).get("marketing") or {}).get("consent")
            if subs is None:
                return error(400, "invalid", "Invalid input.", "subscriptions is required.",
                             pointer + "/attributes/subscriptions")
            if consent != "UNSUBSCRIBED":
                return error(400, "invalid", "Invalid input.", "consent must be "
                             "'UNSUBSCRIBED'.", pointer + "/attributes/subscriptions/email")
            email = str(attrs.get("email") or "").strip()
            if not EMAIL_RE.match(email):
                return error(400, "invalid", "Invalid input.", "A valid email is required.",
                             pointer + "/attributes/email")
            emails.append(email)
        list_id = (((data.get("relationships") or {}).get("list") or {}).get("data") or {}).get("id")
        for email in emails:
            p = state.profile_for(email, {})
            p["consent"] = "UNSUBSCRIBED"
            if list_id in state.lists:
                state.lists[list_id]["members"].discard(p["id"])
        return Response(status_code=202)

    # ---- sandbox-only
    @app.post("/_sandbox/lists")
    async def seed_list(body: dict):
        """A list someone else made in the account."""
        lid = uuid.uuid4().hex[:6].upper()
        state.lists[lid] = {"name": body["name"], "members": set(), "created": now_iso()}
        return {"id": lid}

    @app.post("/_sandbox/profiles")
    async def seed_profile(body: dict):
        p = state.profile_for(body["email"], {})
        p["consent"] = body.get("consent", p["consent"])
        p["suppressed"] = bool(body.get("suppressed", False))
        return p

    @app.get("/_sandbox/state")
    async def dump_state():
        return {"profiles": {p["email"]: {"consent": p["consent"],
                                          "suppressed": p["suppressed"]}
                             for p in state.profiles.values()},
                "lists": {lst["name"]: sorted(state.profiles[pid]["email"]
                                            for pid in lst["members"])
                          for lst in state.lists.values()}}

    return app
