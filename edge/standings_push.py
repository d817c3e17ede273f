"""``standings:update``: the league table pushed to a competition's subscribers.

One ``StandingsPush`` per edge worker follows the change bus next to the hub.
A ``score:update``, ``match:status`` or ``match:update`` of a match whose
competition has subscribers on this worker marks that competition's table
dirty; ``DEBOUNCE`` seconds later ONE read of PostgreSQL (the competition's
rules and the matches of the season(s) touched) computes the table
(``livescore.standings``, live rows counted as they stand) and, if it differs
from the last one this worker pushed, the hub writes one ready-made frame to
every subscriber (``Hub.send_to_competition``). A burst of goals costs one
read per competition per debounce window on each worker, never one per client.

The frame::

    {"type": "standings:update", "competitionId": 2, "season": 2024, "seq": 731,
     "cause": {"matchId": 12, "seq": 40}, "data": {...the table document...}}

It is not numbered for resuming like match changes: a table is state, the
newest one wins. ``seq`` is the table's version (the sum of its matches'
seqs, ``livescore.standings.version``): it grows with every change of any of
its matches and is the same on every node, so a client keeps the frame with
the highest ``seq`` and drops older ones; after a reconnect it reads
``GET /api/competitions/{id}/standings`` (its ``data.seq`` is the same
version) and takes pushes from there. ``cause`` names the last match change
of the burst that produced the frame.

Also pushed, with ``"cause": null``:

* right after a client subscribes to a competition (``/ws`` ``subscribe
  competitionId``, ``/sse?competitionId=``), to that client only: the
  competition's current table (the current season's, as ``GET .../standings``
  serves it, from the same page cache: one read for everybody subscribing
  meanwhile; ``edge.routes_standings.send_current_table``);
* to every subscriber when the competition's rules change (``livescore
  standings rules`` publishes on ``Keys.standings_channel``): the current
  season's table, and the tables of any season pushed before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from edge.metrics import REGISTRY
from edge.state import DB_ERRORS
from livescore import clock
from livescore.logs import kv
from livescore.standings import changed_competition, season_of
from store.db import Conn
from store.standings import match_place, rules_of, standings_input
from store.writes import Change

if TYPE_CHECKING:
    from edge.ws_hub import Hub

log = logging.getLogger("livescore.edge.standings")

DbFactory = Callable[[], AbstractAsyncContextManager[Conn]]

#: Seconds a competition's table waits after a change for more of the burst.
DEBOUNCE = 0.25
#: Change types that can move a table (score, status, kickoff time).
TABLE_CHANGES = frozenset({"score:update", "match:status", "match:update"})
#: Matches whose competition and kickoff are remembered (cleared beyond).
PLACES_CAP = 100_000


def standings_frame(data: dict[str, Any], cause: tuple[int, int] | None) -> bytes:
    """A ``standings:update`` frame of a table document (``livescore.standings.document``);
    ``cause`` the (match, seq) of the change that moved it, None: none (a subscription,
    a rules change)."""
    return orjson.dumps(
        {
            "type": "standings:update",
            "competitionId": data["competition"]["id"],
            "season": data["season"],
            "seq": data["seq"],
            "cause": {"matchId": cause[0], "seq": cause[1]} if cause else None,
            "data": data,
        }
    )


class StandingsPush:
    def __init__(self, hub: Hub, db: DbFactory, *, debounce: float = DEBOUNCE) -> None:
        self.hub = hub
        self.db = db
        self.debounce = debounce
        #: match -> (competition, kickoff)
        self._places: dict[int, tuple[int | None, datetime | None]] = {}
        #: matches being looked up -> the last change seen meanwhile
        self._locating: dict[int, tuple[int, int]] = {}
        #: competition -> kickoffs of the changed matches (their seasons are redone)
        self._dirty: dict[int, set[datetime]] = {}
        self._cause: dict[int, tuple[int, int] | None] = {}
        #: competitions whose rules changed: their current season is pushed whatever it was
        self._rules: set[int] = set()
        self._flushing: set[int] = set()
        #: (competition, season) -> the tables last pushed (to push only a change)
        self._sent: dict[tuple[int, int], bytes] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.reads = 0
        self.pushes = 0
        REGISTRY.counter_callback(
            "livescore_standings_reads_total",
            "Standings computations read from PostgreSQL for the push (one per competition "
            "per debounce window, whatever the number of subscribers)",
            lambda: self.reads,
        )
        REGISTRY.counter_callback(
            "livescore_standings_pushes_total",
            "standings:update frames built (each written to every subscriber)",
            lambda: self.pushes,
        )

    # -- the bus -------------------------------------------------------------------------

    def on_message(self, change: Change) -> None:
        """Bus listener (runs in the event loop, never blocks)."""
        if change.type not in TABLE_CHANGES:
            return
        match_id = change.match_id
        if change.type == "match:update":
            self._places.pop(match_id, None)  # the kickoff (so the season) may have moved
        if not self.hub.competitions:
            return
        cause = (match_id, change.seq)
        place = self._places.get(match_id)
        if place is None:
            if match_id not in self._locating:
                self._spawn(self._locate(match_id))
            self._locating[match_id] = cause
            return
        self._mark(place, cause)

    def on_rules(self, raw: bytes) -> None:
        """``Keys.standings_channel`` listener: a competition's rules changed, so
        every table of it pushed here is out of date: push them again."""
        try:
            competition = changed_competition(raw)
        except ValueError as exc:
            log.warning(kv("standings.bad_signal", error=str(exc)))
            return
        if competition not in self.hub.competitions:
            return
        self._rules.add(competition)
        self._dirty.setdefault(competition, set())
        self._cause.setdefault(competition, None)
        self._start_flush(competition)

    def _mark(self, place: tuple[int | None, datetime | None], cause: tuple[int, int]) -> None:
        competition, start = place
        if competition is None or start is None or competition not in self.hub.competitions:
            return
        self._dirty.setdefault(competition, set()).add(start)
        self._cause[competition] = cause
        self._start_flush(competition)

    def _start_flush(self, competition: int) -> None:
        if competition not in self._flushing:
            self._flushing.add(competition)
            self._spawn(self._flush(competition))

    async def _locate(self, match_id: int) -> None:
        try:
            async with self.db() as conn:
                place = await match_place(conn, match_id)
        except DB_ERRORS as exc:
            self._locating.pop(match_id, None)
            log.warning(kv("standings.locate_failed", match=match_id, error=repr(exc)))
            return
        if len(self._places) >= PLACES_CAP:
            self._places.clear()
        self._places[match_id] = place
        cause = self._locating.pop(match_id, None)
        if cause is not None:
            self._mark(place, cause)

    # -- computing and pushing ------------------------------------------------------------

    async def _flush(self, competition: int) -> None:
        try:
            while competition in self._dirty:
                await asyncio.sleep(self.debounce)
                starts = self._dirty.pop(competition)
                cause = self._cause.pop(competition, None)
                rules = competition in self._rules
                self._rules.discard(competition)
                await self._push(competition, starts, cause, rules=rules)
        finally:
            self._flushing.discard(competition)

    async def _push(
        self,
        competition: int,
        starts: set[datetime],
        cause: tuple[int, int] | None,
        *,
        rules: bool = False,
    ) -> None:
        """Push the tables of the seasons of ``starts`` that changed; with ``rules``
        (the competition's rules changed) also the current season's and every
        season pushed before, changed or not."""
        if competition not in self.hub.competitions:
            return
        frames: list[bytes] = []
        try:
            async with self.db() as conn:
                self.reads += 1
                _, points = await rules_of(conn, competition)
                wanted: list[int | None] = [
                    *sorted({season_of(s, points.season_start_month) for s in starts})
                ]
                if rules:
                    pushed = sorted(s for c, s in self._sent if c == competition)
                    for key in [k for k in self._sent if k[0] == competition]:
                        del self._sent[key]
                    wanted = [None, *pushed, *wanted]
                done: set[int] = set()
                for season in wanted:
                    found = await standings_input(conn, competition, season, clock.now())
                    if found.season in done:
                        continue
                    done.add(found.season)
                    data = found.document(live=True)
                    tables = orjson.dumps(data["tables"])
                    if self._sent.get((competition, found.season)) == tables:
                        continue  # a change that moved nothing in the table (a clock tick)
                    self._sent[(competition, found.season)] = tables
                    frames.append(standings_frame(data, cause))
        except DB_ERRORS as exc:
            log.warning(
                kv(
                    "standings.read_failed",
                    competition=competition,
                    error=repr(exc),
                    hint="the next change of the competition pushes its table again",
                )
            )
            return
        for frame in frames:
            sent = self.hub.send_to_competition(competition, frame)
            self.pushes += 1
            log.debug(kv("standings.pushed", competition=competition, clients=sent))

    # -- lifecycle -----------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(kv("standings.task_failed", task=task.get_name()), exc_info=task.exception())

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task
