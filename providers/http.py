"""Sending an adapter's requests: one ``httpx.AsyncClient`` per feed, done right.

``FeedClient(adapter)`` owns the HTTP side of one configured feed:

* **base URL**: ``adapter.base_url`` (the feed's ``--base-url`` when set, else
  the provider's public root) joined with ``RequestSpec.path``;
* **secrets**: read from ``os.environ[feed.secret_env]`` at send time and put
  where ``adapter.auth(secret)`` says (header or query parameter). A feed that
  names a variable which is unset fails with ``MissingSecret``. The secret is
  never recorded: a ``RawResponse`` carries the request's URL and the adapter's
  own params (never the auth ones), the response headers minus credential
  headers, and any echo of the secret in headers or body is masked as ``***``;
* **timeouts**: an explicit ``httpx.Timeout`` (``DEFAULT_TIMEOUT``) per
  connect and per read, and an overall deadline on the whole ``send`` (every
  attempt and backoff, ``DEFAULT_DEADLINE_S``): a body dripped a byte at a
  time never trips the read timeout, the deadline cuts it (``DeadlineExceeded``);
* **size cap**: the body is streamed and reading stops past the feed's cap
  (``FeedConfig.body_cap``, 10 MiB by default; a larger ``Content-Length`` is
  refused before reading): ``ResponseTooLarge``;
* **throttling is never slept on**: HTTP 429, and any 5xx with ``Retry-After``,
  raise ``Throttled(retry_after_s)`` at once, the wait taken from
  ``Retry-After`` (seconds or an HTTP date) or football-data's
  ``X-RequestCounter-Reset`` (seconds until its per-minute counter resets),
  else ``RetryPolicy.default_pause_s``, capped at ``max_pause_s``. The caller
  pauses the feed (``pipeline.budget.FeedPause``) instead of holding a worker;
* **retries** (tenacity ``AsyncRetrying``, ``RetryPolicy``): connect/read
  errors and timeouts and HTTP 5xx are retried with short exponential backoff
  and jitter, within the deadline. After the last attempt:
  ``ProviderUnavailable``. 401/403 are never retried: ``CredentialsRejected``.
  Other 4xx (and 3xx: redirects are not followed, so credentials never travel
  to another host): ``ProviderHTTPError`` with the status;
* **request budget** (``RequestBudget``): every attempt first takes a slot
  from the per-feed budget shared by all workers (``MemoryBudget`` here,
  ``pipeline.budget.RedisBudget`` across processes). A spent budget raises
  ``BudgetExhausted(retry_after_s)`` at once instead of blocking;
* **unchanged bodies** (``BodyHashCache``): ``poll(spec)`` hashes the body and
  says whether it changed since the last poll of the same request, so callers
  skip parsing what they have already seen;
* **stats** for ``livescore providers check``: last status and latency, the
  provider's own remaining-requests header, the budget left.

Sleeping goes through an injectable ``sleep`` and the wall clock through
``clock`` so tests never really wait. The transport is injectable too
(``httpx.MockTransport``, respx); by default it is the network, or the
adapter's own when it has one (``OwnTransport``: a fixture feed replays its
recording).
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import logging
import math
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol, Self, runtime_checkable
from urllib.parse import urlencode

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from livescore import clock as _clock
from livescore.logs import kv
from providers.base import Adapter, FeedConfig, RawResponse, RequestSpec
from providers.errors import (
    BudgetExhausted,
    CredentialsRejected,
    DeadlineExceeded,
    MissingSecret,
    ProviderError,
    ProviderUnavailable,
    ResponseTooLarge,
    Throttled,
)

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

#: Connect fast, allow a slow provider 15 s to answer.
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)

#: One ``send`` (every attempt, backoff and byte of the body) ends within this.
DEFAULT_DEADLINE_S = 20.0

#: Bytes of an error response's body read for its message (the rest is never read).
_ERROR_DETAIL_BYTES = 1024

#: Response headers never recorded (they can carry credentials or sessions).
SENSITIVE_HEADERS: frozenset[str] = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-auth-token",
        "x-api-key",
        "x-apisports-key",
        "x-rapidapi-key",
    }
)

#: Headers about the wire encoding: the recorded body is decoded text, so drop them.
WIRE_HEADERS: frozenset[str] = frozenset(
    {"content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive"}
)

#: Headers in which providers report how many requests they still allow.
REMAINING_HEADERS: tuple[str, ...] = (
    "x-requests-available-minute",  # football-data.org
    "x-ratelimit-remaining",  # API-Football (per minute)
    "x-ratelimit-requests-remaining",  # API-Football (per day)
)

_MASK = "***"


class ProviderHTTPError(ProviderError):
    """The provider answered a 4xx other than 401/403/429 (a bad request, an
    unknown match id...) or a redirect (redirects are not followed, so that
    credentials never travel to another host). Retrying will not help."""

    def __init__(self, provider: str, status: int, url: str, detail: str = "") -> None:
        hint = f": {detail}" if detail else ""
        super().__init__(
            provider, f"HTTP {status} from {url}{hint}; check the feed's kind and --base-url"
        )
        self.status = status
        self.url = url


class _Retryable(Exception):
    """One failed attempt that may succeed later (internal to the retry loop)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# -- policies and protocols ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try. ``attempts`` counts the first try; waits are in seconds."""

    attempts: int = 4
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 5.0
    jitter_s: float = 0.5
    #: Pause after a 429 that says nothing about how long to wait.
    default_pause_s: float = 60.0
    #: Upper bound on a provider-requested pause (Retry-After, X-RequestCounter-Reset).
    max_pause_s: float = 3600.0


