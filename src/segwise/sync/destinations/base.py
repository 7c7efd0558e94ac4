"""The small interface every ESP adapter implements, and the HTTP plumbing they share.

Provider differences (identity keys, batch limits, async jobs, status rules) stay inside
each adapter. HTTP is httpx; retries are tenacity (exponential backoff with jitter,
honouring ``Retry-After`` or SendGrid's ``X-RateLimit-Reset``) on 429, 5xx and transport
errors — every request an adapter sends is idempotent, so a retry can never duplicate an
operation.

Concurrency is bounded per provider: an adapter declares how many requests it may have in
flight (``max_concurrency``, e.g. Mailchimp's 10 simultaneous connections) and the
provider's published request-rate windows (``rate_limits``, e.g. HubSpot's 100 per 10 s),
which a client-side limiter paces so a well-behaved sync does not provoke 429s at all.
An adapter is safe to share between the sync engine's worker threads.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)


@dataclass(frozen=True)
class Contact:
    """A member as segwise sends it: provider-neutral field names (``first_name``,
    ``last_name``); each adapter maps them to its provider's (Mailchimp FNAME / LNAME,
    HubSpot firstname / lastname, …)."""

    customer_id: str
    email: str
    fields: dict = field(default_factory=dict, hash=False, compare=False)
    # personal fields the segment declares (trait name -> value; None: no value, not sent)
    traits: dict = field(default_factory=dict, hash=False, compare=False)


def present(value) -> bool:
    """Does segwise have a value to send? None and blank text are absent: providers blank a
    field sent as an empty string, so an absent value is never sent."""
    return value is not None and str(value).strip() != ""


@dataclass
class MemberResult:
    email: str
    ok: bool
    error: str | None = None
    remote_status: str | None = None  # e.g. 'unsubscribed' discovered on the ESP side


@dataclass
class ErasureResult:
    """One address erased (or not) at one destination: the receipt's content."""
    email: str
    status: str  # erased | accepted (an async deletion job took it) | not_found | failed
    reference: str | None = None  # the provider's job id, when it gives one
    detail: str | None = None


@dataclass
class HttpStats:
    requests: int = 0
    writes: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    throttled_s: float = 0.0  # time the client-side limiter held requests back
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: float) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def snapshot(self) -> dict[str, float]:
        with self.lock:
            return {"requests": self.requests, "writes": self.writes,
                    "rate_limited": self.rate_limited, "server_errors": self.server_errors,
                    "throttled_s": self.throttled_s}


class RateLimiter:
    """Client-side pacing over sliding windows: at most ``limit`` requests in any
    ``window`` seconds (plus 2 % slack for the trip to the server), for every
    (limit, window) pair, per key (e.g. per endpoint).
    Thread-safe; ``acquire`` blocks until a request may be sent and returns the wait."""

    def __init__(self, windows: tuple[tuple[int, float], ...]) -> None:
        self.windows = tuple(windows)
        self._sent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str = "",
                windows: tuple[tuple[int, float], ...] | None = None) -> float:
        """Wait for a slot under ``windows`` (default: the limiter's) for ``key``."""
        windows = self.windows if windows is None else windows
        if not windows:
            return 0.0
        # a little slack: requests reach the server a few ms after they leave
        padded = [(limit, window + max(0.02, 0.02 * window)) for limit, window in windows]
        horizon = max(window for _, window in padded)
        waited = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                sent = self._sent.setdefault(key, deque())
                while sent and now - sent[0] >= horizon:
                    sent.popleft()
                pause = 0.0
                for limit, window in padded:
                    inside = [t for t in sent if now - t < window] if len(sent) >= limit else []
                    if len(inside) >= limit:  # wait until the oldest one leaves the window
                        pause = max(pause, window - (now - inside[-limit]))
                if pause <= 0:
                    sent.append(now)
                    return waited
            time.sleep(pause)
            waited += pause


class RetryableHTTPError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, (RetryableHTTPError, httpx.TransportError))


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, RetryableHTTPError):
        header = exc.response.headers.get("retry-after")
        if header:
            try:
                return min(float(header), 60.0)
            except ValueError:
                pass
        reset = exc.response.headers.get("x-ratelimit-reset")  # SendGrid: epoch seconds
        if reset:
            try:
                return min(max(float(reset) - time.time(), 0.05), 60.0)
            except ValueError:
                pass
    return wait_random_exponential(multiplier=0.05, max=5)(state)


