"""In-process caches of the hot reads, invalidated by the published changes.

One store, ``SeqCache``, keeps encoded bodies (JSON and ETag) by any hashable
key, each labelled with a seq; three kinds use it. ``MatchCache`` holds each
match by id (GET /api/matches/{id}); ``PageCache`` holds pages by key: list
pages (GET /api/matches, standings) in ``Caches.pages`` and the reference
lists (/api/competitions, /api/teams) in ``Caches.reference``;
``SubPageCache`` holds pages that belong to one match by route and query
(GET .../commentary and .../changes), each labelled with the match's seq it
was read at. ``Caches`` ties them to their loaders and to the bus: one
worker process, told about every change (``edge.bus``).

Freshness. An entry is fresh until a change with a higher seq is published
(matches, and a match's sub-pages: every commentary write is a change of
its match) or any change is (list pages: scores, statuses and seqs move
pages), and for at most a short TTL, a backstop for writes that publish
nothing (the pipeline's ``stale`` flag) or a relay that is down. Reference
lists change with no change of a match: they go stale when this node
creates a match (which may create a competition or team) and otherwise only
after ``REFERENCE_TTL``, the bound for one created elsewhere (creating a
match publishes nothing). A published change
that directly follows a cached match (seq + 1) is patched into its JSON at
once from the message; then, as for any stale entry, ONE load
(``SingleFlight``) reloads it from PostgreSQL, which is authoritative. A
published change starts that reload at once; otherwise the first request
after the entry went stale starts it. Requests that arrive while a reload is
in flight get the previous entry at once instead of queueing behind the
database, which keeps tail latency flat under a stream of changes.

Stale while reloading. A page or sub-page made stale by a published change
(or a bus gap) is served once more, to the request that finds it so, while
the reload that request starts runs, if it was stored less than
``REVALIDATE_WINDOW`` ago: under a stream of changes (a live match's
commentary, the day's list, ten changes a second) no request waits for
PostgreSQL, and what it is served was read at most that window plus one
reload before. Nothing else is served stale: an entry stale by age (its TTL,
the bound for writes that publish nothing) or older than the window is
reloaded while its reader waits, and a write of this node makes its pages
stale for good (``invalidate()``, ``drop_match``): the writer's next read
shows its write.

Monotonic seq. Entries only move forward: a fill never replaces an entry
with a higher seq (a slow read from before a change loses against a newer
one), and a load returns the newer of what it read and what is cached. So
a reader on one connection never sees a match's seq go backwards. Page
fills are ordered by a ticket taken before reading, the same way. After a
gap in the bus (Redis reconnect) every entry counts as stale.

Bounded. Each cache holds at most ``max_entries`` and evicts the least
recently used entry (a hit moves its entry to the back of an
``OrderedDict``; a fill of a new key goes there too), so a match read all
afternoon stays cached however early it was first read.

Time. Every cache reads one clock, ``clock`` (``time.monotonic`` unless a
test passes a fake one it can advance).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from livescore.logs import kv

log = logging.getLogger("livescore.edge.cache")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: A monotonic clock in seconds (``time.monotonic``, or a test's fake one).
Clock = Callable[[], float]

#: A stale entry is served during a reload only if stored this recently (seconds).
STALE_GRACE = 10.0

#: A page made stale by a published change is served once more while the reload its
#: reader starts runs, if stored this recently (seconds); below every TTL, so an
#: entry stale by age is never served so.
REVALIDATE_WINDOW = 0.5

#: Seconds a reference list (competitions, teams) stays fresh: the bound on how late
#: a competition or team created elsewhere (another node, the pipeline) shows.
REFERENCE_TTL = 1.0

#: Match fields each published change type carries (its ``data``), as in the match JSON.
PATCHED_FIELDS: dict[str, tuple[str, ...]] = {
    "score:update": ("homeScore", "awayScore", "breakdown", "clock", "stats"),
    "match:status": ("status", "clock"),
    "match:update": ("startTime", "stage", "group", "override"),
    "commentary:new": (),
    "commentary:update": (),
}


def match_document(match: dict[str, Any]) -> bytes:
    """The body of ``GET /api/matches/{id}``: the match as ``{"data": {...}}``
    (single objects are wrapped like lists, as the original API did)."""
    return orjson.dumps({"data": match})


def etag_of(body: bytes) -> str:
    """A strong ETag: a hash of the exact bytes served."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


