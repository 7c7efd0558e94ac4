"""What every ESP sandbox shares: a request log, fault knobs and a threaded server.

Each provider's sandbox is a FastAPI app that enforces that provider's contract (see
``../shared/specs/esp_api.md``); this module gives them the common parts:

* every request is counted (method, path, whether it writes) so tests can assert
  "0 requests with writes" on a no-op re-sync;
* fault knobs set through ``POST /_sandbox/faults``: ``rate_limit_next`` (a 429 storm of N
  requests with the provider's body and headers), ``error_next`` (N 5xx), ``delay_ms``
  (slow replies), ``drop_next`` (N writes applied, then the connection cut mid-reply),
  ``fail_jobs_next`` (N async jobs end failed), ``html_error_next`` (N 403s with an HTML
  body, as a proxy in front of an API answers), ``drop_payloads`` (Klaviyo import errors
  without their nullable payload);
* ``SandboxServer`` runs an app on a free local port in a background thread.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class Faults:
    rate_limit_next: int = 0
    error_next: int = 0
    delay_ms: int = 0
    drop_next: int = 0  # process the request, then cut the connection mid-reply
    fail_jobs_next: int = 0  # async jobs (Klaviyo, SendGrid) end failed/cancelled
    drop_payloads: bool = False  # Klaviyo import errors without original_payload (nullable)
    # N requests answered 403 with an HTML page (a proxy or firewall in front of the API)
    html_error_next: int = 0
    # asynchronous erasure (Klaviyo deletion jobs, SendGrid contact deletion): the contact
    # disappears this long after the provider accepted the request
    erasure_delay_ms: int = 300


def schedule_erasure(state, apply: Callable[[], None]) -> None:
    """Run ``apply`` once the erasure delay has passed (at the next request after it, or
    when the state is saved): the provider accepted the deletion and performs it later."""
    state.scheduled.append((time.monotonic() + state.faults.erasure_delay_ms / 1000, apply))


def run_due(state, everything: bool = False) -> None:
    now = time.monotonic()
    due = [item for item in state.scheduled if everything or item[0] <= now]
    state.scheduled = [item for item in state.scheduled if item not in due]
    for _, apply in due:
        apply()


class DroppedConnection(Response):
    """Starts a reply, sends a fragment and breaks off: the client sees the connection
    drop after the server has already applied the request (the hard case for retries)."""

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", b"4096")]})
        await send({"type": "http.response.body", "body": b'{"partial', "more_body": True})
        raise ConnectionAbortedError("sandbox fault: connection dropped")


@dataclass
class RequestLog:
    entries: list[tuple[str, str, bool, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    peak_in_flight: int = 0  # the most requests the server was handling at once

    def add(self, method: str, path: str, status: int) -> None:
        with self.lock:
            self.entries.append((method, path, method in WRITE_METHODS, status))

    def summary(self) -> dict:
        with self.lock:
            api = [e for e in self.entries if not e[1].startswith("/_sandbox")]
            return {
                "requests": len(api),
                "writes": sum(1 for e in api if e[2]),
                "rate_limited": sum(1 for e in api if e[3] == 429),
                "client_errors": sum(1 for e in api if 400 <= e[3] < 500 and e[3] != 429),
                "server_errors": sum(1 for e in api if e[3] >= 500),
                "peak_in_flight": self.peak_in_flight,
                "by_path": _count_paths(api),
            }


def _count_paths(entries) -> dict[str, int]:
    out: dict[str, int] = {}
    for method, path, _, _ in entries:
        key = f"{method} {path}"
        out[key] = out.get(key, 0) + 1
    return out


def install_common(app: FastAPI, state, rate_limited: Callable[[], Response],
                   server_error: Callable[[], Response]) -> None:
    """Request logging, fault injection and the /_sandbox admin endpoints."""
    state.faults = Faults()
    state.log = RequestLog()
    state.scheduled = []

    @app.middleware("http")
    async def faults_and_log(request: Request, call_next):
        path = request.url.path
        run_due(state)
        if path.startswith("/_sandbox"):
            return await call_next(request)
        faults: Faults = state.faults
        log: RequestLog = state.log
        log.in_flight += 1  # one event loop: no lock needed between awaits
        log.peak_in_flight = max(log.peak_in_flight, log.in_flight)
        try:
            return await _handle(request, path, faults, call_next)
        finally:
            log.in_flight -= 1

    async def _handle(request: Request, path: str, faults: Faults, call_next):
        if faults.delay_ms:
            await asyncio.sleep(faults.delay_ms / 1000)
        if faults.rate_limit_next > 0:
            faults.rate_limit_next -= 1
            response = rate_limited()
        elif faults.error_next > 0:
            faults.error_next -= 1
            response = server_error()
        elif faults.html_error_next > 0:
            faults.html_error_next -= 1
            response = Response("<html><body><h1>403 Forbidden</h1></body></html>",
                                status_code=403, media_type="text/html")
        else:
            response = await call_next(request)
            if faults.drop_next > 0 and request.method != "GET":
                faults.drop_next -= 1
                state.log.add(request.method, path, 599)
                return DroppedConnection()
        state.log.add(request.method, path, response.status_code)
        return response

    @app.post("/_sandbox/faults")
    async def set_faults(body: dict) -> dict:
        for key, value in body.items():
            if not hasattr(state.faults, key):
                return JSONResponse({"error": f"unknown fault {key}"}, status_code=400)
            setattr(state.faults, key, int(value))
        return state.faults.__dict__

    @app.get("/_sandbox/requests")
    async def requests_summary() -> dict:
        return state.log.summary()

    @app.post("/_sandbox/requests/reset")
    async def reset_requests() -> dict:
        with state.log.lock:
            state.log.entries.clear()
            state.log.peak_in_flight = state.log.in_flight
        return {"ok": True}


def persist(app: FastAPI, state, state_file) -> None:
    """Load ``state`` from ``state_file`` (if it exists) and expose ``app.state.save()``
    to write it back — so a demo destination keeps its contents between runs."""
    import json

    if state_file is not None and state_file.exists():
        state.load(json.loads(state_file.read_text()))

    def save() -> None:
        if getattr(state, "scheduled", None):  # accepted deletions complete eventually
            run_due(state, everything=True)
        if state_file is not None:
            state_file.parent.mkdir(parents=True, exist_ok=True)
            state_file.write_text(json.dumps(state.dump()))

    app.state.sandbox = state
    app.state.save = save


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SandboxServer:
    """Run an ASGI app on 127.0.0.1 in a daemon thread (tests, `make run`)."""

    def __init__(self, app: FastAPI, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="off", limit_concurrency=None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> SandboxServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("sandbox server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