class Destination(ABC):
    """The one protocol every destination implements — the ESP adapters, the webhook, the
    file export and the ad-audience export. The sync engine (``segwise.sync.engine``)
    plans from the activation feed and the one ledger, runs the guards, and drives a
    destination only through these calls; what a destination does with them (HTTP to an
    ESP, rows into a file) is its own business."""

    name: str
    max_batch: int
    max_concurrency: int = 4  # calls in flight at once (the provider's own cap, if any)
    # a destination that only makes sense in one mode (a file is the whole list: mirror)
    fixed_mode: str | None = None

    def __init__(self, batch_size: int | None = None, concurrency: int | None = None,
                 account: str = "") -> None:
        if batch_size is not None and not 1 <= batch_size <= self.max_batch:
            raise ValueError(f"{self.name}: batch_size must be 1..{self.max_batch}")
        if concurrency is not None and not 1 <= concurrency <= self.max_concurrency:
            raise ValueError(f"{self.name}: concurrency must be 1..{self.max_concurrency}")
        self.batch_size = batch_size or self.max_batch
        self.concurrency = concurrency or self.max_concurrency
        # which account / audience of the provider this adapter writes to (never a
        # secret): part of the ledger's destination key
        self.account = account
        self.stats = HttpStats()

    @property
    def ledger_name(self) -> str:
        """The destination as the ledger and audit tables name it: ``mailchimp:<list>``,
        ``klaviyo`` (or ``klaviyo:<account>``), ``file``. Pointing segwise at another
        audience or account starts a fresh ledger instead of believing the new one already
        holds everybody."""
        return f"{self.name}:{self.account}" if self.account else self.name

    def prepare(self, list_name: str) -> None:  # noqa: B027 (optional hook)
        """Called once before a segment's batches run in parallel."""

    def prepare_fields(self, fields: dict[str, str]) -> None:  # noqa: B027 (optional hook)
        """Called once before batches carrying personal fields (trait name -> kind:
        string, numeric, boolean or temporal): create the provider's merge fields /
        properties that do not exist yet."""

    @abstractmethod
    def upsert_contacts(self, contacts: list[Contact]) -> list[MemberResult]:
        """Create or update contacts; never change an existing contact's subscription."""

    def update_contacts(self, contacts: list[Contact]) -> list[MemberResult]:
        """Send the changed fields of members the list already holds (by default the
        upsert; a provider whose upsert happens with the list add overrides it)."""
        return self.upsert_contacts(contacts)

    @abstractmethod
    def add_to_list(self, list_name: str, contacts: list[Contact]) -> list[MemberResult]: ...

    @abstractmethod
    def remove_from_list(self, list_name: str, contacts: list[Contact]) -> list[MemberResult]:
        """Leaving a segment only leaves the list: it never unsubscribes."""

    def unsubscribe(self, contacts: list[Contact]) -> list[MemberResult]:
        """Consent withdrawn: unsubscribe each contact from marketing email at the provider,
        through its own API (not only leave a list). At most ``unsubscribe_batch`` per call;
        ``remote_status`` is ``unsubscribed`` for each one the provider took."""
        raise NotImplementedError(f"{self.name} has no unsubscribe call")

    @property
    def unsubscribe_batch(self) -> int:
        return self.batch_size

    # a destination that writes the whole list (a file) gets it after each sync
    wants_members: bool = False

    def finish(self, list_name: str, members) -> list:
        """After a segment's changes went through: ``members`` (a DataFrame of the list's
        current members, only when ``wants_members``). Returns what was written."""
        return []

    def erase(self, emails: list[str]) -> list[ErasureResult]:
        """GDPR erasure: delete each address from the provider for good."""
        raise NotImplementedError(f"{self.name} has no erasure call")

    def confirm_erased(self, emails: list[str]) -> set[str]:
        """Which of ``emails`` the provider no longer holds. Providers that erase at once
        need no confirmation; those that erase asynchronously look the address up."""
        return set(emails)

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release connections (HTTP destinations)."""


class HttpDestination(Destination):
    """Base for ESP adapters: a client with auth, retries and request accounting."""

    rate_limits: tuple[tuple[int, float], ...] = ()  # (requests, seconds) windows

    def __init__(self, base_url: str, max_attempts: int = 8, timeout: float = 30.0,
                 batch_size: int | None = None, concurrency: int | None = None,
                 rate_limits: tuple[tuple[int, float], ...] | None = None,
                 account: str = "") -> None:
        super().__init__(batch_size, concurrency, account)
        self.base_url = base_url.rstrip("/")
        self.max_attempts = max_attempts
        if rate_limits is not None:  # e.g. HubSpot Pro/Enterprise: ((190, 10.0),)
            self.rate_limits = tuple(rate_limits)
        self.limiter = RateLimiter(self.rate_limits)
        self._lists_lock = threading.Lock()
        limits = httpx.Limits(max_connections=self.concurrency,
                              max_keepalive_connections=self.concurrency)
        self.client = httpx.Client(base_url=self.base_url, timeout=timeout, limits=limits,
                                   headers=self.auth_headers(), auth=self.auth())

    def __repr__(self) -> str:  # never show credentials
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def auth_headers(self) -> dict[str, str]:
        return {}

    def auth(self) -> httpx.Auth | None:
        return None

    def lasting_rate_limit(self, response: httpx.Response) -> str | None:
        """Why a 429 will not pass with a retry (a daily cap), or None: it will."""
        return None

    def rate_key(self, method: str, path: str) -> str:
        """Which rate-limit bucket a request counts against (one per account by default)."""
        return ""

    def rate_limits_for(self, key: str) -> tuple[tuple[int, float], ...]:
        """The windows of one bucket (the same for all by default; Klaviyo tiers differ)."""
        return self.rate_limits

    def request(self, method: str, path: str, idempotent: bool = True,
                **kwargs) -> httpx.Response:
        """Send a request, retrying 429 / 5xx / transport errors. A request that is not
        idempotent (creating a list) is sent once: see ``create_once``."""
        key = self.rate_key(method, path)
        attempts = self.max_attempts if idempotent else 1

        @retry(retry=retry_if_exception(_retryable), wait=_wait,
               stop=stop_after_attempt(attempts), reraise=True)
        def send() -> httpx.Response:
            waited = self.limiter.acquire(key, self.rate_limits_for(key))
            self.stats.add(requests=1, throttled_s=waited,
                           writes=int(method in ("POST", "PUT", "PATCH", "DELETE")))
            response = self.client.request(method, path, **kwargs)
            if response.status_code == 429:
                self.stats.add(rate_limited=1)
                refusal = self.lasting_rate_limit(response)
                if refusal:  # e.g. a daily cap: no retry can help before it resets
                    raise DestinationError(refusal)
                raise RetryableHTTPError(response)
            if response.status_code >= 500:
                self.stats.add(server_errors=1)
                raise RetryableHTTPError(response)
            return response

        try:
            return send()
        except RetryableHTTPError as exc:
            raise DestinationError(f"{self.name} {method} {path}: gave up after "
                                   f"{attempts} attempt(s) (last HTTP "
                                   f"{exc.response.status_code})") from None
        except httpx.TransportError as exc:
            raise DestinationError(f"{self.name} {method} {path}: gave up after "
                                   f"{attempts} attempt(s) ({type(exc).__name__})"
                                   ) from None

    def create_once(self, find: Callable[[], str | int | None],
                    create: Callable[[], str | int], known_missing: bool = False
                    ) -> str | int:
        """Get-or-create for a resource whose create call is not idempotent (a second
        POST would make a duplicate list, or fail with "already exists"): look it up; if
        it is missing, create it with a single request; if that request's outcome is
        unknown (dropped connection, 5xx, 429, a conflict), look again before retrying.
        ``known_missing``: the caller has just looked (the first lookup is skipped)."""
        for attempt in range(self.max_attempts):
            found = None if known_missing and attempt == 0 else find()
            if found is not None:
                return found
            try:
                return create()
            except DestinationError:
                if attempt == self.max_attempts - 1:
                    raise
                time.sleep(min(0.1 * 2 ** attempt, 5.0))
        raise AssertionError("unreachable")

    def wait_for_job(self, path: str, status_of: Callable[[dict], str],
                     done: str | tuple[str, ...], failed: tuple[str, ...],
                     poll_interval: float, timeout: float) -> dict:
        """Poll an asynchronous job at ``path`` until it reaches a ``done`` state and
        return its last body; raise on a failed state or when it is still running after
        ``timeout`` seconds."""
        done = (done,) if isinstance(done, str) else done
        deadline = time.monotonic() + timeout
        while True:
            response = self.request("GET", path)
            if response.status_code >= 400:
                raise DestinationError(f"{self.name} GET {path}: {response.status_code}")
            body = response.json()
            status = status_of(body)
            if status in done:
                return body
            if status in failed:
                raise DestinationError(f"{self.name} job {path} {status}")
            if time.monotonic() > deadline:
                raise DestinationError(f"{self.name} job {path} still {status}")
            time.sleep(poll_interval)

    def same_host_path(self, url: str) -> str:
        """A link the provider returned (a next page) as a path on its own host, so it
        is sent with this client, its credentials and its endpoint's rate limit; a link to
        another host is refused — the API key never leaves for it."""
        base, link = urlsplit(self.base_url), urlsplit(url)
        if link.scheme and (link.scheme, link.netloc) != (base.scheme, base.netloc):
            raise DestinationError(f"{self.name}: refusing to follow a link to another host "
                                   f"({link.netloc})")
        path = link.path
        if base.path and path.startswith(base.path):
            path = path[len(base.path):]
        return path + (f"?{link.query}" if link.query else "")

    def close(self) -> None:
        self.client.close()

    def prepare(self, list_name: str) -> None:
        """Resolve (or create) the destination list once, before batches run in parallel,
        so concurrent workers never race to create it twice."""
        with self._lists_lock:
            self._list_id(list_name)

    def _list_id(self, list_name: str):  # adapters with list ids override this
        return list_name

    def _erase_each(self, emails: list[str], call: Callable[[str], httpx.Response],
                    done: str = "erased") -> list[ErasureResult]:
        """Erase one address per request: 2xx → ``done``, 404 → not_found, else failed."""
        out = []
        for email in emails:
            try:
                r = call(email)
            except DestinationError as exc:
                out.append(ErasureResult(email, "failed", None, str(exc)))
                continue
            if r.status_code < 300:
                out.append(ErasureResult(email, done))
            elif r.status_code == 404:
                out.append(ErasureResult(email, "not_found"))
            else:
                out.append(ErasureResult(email, "failed", None,
                                         f"HTTP {r.status_code}: {r.text[:300]}"))
        return out


class DestinationError(RuntimeError):
    """A request the provider refused as a whole (not a per-member rejection)."""
