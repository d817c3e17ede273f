"""The ``fixture`` provider: a recording served back through the real adapters.

Two ways to use a recording (``providers.recording`` documents the format):

1. **Replay** (``livescore replay fixtures/NAME``) iterates the responses in
   recorded time order and hands each to the adapter of its recorded kind,
   exactly as a live poll would::

       feed = FixtureFeed("fixtures/premier-league-matchday")
       configs = feed.feed_configs()            # FeedConfig per recorded feed
       async for response in feed.replay(speed=10):   # speed=0: no waiting at all
           adapter_for(configs[response.feed]).parse(response)

2. **A feed of kind "fixture"** (``providers add NAME --kind fixture
   --base-url fixtures/NAME[#FEED]``) is polled like a real feed by
   ``FeedClient``: ``FixtureAdapter`` builds requests ``/today``, ``/live``
   and ``/match/{id}``, and its ``transport()`` (which ``FeedClient`` uses
   instead of the network) answers each with the latest recorded response of
   that feed and purpose (and match id) fetched at or before the replay
   clock. Parsing is delegated to the recorded kind's adapter (built by
   ``providers.kinds``) through its public ``parse_report``. ``#FEED`` picks
   one recorded feed; without it the feed with the fixture feed's own name is
   used, or the only one. Before the first recorded response of a purpose the
   transport answers 425 (too early); for a purpose never recorded, 404.

``ReplayClock`` maps wall time onto recorded time: it starts at the
recording's first response and runs ``speed`` times as fast as real time
(``speed=0`` freezes it; move it with ``advance_to``).
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import httpx

from livescore.model import MatchObservation
from providers.base import Adapter, FeedConfig, ParseReport, Purpose, RawResponse, RequestSpec
from providers.errors import ProviderError
from providers.http import WIRE_HEADERS, Sleep
from providers.kinds import build_adapter
from providers.recording import RecordedFeed, Recording, load_recording

_Key = tuple[str, str, str | None]  # (feed, purpose, provider_match_id)


class ReplayClock:
    """Recorded time during a replay."""

    def __init__(
        self,
        start: datetime,
        speed: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.speed = speed
        self._monotonic = monotonic
        self._origin = start
        self._wall_origin = monotonic()

    def now(self) -> datetime:
        elapsed = (self._monotonic() - self._wall_origin) * self.speed
        return self._origin + timedelta(seconds=elapsed)

    def advance_to(self, when: datetime) -> None:
        """Jump the clock to ``when`` (it keeps running at ``speed`` from there)."""
        self._origin = when
        self._wall_origin = self._monotonic()


class FixtureFeed:
    """A recording opened for replay: its feeds, its responses in time order."""

    def __init__(self, directory: Path | str) -> None:
        self.recording: Recording = load_recording(directory)
        self.directory = self.recording.directory
        self.manifest = self.recording.manifest
        self.responses: tuple[RawResponse, ...] = self.recording.responses
        index: dict[_Key, list[RawResponse]] = {}
        for response in self.responses:
            index.setdefault(_key(response), []).append(response)
        self._index = index
        self._times = {k: [r.fetched_at for r in v] for k, v in index.items()}

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def feeds(self) -> tuple[RecordedFeed, ...]:
        return self.manifest.feeds

    @property
    def start(self) -> datetime:
        if not self.responses:
            raise ProviderError("fixture", f"{self.directory} holds no responses")
        return self.responses[0].fetched_at

    @property
    def end(self) -> datetime:
        if not self.responses:
            raise ProviderError("fixture", f"{self.directory} holds no responses")
        return self.responses[-1].fetched_at

    def feed_configs(self) -> dict[str, FeedConfig]:
        """A ``FeedConfig`` per recorded feed (name, kind, priority, competitions)."""
        return {f.name: f.to_config() for f in self.feeds}

    def timeline(self) -> Iterator[tuple[datetime, RawResponse]]:
        """``(fetched_at, response)`` for every response, in recorded time order."""
        for response in self.responses:
            yield response.fetched_at, response

    async def replay(
        self, *, speed: float = 1.0, sleep: Sleep = asyncio.sleep
    ) -> AsyncIterator[RawResponse]:
        """Yield every response in time order, waiting the recorded gaps divided by
        ``speed`` between them (``speed <= 0``: no waiting)."""
        previous: datetime | None = None
        for response in self.responses:
            if previous is not None and speed > 0:
                gap = (response.fetched_at - previous).total_seconds() / speed
                if gap > 0:
                    await sleep(gap)
            previous = response.fetched_at
            yield response

    def latest(
        self,
        feed: str,
        purpose: Purpose,
        at: datetime,
        provider_match_id: str | None = None,
    ) -> RawResponse | None:
        """The last response of ``feed``/``purpose`` fetched at or before ``at``."""
        key: _Key = (feed, purpose, provider_match_id if purpose == "match" else None)
        times = self._times.get(key)
        if not times:
            return None
        position = bisect.bisect_right(times, at)
        return self._index[key][position - 1] if position else None

    def has(self, feed: str, purpose: str, provider_match_id: str | None = None) -> bool:
        return (feed, purpose, provider_match_id if purpose == "match" else None) in self._index

    def transport(self, feed: str, clock: Callable[[], datetime]) -> httpx.MockTransport:
        """An httpx transport answering ``/today``, ``/live``, ``/match/{id}`` for
        ``feed`` from the recording, as of ``clock()``."""
        if self.manifest.feed(feed) is None:
            raise ProviderError("fixture", f"{self.directory} has no feed named {feed!r}")

        def handle(request: httpx.Request) -> httpx.Response:
            parts = [p for p in request.url.path.split("/") if p]
            purpose = parts[0] if parts else ""
            match_id = parts[1] if purpose == "match" and len(parts) > 1 else None
            if purpose not in ("today", "live", "match") or not self.has(feed, purpose, match_id):
                return httpx.Response(
                    404, json={"message": f"{self.name}: nothing recorded for {feed} {parts}"}
                )
            now = clock()
            found = self.latest(feed, purpose, now, match_id)  # type: ignore[arg-type]
            if found is None:
                return httpx.Response(
                    425,
                    json={
                        "message": f"{self.name}: replay clock {now} is before the first "
                        f"recorded {purpose} response of {feed}"
                    },
                )
            headers = {k: v for k, v in found.headers.items() if k.lower() not in WIRE_HEADERS}
            return httpx.Response(found.status, headers=headers, content=found.body.encode())

        return httpx.MockTransport(handle)


def _key(response: RawResponse) -> _Key:
    match_id = response.provider_match_id if response.purpose == "match" else None
    return (response.feed, response.purpose, match_id)


def split_base_url(base_url: str | None) -> tuple[Path, str | None]:
    """``"fixtures/NAME#FEED"`` -> (Path("fixtures/NAME"), "FEED")."""
    if not base_url:
        raise ProviderError(
            "fixture", "a fixture feed needs --base-url pointing at a recording directory"
        )
    path, _, feed = base_url.partition("#")
    return Path(path.removeprefix("file://")), feed or None


class FixtureAdapter(Adapter):
    """Adapter of kind ``fixture``: requests go to the recording, parsing to the
    recorded kind's adapter (the same code a live feed of that kind runs)."""

    kind: ClassVar[str] = "fixture"
    default_base_url: ClassVar[str] = "http://fixture.invalid"

    def __init__(
        self,
        feed: FeedConfig,
        *,
        recording: FixtureFeed | None = None,
        inner: Adapter | None = None,
        clock: ReplayClock | None = None,
    ) -> None:
        super().__init__(feed)
        directory, wanted = split_base_url(feed.base_url)
        self.recording = recording or FixtureFeed(directory)
        self.recorded = self._pick_feed(wanted)
        self.clock = clock or ReplayClock(self.recording.start)
        self.inner = inner or build_adapter(
            self.recorded.to_config(
                name=feed.name,
                priority=feed.priority,
                competitions=feed.competitions or self.recorded.competitions,
            )
        )

    def _pick_feed(self, wanted: str | None) -> RecordedFeed:
        feeds = self.recording.feeds
        names = [f.name for f in feeds]
        chosen = wanted or (self.feed.name if self.feed.name in names else None)
        if chosen is None and len(feeds) == 1:
            return feeds[0]
        found = self.recording.manifest.feed(chosen) if chosen else None
        if found is None:
            raise ProviderError(
                "fixture",
                f"{self.recording.directory} records feeds {names}; "
                "pick one with --base-url PATH#FEED",
            )
        return found

    @property
    def base_url(self) -> str:
        return self.default_base_url

    def transport(self) -> httpx.MockTransport:
        return self.recording.transport(self.recorded.name, self.clock.now)

    def today_request(self, day: date) -> RequestSpec:
        return RequestSpec(purpose="today", path="/today", params=(("date", day.isoformat()),))

    def live_request(self) -> RequestSpec | None:
        return RequestSpec(purpose="live", path="/live")

    def match_request(self, provider_match_id: str) -> RequestSpec:
        return RequestSpec(
            purpose="match", path=f"/match/{provider_match_id}", provider_match_id=provider_match_id
        )

    def auth(self, secret: str | None) -> tuple[dict[str, str], dict[str, str]]:
        return {}, {}

    def parse_report(self, response: RawResponse) -> ParseReport:
        """The inner adapter's ``parse_report`` (``parse``, inherited, raises its
        first error): the same code a live feed of the recorded kind runs."""
        return self.inner.parse_report(replace(response, kind=self.inner.kind))

    def _parse(self, payload: Any, response: RawResponse) -> list[MatchObservation]:
        # Only Adapter.parse_report calls _parse, and it is replaced above; should
        # anything else call it, the whole response goes to the inner adapter too.
        return self.inner.parse(replace(response, kind=self.inner.kind))
