"""The provider contract: what every adapter knows and does.

An adapter is two pure halves and nothing else:

* request building: which request asks a feed for today's matches, its live
  matches, or one match by the provider's id (for matches that drop out of
  live lists);
* normalization: a raw response in, canonical ``MatchObservation`` values out.

Sending requests (httpx, retries, budgets) is ``providers.http``'s job;
storing observations is the pipeline's. This module and every adapter
module import no httpx, psycopg, redis or sanic.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar, Literal, TypeVar

import orjson

from livescore.feeds import FEED_KINDS, FeedConfig
from livescore.model import MatchObservation
from providers.errors import ErrorResponse, PayloadError, ProviderError

__all__ = [
    "FEED_KINDS",
    "Adapter",
    "FeedConfig",
    "ParseReport",
    "Purpose",
    "RawResponse",
    "RequestSpec",
]

Purpose = Literal["today", "live", "match", "standings"]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ParseReport:
    """The observations of a response, and the matches in it that were malformed."""

    observations: list[MatchObservation]
    errors: tuple[PayloadError, ...] = ()


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """A request an adapter wants sent. ``path`` is joined to the feed's base URL."""

    purpose: Purpose
    path: str
    params: tuple[tuple[str, str], ...] = ()
    #: For ``purpose="match"``: the provider's id of the match asked for.
    provider_match_id: str | None = None


@dataclass(frozen=True, slots=True)
class RawResponse:
    """One provider response exactly as received: the unit of recording and replay."""

    feed: str
    kind: str
    purpose: Purpose
    method: str
    url: str
    params: dict[str, str]
    status: int
    headers: dict[str, str]
    body: str
    fetched_at: datetime
    provider_match_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def json(self) -> Any:
        return orjson.loads(self.body)


class Adapter(ABC):
    """Base class of the four feed adapters (and the fixture provider's)."""

    #: The feed kind this adapter serves (``--kind`` of ``providers add``).
    kind: ClassVar[str]
    #: The provider's public API root.
    default_base_url: ClassVar[str]
    #: Requests per minute allowed on the provider's free tier, if known.
    default_budget_per_minute: ClassVar[int | None] = None
    #: Header that carries the secret, or None when the key goes in the URL/params.
    auth_header: ClassVar[str | None] = None
    #: The sport this feed covers.
    sport: ClassVar[str] = "football"

    def __init__(self, feed: FeedConfig) -> None:
        self.feed = feed
        self._item_errors: list[PayloadError] = []

    @property
    def base_url(self) -> str:
        return (self.feed.base_url or self.default_base_url).rstrip("/")

    # -- request building (pure) -------------------------------------------------
    @abstractmethod
    def today_request(self, day: date) -> RequestSpec:
        """The request listing every match of ``day`` (UTC)."""

    def live_request(self) -> RequestSpec | None:
        """The request listing live matches only, or None if the feed has none."""
        return None

    @abstractmethod
    def match_request(self, provider_match_id: str) -> RequestSpec:
        """The request for one match by the provider's id."""

    def auth(self, secret: str | None) -> tuple[dict[str, str], dict[str, str]]:
        """Headers and query params that carry ``secret`` (never recorded)."""
        if secret and self.auth_header:
            return {self.auth_header: secret}, {}
        return {}, {}

    def url_path(self, spec: RequestSpec, secret: str | None) -> str:
        """The path actually sent for ``spec``.

        Most feeds carry the secret in ``auth()`` headers/params and send
        ``spec.path`` unchanged. Feeds with the key inside the path
        (TheSportsDB v1: ``/api/v1/json/{key}/...``) override this. The result
        may contain the secret: send it, but record ``spec.path``.
        """
        return spec.path

    # -- normalization (pure) ----------------------------------------------------
    def parse(self, response: RawResponse) -> list[MatchObservation]:
        """Turn one response into observations, strictly.

        Raises ``PayloadError`` (naming the provider and field path) for
        anything malformed, including a single malformed match; never
        anything else. Ingestion uses ``parse_report`` instead.
        """
        report = self.parse_report(response)
        if report.errors:
            raise report.errors[0]
        return report.observations

    def parse_report(self, response: RawResponse) -> ParseReport:
        """Turn one response into observations, setting malformed matches aside.

        A response that is malformed as a whole (not JSON, no match list, a
        provider error) raises ``PayloadError``. A malformed *match* inside an
        otherwise good response does not cost the others: it is returned in
        ``errors`` (to be logged and counted) and every other match is parsed.

        A response that is an HTTP error (only a recording holds those: a live
        one is turned into an error when it arrives) raises ``ErrorResponse``.
        """
        if not 200 <= response.status < 300:
            raise ErrorResponse(self.kind, response.status, response.url)
        try:
            payload = response.json()
        except orjson.JSONDecodeError as exc:
            raise PayloadError(self.kind, "$", f"body is not JSON ({exc})") from exc
        self._item_errors = []
        try:
            observations = self._parse(payload, response)
        except ProviderError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            # A bug-shaped failure still must not escape as a bare exception:
            # the caller gets a PayloadError and the process keeps serving.
            raise PayloadError(self.kind, "$", f"{type(exc).__name__}: {exc}") from exc
        return ParseReport(observations, tuple(self._item_errors))

    def _item(self, normalize: Callable[..., _T], *args: Any) -> _T | None:
        """Normalize one match of a list; a malformed one is set aside (see
        ``parse_report``) and None returned, so the rest still parse."""
        try:
            return normalize(*args)
        except PayloadError as exc:
            self._item_errors.append(exc)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            self._item_errors.append(PayloadError(self.kind, "$", f"{type(exc).__name__}: {exc}"))
        return None

    @abstractmethod
    def _parse(self, payload: Any, response: RawResponse) -> list[MatchObservation]:
        """Adapter-specific normalization of a decoded payload."""
