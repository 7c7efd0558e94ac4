"""The small interface every ESP adapter implements, and the HTTP plumbing they share.

Provider differences (identity keys, batch limits, async jobs, status rules) stay inside
each adapter. HTTP is httpx; retries are tenacity (exponential backoff with jitter,
honouring ``Retry-After``) on 429, 5xx and transport errors — every request an adapter
sends is idempotent, so a retry can never duplicate an operation.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

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
    customer_id: str
    email: str
    fields: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass
class MemberResult:
    email: str
    ok: bool
    error: str | None = None
    remote_status: str | None = None  # e.g. 'unsubscribed' discovered on the ESP side


@dataclass
class HttpStats:
    requests: int = 0
    writes: int = 0
    rate_limited: int = 0
    server_errors: int = 0


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
    return wait_random_exponential(multiplier=0.05, max=5)(state)


class HttpDestination(ABC):
    """Base for ESP adapters: a client with auth, retries and request accounting."""

    name: str
    max_batch: int

    def __init__(self, base_url: str, max_attempts: int = 8, timeout: float = 30.0,
                 batch_size: int | None = None) -> None:
        if batch_size is not None and not 1 <= batch_size <= self.max_batch:
            raise ValueError(f"{self.name}: batch_size must be 1..{self.max_batch}")
        self.batch_size = batch_size or self.max_batch
        self.base_url = base_url.rstrip("/")
        self.stats = HttpStats()
        self.max_attempts = max_attempts
        self.client = httpx.Client(base_url=self.base_url, timeout=timeout,
                                   headers=self.auth_headers(), auth=self.auth())

    def __repr__(self) -> str:  # never show credentials
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def auth_headers(self) -> dict[str, str]:
        return {}

    def auth(self) -> httpx.Auth | None:
        return None

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        @retry(retry=retry_if_exception(_retryable), wait=_wait,
               stop=stop_after_attempt(self.max_attempts), reraise=True)
        def send() -> httpx.Response:
            self.stats.requests += 1
            if method in ("POST", "PUT", "PATCH", "DELETE"):
                self.stats.writes += 1
            response = self.client.request(method, path, **kwargs)
            if response.status_code == 429:
                self.stats.rate_limited += 1
                raise RetryableHTTPError(response)
            if response.status_code >= 500:
                self.stats.server_errors += 1
                raise RetryableHTTPError(response)
            return response

        try:
            return send()
        except RetryableHTTPError as exc:
            raise DestinationError(f"{self.name} {method} {path}: gave up after "
                                   f"{self.max_attempts} attempts (last HTTP "
                                   f"{exc.response.status_code})") from None
        except httpx.TransportError as exc:
            raise DestinationError(f"{self.name} {method} {path}: gave up after "
                                   f"{self.max_attempts} attempts ({type(exc).__name__})"
                                   ) from None

    def wait_for_job(self, path: str, status_of: Callable[[dict], str], done: str,
                     failed: tuple[str, ...], poll_interval: float, timeout: float) -> None:
        """Poll an asynchronous job at ``path`` until ``done``; raise on a failed state or
        when it is still running after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.request("GET", path)
            if response.status_code >= 400:
                raise DestinationError(f"{self.name} GET {path}: {response.status_code}")
            status = status_of(response.json())
            if status == done:
                return
            if status in failed:
                raise DestinationError(f"{self.name} job {path} {status}")
            if time.monotonic() > deadline:
                raise DestinationError(f"{self.name} job {path} still {status}")
            time.sleep(poll_interval)

    def close(self) -> None:
        self.client.close()

    @abstractmethod
    def upsert_contacts(self, contacts: list[Contact]) -> list[MemberResult]:
        """Create or update contacts; never change an existing contact's subscription."""

    @abstractmethod
    def add_to_list(self, list_name: str, contacts: list[Contact]) -> list[MemberResult]: ...

    @abstractmethod
    def remove_from_list(self, list_name: str, contacts: list[Contact]) -> list[MemberResult]:
        """Leaving a segment only leaves the list: it never unsubscribes."""


class DestinationError(RuntimeError):
    """A request the provider refused as a whole (not a per-member rejection)."""
