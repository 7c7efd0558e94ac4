"""A webhook receiver that verifies segwise's signature and keeps list membership."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from segwise.sync.destinations.webhook import verify
from segwise.sync.sandboxes.common import install_common


@dataclass
class WebhookState:
    secret: str
    contacts: dict[str, dict] = field(default_factory=dict)
    lists: dict[str, set[str]] = field(default_factory=dict)
    unsubscribed: set[str] = field(default_factory=set)
    seen_keys: set[str] = field(default_factory=set)
    replays: int = 0


def create_app(secret: str) -> FastAPI:
    app = FastAPI(title="Webhook receiver sandbox")
    state = WebhookState(secret=secret)
    app.state.sandbox = state
    install_common(app, state,
                   rate_limited=lambda: JSONResponse({"error": "slow down"}, status_code=429,
                                                     headers={"Retry-After": "1"}),
                   server_error=lambda: JSONResponse({"error": "oops"}, status_code=500))

    @app.middleware("http")
    async def check_signature(request: Request, call_next):
        if request.url.path.startswith("/_sandbox"):
            return await call_next(request)
        body = await request.body()
        if not verify(state.secret, request.headers.get("x-segwise-signature", ""), body):
            return JSONResponse({"error": "bad signature"}, status_code=401)
        key = request.headers.get("idempotency-key", "")
        if key in state.seen_keys:
            state.replays += 1
        state.seen_keys.add(key)
        return await call_next(request)

    @app.post("/contacts")
    async def contacts(body: dict):
        for c in body["contacts"]:
            state.contacts[c["email"].lower()] = c
        return {"accepted": len(body["contacts"]), "rejected": []}

    @app.post("/lists/{name}/members")
    async def members(name: str, body: dict):
        members = state.lists.setdefault(name, set())
        for e in body.get("add", []):
            members.add(e.lower())
        for e in body.get("remove", []):
            members.discard(e.lower())
        return {"members": len(members)}

    @app.post("/unsubscribes")
    async def unsubscribes(body: dict):
        state.unsubscribed |= {e.lower() for e in body["unsubscribe"]}
        return {"unsubscribed": len(body["unsubscribe"])}

    @app.get("/_sandbox/state")
    async def dump_state():
        return {"lists": {k: sorted(v) for k, v in state.lists.items()},
                "unsubscribed": sorted(state.unsubscribed),
                "contacts": len(state.contacts), "replays": state.replays}

    return app