@dataclass(frozen=True, slots=True)
class Entry:
    body: bytes
    etag: str
    #: The match's seq (MatchCache) or the fill's ticket (PageCache): entries only grow.
    seq: int
    stored: float
    fresh_until: float
    generation: int = 0


class SingleFlight(Generic[K, V]):
    """One load per key at a time, shared by every caller that asks meanwhile.

    The load runs as its own task: a caller that goes away (a client hung
    up) never cancels it for the others, and it can run with nobody
    waiting (a reload started by a published change)."""

    def __init__(self) -> None:
        self._flights: dict[K, asyncio.Task[V]] = {}
        #: loads started so far (each one database read)
        self.started = 0

    def busy(self, key: K) -> bool:
        return key in self._flights

    def start(
        self, key: K, load: Callable[[], Awaitable[V]], *, background: bool = False
    ) -> asyncio.Task[V]:
        """The load in flight for ``key``, started now if there is none. A failed
        background load (nobody waiting) is logged; waiters get the error themselves."""
        task = self._flights.get(key)
        if task is None:
            task = asyncio.ensure_future(load())
            self.started += 1
            self._flights[key] = task
            task.add_done_callback(lambda done: self._landed(key, done, background))
        return task

    async def run(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        return await asyncio.shield(self.start(key, load))

    def _landed(self, key: K, task: asyncio.Task[V], background: bool) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if task.cancelled():
            return
        error = task.exception()  # retrieved here, so asyncio never reports it as lost
        if error is not None and background:
            log.warning(kv("cache.reload_failed", key=key, error=repr(error)))


class SeqCache(Generic[K]):
    """Encoded bodies by any hashable key, each labelled with a seq: the one
    store behind every cache here (freshness, monotonic fills, LRU).

    An entry is fresh while it is younger than ``ttl``, no bus gap came after
    the load that read it (``generation``), and its seq is at least
    ``floor(key)``, the lowest seq a fresh entry may have (the match's highest
    published seq for match data; 0, never binding, for list pages). A fill
    never replaces an entry with a higher seq. At most ``max_entries`` are
    held; the least recently used goes first (``_evicted`` hears of it)."""

    def __init__(self, *, ttl: float, max_entries: int, clock: Clock) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        #: least recently used first
        self._entries: OrderedDict[K, Entry] = OrderedDict()
        #: raised by ``clear``: every entry filled before is stale
        self.generation = 0
        #: entries of a lower generation are never served stale (``revalidatable``)
        self._hard_generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def floor(self, key: K) -> int:
        """The lowest seq a fresh entry for ``key`` may have."""
        return 0

    def lookup(self, key: K) -> tuple[Entry | None, bool]:
        """The entry (if usable at all) and whether it is fresh."""
        entry = self._entries.get(key)
        if entry is None:
            return None, False
        now = self._clock()
        if now - entry.stored > STALE_GRACE:
            return None, False
        self._entries.move_to_end(key)  # recently used: evicted last
        fresh = (
            now < entry.fresh_until
            and entry.generation == self.generation
            and entry.seq >= self.floor(key)
        )
        return entry, fresh

    def revalidatable(self, entry: Entry) -> bool:
        """Whether a stale ``entry`` may be served while a reload started now runs:
        it was stored less than ``REVALIDATE_WINDOW`` ago (so it went stale by a
        change, not by age) and no ``clear()`` for a write of this node came since."""
        return (
            entry.generation >= self._hard_generation
            and self._clock() - entry.stored < REVALIDATE_WINDOW
        )

    def store(self, key: K, seq: int, body: bytes, generation: int) -> Entry:
        """Offer a body read at ``seq`` by a load that started in ``generation``;
        returns the newest entry known for the key. A read from before a change
        (below the floor, or before a gap) is kept, as the best there is, but stale."""
        current = self._entries.get(key)
        if current is not None and current.seq > seq:
            return current  # a read from before a change that is already cached
        now = self._clock()
        usable = seq >= self.floor(key) and generation == self.generation
        entry = Entry(body, etag_of(body), seq, now, now + self.ttl if usable else now, generation)
        if current is None and len(self._entries) >= self.max_entries:
            oldest, _ = self._entries.popitem(last=False)  # the least recently used
            self._evicted(oldest)
        self._entries[key] = entry
        return entry

    def _evicted(self, key: K) -> None:
        """``key``'s entry was evicted to make room."""

    def clear(self, *, serve_stale: bool = False) -> None:
        """Every entry is stale (after a bus gap, a change or a write of this node);
        with ``serve_stale`` one may still be served while its reload runs
        (``revalidatable``), else none is."""
        self.generation += 1
        if not serve_stale:
            self._hard_generation = self.generation


class MatchCache(SeqCache[int]):
    def __init__(
        self,
        *,
        ttl: float = 2.0,
        max_entries: int = 20_000,
        max_floors: int = 100_000,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(ttl=ttl, max_entries=max_entries, clock=clock)
        self.max_floors = max_floors
        #: the highest seq published per match, most recently raised last; bounded:
        #: a floor forgotten for a match quiet that long only costs a fresher read
        self._floor: dict[int, int] = {}

    def _raise_floor(self, match_id: int, seq: int) -> None:
        if seq <= self._floor.get(match_id, 0):
            return
        self._floor.pop(match_id, None)  # re-insert: most recently raised goes last
        self._floor[match_id] = seq
        while len(self._floor) > self.max_floors:
            oldest = next(iter(self._floor))
            del self._floor[oldest]
            self._entries.pop(oldest, None)  # never keep an entry without its floor

    def floor(self, key: int) -> int:
        return self._floor.get(key, 0)

    def fill(self, match_id: int, seq: int, body: bytes) -> Entry:
        """Offer a match read from the database; returns the newest entry known."""
        entry = self.store(match_id, seq, body, self.generation)
        self._raise_floor(match_id, seq)
        return entry

    def patch(
        self, match_id: int, seq: int, kind: str, data: dict[str, Any], ts: str | None
    ) -> bool:
        """Apply a published change to the cached match it directly follows (seq + 1),
        without a database read; False when it cannot (not cached, a gap, a new type)."""
        current = self._entries.get(match_id)
        fields = PATCHED_FIELDS.get(kind)
        if current is None or fields is None or seq != current.seq + 1:
            return False
        match = orjson.loads(current.body)["data"]
        for name in fields:
            if name in data:
                match[name] = data[name]
        match["seq"] = seq
        if ts is not None:
            match["updatedAt"] = ts
        self.fill(match_id, seq, match_document(match))
        return True

    def on_change(self, match_id: int, seq: int) -> bool:
        """A change with ``seq`` was published; True if a cached entry just went stale."""
        self._raise_floor(match_id, seq)
        current = self._entries.get(match_id)
        return current is not None and current.seq < seq


@dataclass(frozen=True, slots=True)
class Ticket:
    generation: int
    number: int


PageLoader = Callable[[], Awaitable[bytes]]


class PageCache(SeqCache[str]):
    """Pages by key, each labelled with the ticket its read took (fills are
    ordered by when their read began), fresh until ``invalidate`` or ``ttl``;
    ``get`` reads a page once for everybody asking meanwhile."""

    def __init__(
        self, *, ttl: float = 1.0, max_entries: int = 2_000, clock: Clock = time.monotonic
    ) -> None:
        super().__init__(ttl=ttl, max_entries=max_entries, clock=clock)
        self._tickets = 0
        self.loads: SingleFlight[str, Entry] = SingleFlight()

    def ticket(self) -> Ticket:
        """Take before reading the database for a page."""
        self._tickets += 1
        return Ticket(self.generation, self._tickets)

    def fill(self, key: str, ticket: Ticket, body: bytes) -> Entry:
        return self.store(key, ticket.number, body, ticket.generation)

    def invalidate(self, *, serve_stale: bool = False) -> None:
        """A change that may move any page: every page is stale from now on. A
        published change passes ``serve_stale`` (``SeqCache.clear``); a write of
        this node does not: its writer's next read must show it."""
        self.clear(serve_stale=serve_stale)

    def cached(self, key: str) -> Entry | None:
        """The page if it can be served without loading (fresh, or a reload in flight)."""
        entry, fresh = self.lookup(key)
        if entry is not None and (fresh or self.loads.busy(key)):
            return entry
        return None

    async def get(self, key: str, load: PageLoader, *, serve_stale: bool = True) -> Entry:
        """The page: cached, or read once for everybody asking meanwhile; a page
        a published change made stale is served while its reload runs, unless
        ``serve_stale`` is False (a page that must agree with a push just sent)."""
        entry, fresh = self.lookup(key)
        if entry is not None and (fresh or self.loads.busy(key)):
            return entry

        async def reload() -> Entry:
            ticket = self.ticket()
            return self.fill(key, ticket, await load())

        if serve_stale and entry is not None and self.revalidatable(entry):
            self.loads.start(key, reload, background=True)
            return entry
        return await self.loads.run(key, reload)


#: A sub-page's key: (match id, route name, raw query string).
SubKey = tuple[int, str, str]


class SubPageCache(SeqCache[SubKey]):
    """Pages of one match's sub-resources (its commentary, its change log), by
    route and query. An entry is labelled with the match's seq read BEFORE the
    page (so the label never claims more than the page shows) and is fresh
    while no change of that match with a higher seq was published (the floors
    of ``MatchCache``, which every change raises), for at most ``ttl``."""

    def __init__(
        self,
        floors: MatchCache,
        *,
        ttl: float = 2.0,
        max_entries: int = 20_000,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(ttl=ttl, max_entries=max_entries, clock=clock)
        self._floors = floors
        #: the cached keys of each match (to drop them all after our own write)
        self._keys: dict[int, set[SubKey]] = {}

    def floor(self, key: SubKey) -> int:
        return self._floors.floor(key[0])

    def fill(self, key: SubKey, seq: int, body: bytes, generation: int) -> Entry:
        """Offer a page read at the match's ``seq`` by a load that started in
        ``generation``; returns the newest entry known for the key."""
        entry = self.store(key, seq, body, generation)
        self._keys.setdefault(key[0], set()).add(key)
        return entry

    def _evicted(self, key: SubKey) -> None:
        keys = self._keys.get(key[0])
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._keys[key[0]]

    def drop_match(self, match_id: int) -> None:
        """Forget every page of a match (after our own write to it: the writer's
        next read must not be served a page from before the write)."""
        for key in self._keys.pop(match_id, ()):
            self._entries.pop(key, None)


MatchLoader = Callable[[int], Awaitable[tuple[int, bytes]]]
#: Reads a match's sub-page: (the match's seq, read first; the page's body).
SubPageLoader = Callable[[], Awaitable[tuple[int, bytes]]]


class Caches:
    """The hot-read caches of one worker: lookups, shared reloads, bus wiring.

    ``pages`` (match lists, standings) go stale with any change; ``reference``
    (the competitions and teams lists) only with a write that can add or
    rename a competition or team (``reference_written``: a match created on
    this node) or after ``reference_ttl``: no change of a match touches them."""

    def __init__(
        self,
        load_match: MatchLoader,
        *,
        match_ttl: float = 2.0,
        page_ttl: float = 1.0,
        reference_ttl: float = REFERENCE_TTL,
        clock: Clock = time.monotonic,
    ) -> None:
        self._load_match = load_match
        self.matches = MatchCache(ttl=match_ttl, clock=clock)
        self.pages = PageCache(ttl=page_ttl, clock=clock)
        self.reference = PageCache(ttl=reference_ttl, max_entries=1_000, clock=clock)
        self.subpages = SubPageCache(self.matches, ttl=match_ttl, clock=clock)
        self._match_loads: SingleFlight[int, Entry] = SingleFlight()
        #: keyed by (page, the match's floor, generation) when the load started: a
        #: reader only waits for, or is served stale behind, a load that started
        #: after every change it may know of (its own write included)
        self._subpage_loads: SingleFlight[tuple[SubKey, int, int], Entry] = SingleFlight()

    async def _reload_match(self, match_id: int) -> Entry:
        seq, body = await self._load_match(match_id)
        return self.matches.fill(match_id, seq, body)

    async def match(self, match_id: int) -> Entry:
        """The match's entry: cached, or read once for everybody asking meanwhile."""
        entry, fresh = self.matches.lookup(match_id)
        if entry is not None and (fresh or self._match_loads.busy(match_id)):
            return entry
        return await self._match_loads.run(match_id, lambda: self._reload_match(match_id))

    def cached_page(self, key: str) -> Entry | None:
        """The list page if it can be served without loading (fresh, or a reload in flight)."""
        return self.pages.cached(key)

    async def page(self, key: str, load: PageLoader, *, serve_stale: bool = True) -> Entry:
        """A list page: cached, or read once for everybody asking meanwhile (see
        ``PageCache.get`` for ``serve_stale``)."""
        return await self.pages.get(key, load, serve_stale=serve_stale)

    def _subpage_flight(self, key: SubKey) -> tuple[SubKey, int, int]:
        return key, self.matches.floor(key[0]), self.subpages.generation

    def cached_subpage(self, key: SubKey) -> Entry | None:
        """The match's sub-page if it can be served without loading (fresh, or a
        reload in flight that started after every change this node knows of)."""
        entry, fresh = self.subpages.lookup(key)
        if entry is not None and (fresh or self._subpage_loads.busy(self._subpage_flight(key))):
            return entry
        return None

    async def subpage(self, key: SubKey, load: SubPageLoader) -> Entry:
        """A match's sub-page: cached, or read once for everybody asking meanwhile
        (while a reload is in flight, the previous entry is served at once; so is
        one a published change made stale, while the reload this call starts runs)."""
        entry, fresh = self.subpages.lookup(key)
        flight = self._subpage_flight(key)
        if entry is not None and (fresh or self._subpage_loads.busy(flight)):
            return entry

        async def reload() -> Entry:
            seq, body = await load()
            return self.subpages.fill(key, seq, body, flight[2])

        if entry is not None and self.subpages.revalidatable(entry):
            self._subpage_loads.start(flight, reload, background=True)
            return entry
        return await self._subpage_loads.run(flight, reload)

    def loads(self) -> dict[str, int]:
        """Database reads started to fill each cache so far (reloads included)."""
        return {
            "matches": self._match_loads.started,
            "pages": self.pages.loads.started,
            "reference": self.reference.loads.started,
            "subpages": self._subpage_loads.started,
        }

    def on_change(self, match_id: int, seq: int) -> None:
        """Our own change: reload a cached match now, pages on demand."""
        if self.matches.on_change(match_id, seq):
            self._reload_in_background(match_id)
        self.pages.invalidate()

    def on_published(
        self, match_id: int, seq: int, kind: str, data: dict[str, Any], ts: str | None
    ) -> None:
        """A change from the bus. A cached match it directly follows is patched from
        the message at once (visible without a database round trip, which under load
        waits its turn in the event loop); the reload from the database follows anyway
        and is authoritative."""
        patched = self.matches.patch(match_id, seq, kind, data, ts)
        if self.matches.on_change(match_id, seq) or patched:
            self._reload_in_background(match_id)
        self.pages.invalidate(serve_stale=True)

    def reference_written(self) -> None:
        """This node created a match, and so maybe a competition or team: every list
        is stale now (the reference lists too), so the writer's next read shows it."""
        self.pages.invalidate()
        self.reference.invalidate()

    def _reload_in_background(self, match_id: int) -> None:
        self._match_loads.start(match_id, lambda: self._reload_match(match_id), background=True)

    async def written(self, match_id: int, seq: int) -> None:
        """Our own write reached ``seq``: return once a cached entry shows it, so the
        writer's next read does (a reload in flight may have read before the commit)."""
        self.on_change(match_id, seq)
        self.subpages.drop_match(match_id)
        for _ in range(3):
            entry, _ = self.matches.lookup(match_id)
            if entry is None or entry.seq >= seq:
                return
            await self._match_loads.run(match_id, lambda: self._reload_match(match_id))

    def clear(self) -> None:
        """After a bus gap (changes may have been lost): every entry is stale."""
        self.matches.clear()
        self.subpages.clear()
        self.pages.invalidate()
        self.reference.invalidate()