class RequestBudget(Protocol):
    """A per-feed request budget shared by every worker.

    ``acquire`` takes one request slot of ``per_minute`` for ``feed`` and
    returns 0.0, or takes nothing and returns the seconds until a slot frees.
    """

    async def acquire(self, feed: str, per_minute: int) -> float: ...

    async def remaining(self, feed: str, per_minute: int) -> int:
        """Slots left in the current window (no slot is taken)."""
        ...


@runtime_checkable
class OwnTransport(Protocol):
    """An adapter that answers its own requests instead of the network: a
    ``fixture`` feed serves its recording (``providers.fixture.FixtureAdapter``)."""

    def transport(self) -> httpx.AsyncBaseTransport: ...


class BodyHashCache(Protocol):
    """The last body hash seen per feed and request identity (``request_key``)."""

    async def get(self, feed: str, request: str) -> str | None: ...

    async def set(self, feed: str, request: str, body_hash: str) -> None: ...

    async def delete(self, feed: str, request: str) -> None: ...


class MemoryBudget:
    """``RequestBudget`` for one process: a sliding 60-second window per feed."""

    def __init__(
        self, *, window_s: float = 60.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._window = window_s
        self._monotonic = monotonic
        self._taken: dict[str, deque[float]] = {}
        self._lock = asyncio.Lock()

    def _prune(self, feed: str, now: float) -> deque[float]:
        taken = self._taken.setdefault(feed, deque())
        while taken and taken[0] <= now - self._window:
            taken.popleft()
        return taken

    async def acquire(self, feed: str, per_minute: int) -> float:
        async with self._lock:
            now = self._monotonic()
            taken = self._prune(feed, now)
            if len(taken) < per_minute:
                taken.append(now)
                return 0.0
            if not taken:  # per_minute <= 0: never allowed
                return self._window
            return max(taken[0] + self._window - now, 0.001)

    async def remaining(self, feed: str, per_minute: int) -> int:
        async with self._lock:
            return max(per_minute - len(self._prune(feed, self._monotonic())), 0)


class MemoryBodyHashCache:
    """``BodyHashCache`` for one process."""

    def __init__(self) -> None:
        self._hashes: dict[tuple[str, str], str] = {}

    async def get(self, feed: str, request: str) -> str | None:
        return self._hashes.get((feed, request))

    async def set(self, feed: str, request: str, body_hash: str) -> None:
        self._hashes[(feed, request)] = body_hash

    async def delete(self, feed: str, request: str) -> None:
        self._hashes.pop((feed, request), None)


# -- results ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PollResult:
    """A response plus whether its body differs from the last poll of the same request."""

    response: RawResponse
    changed: bool
    body_hash: str


@dataclass(frozen=True, slots=True)
class FeedStats:
    """What ``providers check`` reports about one feed's HTTP side."""

    feed: str
    requests: int = 0
    last_status: int | None = None
    last_latency_s: float | None = None
    last_fetched_at: datetime | None = None
    #: What the provider itself says is left (``x-requests-available-minute``...).
    provider_remaining: int | None = None
    #: Seconds until the provider's counter resets (``x-requestcounter-reset``).
    provider_reset_s: float | None = None
    budget_per_minute: int | None = None
    #: Waits the retry loop asked for, most recent last (bounded).
    retry_waits: tuple[float, ...] = field(default_factory=tuple)


# -- helpers ------------------------------------------------------------------------------


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max((when - now).total_seconds(), 0.0)
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return int(float(raw.strip()))
    except ValueError:
        return None


def request_key(spec: RequestSpec) -> str:
    """The identity of a request for change detection: purpose, path and params."""
    return f"{spec.purpose}|{spec.path}|{urlencode(spec.params)}"


def body_hash(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _feed_label(feed: FeedConfig) -> str:
    return feed.name if feed.name == feed.kind else f"{feed.name} ({feed.kind})"


# -- the client ---------------------------------------------------------------------------


class FeedClient:
    """Sends one feed's ``RequestSpec`` values and returns ``RawResponse`` values.

    Use as ``async with FeedClient(adapter) as client: await client.poll(spec)``.
    """

    def __init__(
        self,
        adapter: Adapter,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        budget: RequestBudget | None = None,
        body_cache: BodyHashCache | None = None,
        retry: RetryPolicy | None = None,
        deadline_s: float = DEFAULT_DEADLINE_S,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], datetime] = _clock.now,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.adapter = adapter
        self.feed = adapter.feed
        self.timeout = timeout
        self.deadline_s = deadline_s
        self.max_body_bytes = self.feed.body_cap
        self._label = _feed_label(self.feed)
        self._budget = budget if budget is not None else MemoryBudget()
        self._bodies = body_cache if body_cache is not None else MemoryBodyHashCache()
        self._policy = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._environ = environ
        self._backoff = wait_exponential_jitter(
            multiplier=self._policy.backoff_initial_s,
            max=self._policy.backoff_max_s,
            jitter=self._policy.jitter_s,
        )
        if transport is None and isinstance(adapter, OwnTransport):
            transport = adapter.transport()
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=timeout,
            # Never follow redirects: auth headers would go wherever they point.
            follow_redirects=False,
            headers={"user-agent": "livescore/0.1"},
        )
        self._stats = FeedStats(feed=self.feed.name, budget_per_minute=self.budget_per_minute)

    # -- lifecycle ---------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- public API --------------------------------------------------------------------
    @property
    def budget_per_minute(self) -> int | None:
        """The feed's own budget, else the provider's free-tier default, else none."""
        if self.feed.budget_per_minute is not None:
            return self.feed.budget_per_minute
        return self.adapter.default_budget_per_minute

    @property
    def stats(self) -> FeedStats:
        return self._stats

    async def budget_remaining(self) -> int | None:
        """Requests left in this minute's shared budget (None: the feed has no budget)."""
        per_minute = self.budget_per_minute
        if per_minute is None:
            return None
        return await self._budget.remaining(self.feed.name, per_minute)

    def url_for(self, spec: RequestSpec) -> str:
        """The URL of ``spec`` as recorded (the feed's base URL + ``spec.path``)."""
        return self._join(spec.path)

    def _join(self, path: str) -> str:
        if not path:
            return self.adapter.base_url
        return f"{self.adapter.base_url}{path if path.startswith('/') else '/' + path}"

    async def send(self, spec: RequestSpec) -> RawResponse:
        """Send ``spec`` with budget, auth and retries; return the response as received.

        Raises ``MissingSecret``, ``BudgetExhausted``, ``Throttled``,
        ``CredentialsRejected``, ``ProviderHTTPError``, ``ResponseTooLarge``,
        ``DeadlineExceeded`` or, after the last retry, ``ProviderUnavailable``.
        """
        secret = self._read_secret()
        retrying = AsyncRetrying(
            sleep=self._sleep,
            stop=stop_after_attempt(max(self._policy.attempts, 1)),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            # not wait_for: it can swallow a cancellation (see livescore.waiting)
            async with asyncio.timeout(self.deadline_s):
                return await retrying(self._attempt, spec, secret)
        except TimeoutError as exc:
            log.warning(kv("http.deadline", feed=self._label, url=self.url_for(spec),
                           deadline_s=self.deadline_s))  # fmt: skip
            raise DeadlineExceeded(self._label, self.url_for(spec), self.deadline_s) from exc
        except _Retryable as exc:
            raise ProviderUnavailable(
                self._label,
                f"{exc} from {self.url_for(spec)} after {self._policy.attempts} attempts; "
                "the provider looks down or is throttling us, try again later",
            ) from exc

    async def poll(self, spec: RequestSpec) -> PollResult:
        """``send`` plus change detection: ``changed`` is False when the body is
        byte-identical to the last one seen for the same feed and request."""
        response = await self.send(spec)
        digest = body_hash(response.body)
        key = request_key(spec)
        changed = await self._bodies.get(self.feed.name, key) != digest
        if changed:
            await self._bodies.set(self.feed.name, key, digest)
        return PollResult(response=response, changed=changed, body_hash=digest)

    async def forget(self, spec: RequestSpec) -> None:
        """Drop the remembered hash of ``spec`` (e.g. when parsing its body failed),
        so the next poll reports the body as changed again."""
        await self._bodies.delete(self.feed.name, request_key(spec))

    # -- internals ---------------------------------------------------------------------
    def _read_secret(self) -> str | None:
        name = self.feed.secret_env
        if not name:
            return None
        environ = os.environ if self._environ is None else self._environ
        secret = environ.get(name)
        if not secret:
            raise MissingSecret(self._label, name)
        return secret

    async def _take_budget(self) -> None:
        per_minute = self.budget_per_minute
        if per_minute is None:
            return
        wait = await self._budget.acquire(self.feed.name, per_minute)
        if wait > 0:
            raise BudgetExhausted(self._label, wait)

    async def _attempt(self, spec: RequestSpec, secret: str | None) -> RawResponse:
        await self._take_budget()
        auth_headers, auth_params = self.adapter.auth(secret)
        url = self.url_for(spec)
        # What is sent may carry the secret in its path (TheSportsDB v1); what is
        # recorded and reported is ``url``, built from ``spec.path`` alone.
        sent_url = self._join(self.adapter.url_path(spec, secret))
        params = httpx.QueryParams([*spec.params, *auth_params.items()])
        started = time.perf_counter()
        try:
            async with self._client.stream(
                "GET", sent_url, params=params, headers=auth_headers
            ) as response:
                latency = time.perf_counter() - started
                fetched_at = self._clock()
                self._observe(response, latency, fetched_at)
                await self._check_status(response, url, secret)
                raw = await self._read_capped(response, url)
        except (
            httpx.TimeoutException,
            httpx.NetworkError,
            httpx.RemoteProtocolError,
            httpx.ProxyError,
        ) as exc:
            detail = _mask(str(exc) or "no detail", secret)
            raise _Retryable(f"{type(exc).__name__}: {detail}") from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            # a feed stored before base URLs were checked (providers add takes http/https only)
            raise ProviderError(
                self._label,
                f"cannot request {_mask(url, secret)}: {exc}; "
                "give the feed an http:// or https:// --base-url",
            ) from exc
        status = response.status_code
        text = raw.decode(response.encoding or "utf-8", errors="replace")
        return RawResponse(
            feed=self.feed.name,
            kind=self.feed.kind,
            purpose=spec.purpose,
            method="GET",
            url=_mask(url, secret),
            params={k: _mask(v, secret) for k, v in spec.params},
            status=status,
            headers=_recordable_headers(response.headers, secret),
            body=_mask(text, secret),
            fetched_at=fetched_at,
            provider_match_id=spec.provider_match_id,
        )

    async def _check_status(self, response: httpx.Response, url: str, secret: str | None) -> None:
        """Raise for anything but a 2xx, reading at most a little of an error body."""
        status = response.status_code
        if 200 <= status < 300:
            return
        if status in (401, 403):
            raise CredentialsRejected(self._label, status, self.feed.secret_env)
        requested = self._retry_after(response)
        if status == 429 or (status >= 500 and requested is not None):
            pause = self._policy.default_pause_s if requested is None else requested
            pause = min(max(pause, 1.0), self._policy.max_pause_s)
            log.warning(kv("http.throttled", feed=self._label, status=status, pause_s=pause))
            raise Throttled(self._label, pause, status=status)
        if status >= 500:
            raise _Retryable(f"HTTP {status}", status=status)
        if 300 <= status < 400:
            detail = f"redirected to {response.headers.get('location', '?')}"
        else:
            head = await _read_prefix(response, _ERROR_DETAIL_BYTES)
            detail = _mask(
                head.decode(response.encoding or "utf-8", errors="replace")[:200], secret
            )
        raise ProviderHTTPError(self._label, status, url, detail)

    async def _read_capped(self, response: httpx.Response, url: str) -> bytes:
        """The whole body, or ``ResponseTooLarge`` as soon as it passes the cap
        (at once when ``Content-Length`` already says so): never more in memory."""
        cap = self.max_body_bytes
        declared = _int_header(response.headers, "content-length")
        if declared is not None and declared > cap:
            raise ResponseTooLarge(self._label, url, cap, declared)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                chunks.clear()  # the traceback keeps this frame: not the bytes
                raise ResponseTooLarge(self._label, url, cap)
            chunks.append(chunk)
        return b"".join(chunks)

    def _retry_after(self, response: httpx.Response) -> float | None:
        now = self._clock()
        waited = parse_retry_after(response.headers.get("retry-after"), now)
        if waited is None and response.status_code == 429:
            # football-data.org: seconds until the per-minute counter resets.
            waited = parse_retry_after(response.headers.get("x-requestcounter-reset"), now)
        return waited

    def _wait(self, state: RetryCallState) -> float:
        wait = float(self._backoff(state))
        waits = (*self._stats.retry_waits, wait)[-20:]
        self._stats = replace(self._stats, retry_waits=waits)
        return wait

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "%s: attempt %d failed (%s); retrying in %.2fs",
            self._label,
            state.attempt_number,
            exc,
            wait,
        )

    def _observe(self, response: httpx.Response, latency: float, fetched_at: datetime) -> None:
        headers = response.headers
        remaining = None
        for name in REMAINING_HEADERS:
            remaining = _int_header(headers, name)
            if remaining is not None:
                break
        reset = _int_header(headers, "x-requestcounter-reset")
        self._stats = replace(
            self._stats,
            requests=self._stats.requests + 1,
            last_status=response.status_code,
            last_latency_s=latency,
            last_fetched_at=fetched_at,
            provider_remaining=remaining,
            provider_reset_s=float(reset) if reset is not None else None,
        )


async def _read_prefix(response: httpx.Response, limit: int) -> bytes:
    """At most about ``limit`` bytes of the body (the rest is left unread)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def _mask(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4 and secret in text:
        return text.replace(secret, _MASK)
    return text


def _recordable_headers(headers: httpx.Headers, secret: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in headers:  # httpx.Headers iterates lower-cased unique names
        if name in SENSITIVE_HEADERS or name in WIRE_HEADERS:
            continue
        out[name] = _mask(", ".join(headers.get_list(name)), secret)
    return out
