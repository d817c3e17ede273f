"""In-process caches of the hot reads, invalidated by the published changes.

``MatchCache`` holds one match's encoded JSON and ETag by id (GET
/api/matches/{id}); ``PageCache`` holds encoded list pages by query (GET
/api/matches). Both live in one worker process and are told about every
change through the bus (``edge.bus``).

Rules that keep a reader from ever seeing a match's seq go backwards:

* ``floor[id]`` is the highest seq this worker has heard of for a match,
  from the bus or from a database read. A fill older than the floor is not
  stored (a newer state exists; the next reader reads it), and a fill never
  replaces an entry with a higher seq. A change message drops entries with a
  lower seq.
* A page fill takes a ticket before it reads; it is stored only if no
  change arrived meanwhile (same generation) and no later-started fill has
  stored already.
* After a gap in the bus (Redis reconnect) everything is dropped.

Entries also expire after a short TTL, a backstop for writes that publish
nothing (the pipeline's ``stale`` flag) or a relay that is down.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def etag_of(body: bytes) -> str:
    """A strong ETag: a hash of the exact bytes served."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


@dataclass(frozen=True, slots=True)
class Entry:
    body: bytes
    etag: str
    seq: int
    expires: float


class MatchCache:
    def __init__(self, *, ttl: float = 2.0, max_entries: int = 20_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[int, Entry] = {}
        self._floor: dict[int, int] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, match_id: int) -> Entry | None:
        entry = self._entries.get(match_id)
        if entry is None or entry.expires < time.monotonic():
            self.misses += 1
            return None
        self.hits += 1
        return entry

    def floor(self, match_id: int) -> int:
        return self._floor.get(match_id, 0)

    def fill(self, match_id: int, seq: int, body: bytes) -> Entry:
        """Offer a freshly read match; returns its entry (stored or not)."""
        entry = Entry(body, etag_of(body), seq, time.monotonic() + self.ttl)
        floor = self._floor.get(match_id, -1)
        if seq < floor:
            return entry  # read before a change we already heard of: serve, don't keep
        self._floor[match_id] = seq
        current = self._entries.get(match_id)
        if current is not None and current.seq > seq:
            return entry
        if current is None and len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[match_id] = entry
        return entry

    def on_change(self, match_id: int, seq: int) -> None:
        """A change with ``seq`` was committed: forget anything older."""
        if seq > self._floor.get(match_id, -1):
            self._floor[match_id] = seq
        current = self._entries.get(match_id)
        if current is not None and current.seq < seq:
            del self._entries[match_id]

    def clear(self) -> None:
        """Forget every entry (after a bus gap); the floors stay true lower bounds."""
        self._entries.clear()


@dataclass(frozen=True, slots=True)
class Ticket:
    generation: int
    number: int


@dataclass(frozen=True, slots=True)
class PageEntry:
    body: bytes
    etag: str
    ticket: int
    expires: float


class PageCache:
    def __init__(self, *, ttl: float = 1.0, max_entries: int = 2_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, PageEntry] = {}
        self._generation = 0
        self._tickets = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> PageEntry | None:
        entry = self._entries.get(key)
        if entry is None or entry.expires < time.monotonic():
            return None
        return entry

    def ticket(self) -> Ticket:
        """Take before reading the database for a page."""
        self._tickets += 1
        return Ticket(self._generation, self._tickets)

    def fill(self, key: str, ticket: Ticket, body: bytes) -> PageEntry:
        entry = PageEntry(body, etag_of(body), ticket.number, time.monotonic() + self.ttl)
        if ticket.generation != self._generation:
            return entry  # a change arrived while we read: serve, don't keep
        current = self._entries.get(key)
        if current is not None and current.ticket > ticket.number:
            return entry
        if current is None and len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = entry
        return entry

    def invalidate(self) -> None:
        """Any change may move any page (scores, statuses, seqs): drop them all."""
        self._generation += 1
        self._entries.clear()


class SingleFlight(Generic[K, V]):
    """Concurrent misses of one key share one load instead of stampeding the database
    (a TTL expiry or an invalidation under load would otherwise send every waiting
    request to PostgreSQL at once). The load runs as its own task, so a client that
    disconnects never cancels it for the others."""

    def __init__(self) -> None:
        self._flights: dict[K, asyncio.Task[V]] = {}

    async def run(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        task = self._flights.get(key)
        if task is None:
            task = asyncio.ensure_future(load())
            self._flights[key] = task
            task.add_done_callback(lambda done: self._landed(key, done))
        return await asyncio.shield(task)

    def _landed(self, key: K, task: asyncio.Task[V]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # retrieved: every waiter re-raises it itself


class Caches:
    """The caches of one worker, wired to the bus as one listener."""

    def __init__(self, *, match_ttl: float = 2.0, page_ttl: float = 1.0) -> None:
        self.matches = MatchCache(ttl=match_ttl)
        self.pages = PageCache(ttl=page_ttl)
        self.match_loads: SingleFlight[int, Entry] = SingleFlight()
        self.page_loads: SingleFlight[str, PageEntry] = SingleFlight()

    def on_change(self, match_id: int, seq: int) -> None:
        self.matches.on_change(match_id, seq)
        self.pages.invalidate()

    def clear(self) -> None:
        self.matches.clear()
        self.pages.invalidate()
