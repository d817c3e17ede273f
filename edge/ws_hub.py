"""The WebSocket hub of one edge worker: who is subscribed to what, and
gap-free, encode-once delivery of every published change.

Fan-out. The change bus (ONE Redis Pub/Sub per worker) calls ``on_message``
for each published change. The relay's bytes are the JSON payload of the
frame, so the hub builds the WebSocket frame once (``text_frame``) and
writes those same bytes to every subscriber's transport in one plain loop
(``Session.send``): no per-client encoding, no coroutine per client.

Big fan-outs in slices. A change for more than ``fanout_slice`` subscribers
(``FANOUT_SLICE``) is not written in one go: the hub takes the list of who
must get it and writes it ``fanout_slice`` sockets per event-loop pass, and
no more than ``FANOUT_PASS_S`` of them (``_pump``), so a match followed by
10,000 clients never holds the loop for the whole fan-out (a write to a
loopback socket costs 10 to 160 us of wall-clock time, by machine load: 0.1
to 1.6 s at once). The feed's ``last``, memory and ring move on at once; the
pending writes (``Outgoing``, one per change, in one FIFO for the worker)
keep each client's order because a client is only in the lists of changes
delivered while it was subscribed, and those are written in seq order. A
client that leaves the feed meanwhile is skipped (``Feed.gone``) and rejoins
only once those writes are done; a latest-mode client set aside is skipped
and given its snapshot only once the feed has nothing pending; a reset
writes what is pending first. Joins served from memory are paced the same
way (``JOIN_SLICE`` per pass, ``Turnstile``): a crowd released by one shared
read does not all write its replays in one pass.

Order, no gaps, no duplicates. Each subscribed match has a ``Feed`` that
knows ``last``, the highest seq this worker has delivered for it. A change
with ``seq <= last`` is a duplicate (dropped); ``last + 1`` is delivered; a
jump means changes were lost (published while the subscription was down):
the feed buffers what arrives, reads the missing seqs from the change log
(``store.changes.changes_since``), delivers them in order, then the buffer,
and only then goes live again. When the bus resubscribes (a gap listener),
every feed checks the log the same way.

Joining. A client joins a feed at a position ``P``: its snapshot's seq, or
its ``since``. If the feed is ahead (``P < last``) the client first gets
``P+1..last`` from the log, re-checked after every read, and is added to
the feed's subscribers in the same synchronous step that confirms
``P == last``; if the client is ahead (a snapshot newer than what this
worker has delivered, or a ``since`` seen on another node) it waits, and
the feed promotes it, without sending, when it delivers seq ``P``. Either
way it sees every seq after ``P`` exactly once.

Joins from memory. Each feed also keeps the match as of ``last``
(``snapshot``: the match JSON of the first read, advanced by applying each
delivered change to it, the same fields the REST cache patches,
``edge.cache.PATCHED_FIELDS``) and a ring of the frames of its last
``ring_size`` changes (``LIVESCORE_WS_RING``), contiguous and ending at
``last``. A subscribe gets that snapshot; a resume whose ``since`` the ring
still covers gets the ring's frames; both join in the same synchronous step,
so they cost no database read and keep every rule above. PostgreSQL is read
only for a match's first join on this worker (one read, ``_load``: the
snapshot and the log's last ``ring_size`` changes, shared by every joiner
that arrives meanwhile) and for a resume older than the ring (or ahead of
``last``), which takes the log path above.

Latest-wins. A subscriber that asked for ``mode: latest`` is never closed
for being slow on that match: when its send queue reaches half of
``LIVESCORE_WS_QUEUE`` it leaves the subscribers (``lagging``), nothing more
of the match is written to it, and once its queue has drained it gets one
``snapshot`` frame (the match as of ``last``) and is a subscriber again: the
changes it missed collapse into that frame and its seq never goes back.

Competitions. ``subscribe competitionId`` joins the competition's current
matches (``store.matches.current_matches_of_competition``), each with its own
``subscribed`` frame; a change of a match no feed holds, while competition
subscriptions exist, makes the hub look up the match's competition once and
join that competition's subscribers to it. Between the competition's
``subscribed`` and its matches' frames, ``on_competition_subscribed`` sends the
client the competition's current table (``standings:update``, issue 16).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, suppress
from itertools import islice
from operator import attrgetter
from typing import Any

import orjson

from edge import ws_metrics as metrics
from edge import ws_protocol as wp
from edge.cache import PATCHED_FIELDS
from edge.framework import WRITE_AFTER_CLOSE
from edge.metrics import REGISTRY
from edge.state import DB_ERRORS
from edge.ws_client import MATCH, Session
from livescore import clock
from livescore.errors import NotFound
from livescore.logs import kv
from livescore.supervise import Loop, Loops
from store import change_codec
from store.changes import changes_since, oldest_kept_seq
from store.db import Conn
from store.matches import competition_of, current_matches_of_competition, get_match
from store.writes import Change

log = logging.getLogger("livescore.edge.ws")

DbFactory = Callable[[], AbstractAsyncContextManager[Conn]]


#: Seconds between keepalive pings to one client (its pong must come before the next).
PING_INTERVAL = 20.0
#: Changes read from the log per query while filling or catching up.
LOG_CHUNK = 500
#: Buffered live changes per feed while it fills; beyond this they are
#: dropped and read back from the log (they are committed before published).
PENDING_CAP = 10_000
FILL_BACKOFF_MAX = 5.0
#: Seconds between looks at a lagging latest-mode subscriber's queue.
LAGGING_RECHECK = 0.1
#: Sockets written per event-loop pass by a fan-out (a change for more subscribers
#: is spread over passes); at 10-90 us a loopback write, 5-45 ms of loop per pass.
FANOUT_SLICE = 500
#: ... and at most about this many seconds of them (on a loaded machine a loopback
#: write can take 100 us of wall-clock time), looked at every ``FANOUT_STEP`` writes.
FANOUT_PASS_S = 0.02
FANOUT_STEP = 100
#: Joins served from memory per event-loop pass (each writes its subscribed frame
#: and replay); the others wait for the next pass, in order.
JOIN_SLICE = 100
#: Resumes (by ``since``) whose frames a feed keeps ready until its next change.
RESUMES_KEPT = 16


class ResumeUnavailable(Exception):
    """The change log cannot replay what was asked (pruned, too far, ahead)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AlreadySubscribed(Exception):
    pass


class Turnstile:
    """Lets at most ``per_pass`` callers through per event-loop pass; the others
    wait, in arrival order, for later passes. A caller let through at once does
    not yield to the loop at all."""

    __slots__ = ("_handle", "per_pass", "used", "waiters")

    def __init__(self, per_pass: int) -> None:
        self.per_pass = per_pass
        self.used = 0
        self.waiters: deque[asyncio.Future[None]] = deque()
        self._handle: asyncio.Handle | None = None

    def take(self) -> bool:
        """Through at once, without waiting (False: this pass is full, or others wait)."""
        if self.used < self.per_pass and not self.waiters:
            self.used += 1
            self._arm()
            return True
        return False

    async def enter(self) -> None:
        if self.take():
            return
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        self._arm()
        await waiter

    def _arm(self) -> None:
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_soon(self._next_pass)

    def _next_pass(self) -> None:
        self._handle = None
        self.used = 0
        waiters = self.waiters
        while waiters and self.used < self.per_pass:
            waiter = waiters.popleft()
            if not waiter.done():  # (a cancelled waiter gives its turn away)
                waiter.set_result(None)
                self.used += 1
        if self.used:
            self._arm()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        for waiter in self.waiters:
            waiter.cancel()
        self.waiters.clear()


class Outgoing:
    """One change's frame still to be written to some of its subscribers: those
    of ``sessions`` from ``next`` on (the feed's subscribers when it was delivered)."""

    __slots__ = ("committed", "feed", "frame", "next", "sessions")

    def __init__(
        self, feed: Feed, frame: bytes, sessions: list[Session], committed: float | None
    ) -> None:
        self.feed = feed
        self.frame = frame
        self.sessions = sessions
        self.next = 0
        #: the change's commit time (unix seconds), for the lag once it is all written
        self.committed = committed


_DIRECT = attrgetter("direct")


def frame_of(change: Change) -> bytes:
    """The frame of a change read from the log: the bytes the relay publishes."""
    return wp.text_frame(change_codec.encode(change))


def apply_change_to(snapshot: dict[str, Any], raw: bytes) -> bool:
    """Advance a match's JSON (``store.shapes.match_json``) by one published change
    (its message bytes), in place: the fields the change type carries, its seq and
    ``updatedAt`` (a write sets ``updated_at`` to its changes' ``ts``). False for a
    change type whose effect on the match is not known (the snapshot is then unusable)."""
    body = orjson.loads(raw)
    fields = PATCHED_FIELDS.get(body.get("type"))
    if fields is None:
        return False
    data = body.get("data")
    if isinstance(data, dict):
        for name in fields:
            if name in data:
                snapshot[name] = data[name]
    snapshot["seq"] = body["seq"]
    ts = body.get("ts")
    if ts is not None:
        snapshot["updatedAt"] = ts
    return True


def _observe_lag(committed: float | None) -> None:
    """The commit-to-fan-out lag of a change committed at ``committed`` (unix seconds)."""
    if committed is not None:
        metrics.LAG.labels().observe(max(time.time() - committed, 0.0))


class Feed:
    """One match's delivery state on this worker."""

    __slots__ = (
        "drained",
        "fill_task",
        "gone",
        "joining",
        "lag_timer",
        "lagging",
        "last",
        "loading",
        "match_id",
        "pending",
        "queued",
        "refill",
        "resumes",
        "ring",
        "snapshot",
        "snapshot_frame",
        "subscribers",
        "waiting",
    )

    def __init__(self, match_id: int) -> None:
        self.match_id = match_id
        #: highest seq delivered here; None until the first joiner's read sets it
        self.last: int | None = None
        self.subscribers: set[Session] = set()
        #: sessions ahead of ``last``: promoted (silently) when ``last`` reaches their seq
        self.waiting: dict[Session, int] = {}
        #: live messages held while ``last`` is unknown or a fill runs: seq -> raw
        self.pending: dict[int, bytes] = {}
        self.fill_task: asyncio.Task[None] | None = None
        self.refill = False
        self.joining = 0
        #: the match's JSON as of ``last`` (None: not read yet, or not known exactly)
        self.snapshot: dict[str, Any] | None = None
        #: the ``subscribed`` frame of ``snapshot`` (built once per seq, for every joiner)
        self.snapshot_frame: bytes | None = None
        #: frames of the changes up to ``last``, contiguous (None: the ring is off)
        self.ring: deque[bytes] | None = None
        #: what a resume from ``since`` is sent (its ``subscribed`` frame and the ring's
        #: frames after ``since``), built once per ``since`` while ``last`` holds: in a
        #: reconnect storm every client from the same seq gets the same bytes
        self.resumes: dict[int, list[bytes]] = {}
        #: the first read in flight (every concurrent joiner awaits this one)
        self.loading: asyncio.Task[None] | None = None
        #: latest-mode subscribers held back until their queue drains
        self.lagging: set[Session] = set()
        self.lag_timer: asyncio.TimerHandle | None = None
        #: changes of this feed whose fan-out is still being written (``Outgoing``)
        self.queued = 0
        #: sessions that left while writes were pending (skipped by them)
        self.gone: set[Session] = set()
        #: futures resolved when ``queued`` drops to 0
        self.drained: list[asyncio.Future[None]] = []

    @property
    def live(self) -> bool:
        return self.last is not None and self.fill_task is None

    @property
    def idle(self) -> bool:
        return not self.subscribers and not self.waiting and not self.lagging and self.joining == 0

    async def wait_drained(self) -> None:
        """Until every pending write of this feed is done."""
        while self.queued:
            waiter = asyncio.get_running_loop().create_future()
            self.drained.append(waiter)
            await waiter

    def adopt(self, snapshot: dict[str, Any], rows: list[Change], ring_size: int) -> None:
        """Take a snapshot read at ``last`` (and the log's changes up to it) as the
        feed's memory; the ring keeps the contiguous run of ``rows`` ending at ``last``."""
        self.snapshot = snapshot
        self.snapshot_frame = None
        self.resumes.clear()
        if ring_size <= 0:
            self.ring = None
            return
        tail: list[bytes] = []
        expected = self.last
        for row in reversed(rows):
            if row.seq > (self.last or 0):
                continue
            if row.seq != expected:
                break
            tail.append(frame_of(row))
            expected = row.seq - 1
        tail.reverse()
        self.ring = deque(tail, maxlen=ring_size)

    def advance(self, raw: bytes, frame: bytes) -> None:
        """Keep the memory at ``last`` after delivering one change."""
        if self.ring is not None:
            self.ring.append(frame)
        if self.resumes:
            self.resumes.clear()
        snapshot = self.snapshot
        if snapshot is not None:
            self.snapshot_frame = None
            if not apply_change_to(snapshot, raw):
                log.warning(kv("ws.snapshot_unknown_change", match=self.match_id))
                self.snapshot = None


class Hub:
    def __init__(
        self,
        db: DbFactory,
        *,
        node: str,
        max_subscriptions: int,
        ping_interval: float = PING_INTERVAL,
        ring_size: int | None = None,
        fanout_slice: int = FANOUT_SLICE,
        join_slice: int = JOIN_SLICE,
    ) -> None:
        """``ring_size``: changes kept per feed for resumes (``LIVESCORE_WS_RING``; 0:
        none, subscribes are still served from the snapshot); None: no joins from
        memory at all, every join reads the database (and a joiner may get a snapshot
        newer than what this worker delivered). ``fanout_slice``: sockets written per
        event-loop pass by one fan-out; ``join_slice``: joins from memory per pass."""
        self.db = db
        self.memory = ring_size is not None
        self.ring_size = ring_size or 0
        self.ping_interval = ping_interval
        self.node = node
        #: the ``welcome`` frame every client gets first (the same bytes for all)
        self.welcome_frame = wp.text_frame(wp.welcome(node))
        self.max_subscriptions = max_subscriptions
        self.feeds: dict[int, Feed] = {}
        self.sessions: set[Session] = set()
        self.fanout_slice = max(1, fanout_slice)
        #: fan-outs still being written, oldest first (``_pump`` writes a slice per pass)
        self.outbox: deque[Outgoing] = deque()
        self._pump_handle: asyncio.Handle | None = None
        self._turnstile = Turnstile(max(1, join_slice))
        #: sessions detached so far (the GC freezer's measure of turnover)
        self.closed_total = 0
        self.competitions: dict[int, set[Session]] = {}
        #: awaited right after a competition's ``subscribed`` (before its matches join):
        #: sends the client the current table (``edge.routes_standings``)
        self.on_competition_subscribed: Callable[[Session, int], Awaitable[None]] | None = None
        self._competition_of: dict[int, int | None] = {}
        self._probing: set[int] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._loops: Loops | None = None
        REGISTRY.gauge_callback(
            "livescore_ws_connections", "Open WebSocket connections", lambda: len(self.sessions)
        )
        REGISTRY.gauge_callback(
            "livescore_ws_subscriptions",
            "Subscriptions held (matches and competitions) by this node's clients",
            self.subscription_count,
        )
        REGISTRY.gauge_callback(
            "livescore_ws_matches",
            "Matches with subscribers (each worker's counted)",
            lambda: len(self.feeds),
        )

    def subscription_count(self) -> int:
        """Subscriptions held by this worker's clients (``Session.subscriptions`` summed):
        the direct matches summed in C, and the competitions' member sets (each
        session in ``competitions[c]`` holds ``c``). Read on every ``/metrics``
        scrape, so it must not run Python code per client (at 10,000 clients, a
        scrape every half second during a storm cost 20 ms of the loop each)."""
        direct: int = sum(map(_DIRECT, self.sessions))
        return direct + sum(map(len, self.competitions.values()))

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, loops: Loops) -> None:
        """Start the keepalive as a supervised loop of ``loops`` (call from the running loop)."""
        self._loops = loops
        every = self.ping_interval / max(1, round(self.ping_interval))
        loops.supervise("keepalive", self._keepalive, interval=max(every, 1.0) * 2)

    async def _keepalive(self, beat: Loop) -> None:
        """Check every client every ``ping_interval`` seconds, a slice each second
        (no task per connection): a client that has not answered the previous
        ping is closed with 1011; one whose TCP was quiet for the interval gets
        a ping (one ready-made frame for all); one that ACKed frames or sent
        something meanwhile is known to be there and gets none."""
        loop = asyncio.get_running_loop()
        slices = max(1, round(self.ping_interval))
        tick = 0
        while True:
            await asyncio.sleep(self.ping_interval / slices)
            beat.beat()
            tick += 1
            for session in list(self.sessions)[tick % slices :: slices]:
                if not session.closed and not session.keepalive(loop, self.ping_interval):
                    session.close(wp.CLOSE_INTERNAL, "no pong to the last ping")

    def attach(self, session: Session) -> None:
        session.on_dead = self._on_dead
        self.sessions.add(session)

    def detach(self, session: Session) -> None:
        """Forget a session everywhere (its socket closed or was dropped)."""
        if session in self.sessions:
            self.closed_total += 1
        self.sessions.discard(session)
        session.closed = True
        for match_id in list(session.reasons):
            self._leave(session, match_id)
        for competition_id in session.competitions:
            members = self.competitions.get(competition_id)
            if members is not None:
                members.discard(session)
                if not members:
                    del self.competitions[competition_id]
        session.competitions.clear()

    def _on_dead(self, session: Session, slow: bool) -> None:
        # Called from inside a fan-out loop: never change a subscriber set here.
        if slow:
            metrics.DROPPED_SLOW.labels().inc()
        asyncio.get_running_loop().call_soon(self.detach, session)

    async def stop(self) -> None:
        self._stopping = True
        if self._pump_handle is not None:
            self._pump_handle.cancel()
            self._pump_handle = None
        self._turnstile.close()
        if self._loops is not None and "keepalive" in self._loops.loops:
            await self._loops.stop("keepalive")
        tasks = list(self._tasks)  # fills included
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        """Done callback of every hub task: a failure is logged, never lost."""
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(kv("ws.task_failed", task=task.get_name()), exc_info=task.exception())

    # -- the bus -------------------------------------------------------------------------

    def on_message(self, message: Change) -> None:
        """Bus listener: one published change (runs in the event loop, never blocks)."""
        raw = change_codec.encode(message)  # the bytes as published
        feed = self.feeds.get(message.match_id)
        if feed is None:
            if self.competitions:
                self._probe(message.match_id)
            return
        if not feed.live:
            self._hold(feed, message.seq, raw)
            return
        assert feed.last is not None
        if message.seq <= feed.last:
            metrics.DUPLICATES.labels().inc()
            return
        if message.seq == feed.last + 1:
            committed = message.created_at.timestamp() if message.created_at else None
            self._deliver(feed, message.seq, raw, committed)
            return
        log.info(kv("ws.gap", match=feed.match_id, last=feed.last, got=message.seq))
        self._hold(feed, message.seq, raw)
        self._fill(feed, "jump")

    def on_gap(self) -> None:
        """Bus gap listener: the subscription was (re)made; changes may have been lost."""
        for feed in self.feeds.values():
            if feed.last is not None:
                self._fill(feed, "bus")

    def _hold(self, feed: Feed, seq: int, raw: bytes) -> None:
        if len(feed.pending) < PENDING_CAP:
            feed.pending[seq] = raw
        else:
            feed.refill = True  # the log has it: it was committed before it was published

    def _deliver(self, feed: Feed, seq: int, raw: bytes, committed: float | None = None) -> None:
        """Write seq's frame (``raw``: its message) to every subscriber; ``seq`` must
        be ``last + 1``. ``committed``: the change's commit time, for the lag metric.

        Up to ``fanout_slice`` subscribers (and nothing of the feed pending) it is
        written at once (``_write``); more are handed to the pump (``Outgoing``),
        which writes them a slice per event-loop pass after the feed's earlier
        changes. Either way ``last``, the snapshot and the ring move on now, and
        a session waiting for this seq becomes a subscriber (of the next one)."""
        frame = wp.text_frame(raw)
        subscribers = feed.subscribers
        count = len(subscribers)
        lagging: list[Session] | None = None
        if feed.queued or count > self.fanout_slice:
            if count:
                self._enqueue(Outgoing(feed, frame, list(subscribers), committed))
            else:
                _observe_lag(committed)
        else:
            lagging = self._write(feed, frame, subscribers)
            _observe_lag(committed)
        metrics.SENT.labels().inc(count)
        feed.last = seq
        feed.advance(raw, frame)
        if lagging is not None:
            self._set_aside(feed, lagging)
        elif feed.lagging:
            self._catch_up_lagging(feed)
        if feed.waiting:
            for session, floor in list(feed.waiting.items()):
                if floor <= seq:
                    del feed.waiting[session]
                    if not session.closed:
                        subscribers.add(session)

    def _write(
        self,
        feed: Feed,
        frame: bytes,
        sessions: Iterable[Session],
        gone: set[Session] | None = None,
        aside: set[Session] | None = None,
    ) -> list[Session] | None:
        """Write one frame to ``sessions`` (but closed ones and those in ``gone`` or
        ``aside``); the latest-mode subscribers whose queue reached half its limit
        (or None).

        The loop is ``Session.send`` inlined: one C call to the transport per
        client, the bookkeeping only for a client whose buffer is not empty.
        It reads nothing but the session and its transport: ``closed`` is set
        the moment the WebSocket leaves OPEN (``ws_lean.Connection`` tells it), so
        no per-client look at the protocol object is needed here. A write to
        a socket that closed under us raises ``framework.WRITE_AFTER_CLOSE``
        (uvloop's RuntimeError; the name is looked up only when it raises)."""
        size = len(frame)
        match_id = feed.match_id
        lagging: list[Session] | None = None
        for session in sessions:
            if (
                session.closed
                or (gone is not None and session in gone)
                or (aside is not None and session in aside)
            ):
                continue
            transport = session.transport
            try:
                transport.write(frame)
            except WRITE_AFTER_CLOSE:  # closed under us; its connection_lost is on its way
                session.left_open()
                continue
            buffered = transport.get_write_buffer_size()
            if buffered:
                if (
                    session.queued_frame(size, buffered)
                    and session.latest is not None
                    and session.queued_now() >= session.warn_at
                    and match_id in session.latest
                ):
                    if lagging is None:
                        lagging = []
                    lagging.append(session)
            elif session.frame_ends is not None:
                session.frame_ends = None
        return lagging

    def _set_aside(self, feed: Feed, lagging: list[Session]) -> None:
        """Latest-mode subscribers too far behind leave the subscribers until they drain."""
        for session in lagging:
            feed.subscribers.discard(session)
            feed.lagging.add(session)
        self._watch_lagging(feed)

    # -- fan-outs in slices --------------------------------------------------------------

    def _enqueue(self, out: Outgoing) -> None:
        self.outbox.append(out)
        out.feed.queued += 1
        if self._pump_handle is None and not self._stopping:
            self._pump_handle = asyncio.get_running_loop().call_soon(self._pump)

    def _pump(self) -> None:
        """One event-loop pass of the pending fan-outs: ``fanout_slice`` sockets or
        ``FANOUT_PASS_S`` seconds, whichever comes first (at least ``FANOUT_STEP``
        sockets), oldest change first; again on the next pass while any is left."""
        self._pump_handle = None
        if self._stopping:
            return
        outbox = self.outbox
        budget = self.fanout_slice
        until = time.perf_counter() + FANOUT_PASS_S
        while outbox and budget > 0:
            out = outbox[0]
            budget -= self._write_some(out, min(budget, FANOUT_STEP))
            if out.next >= len(out.sessions):
                outbox.popleft()
                self._written(out)
            if time.perf_counter() >= until:
                break
        if outbox:
            self._pump_handle = asyncio.get_running_loop().call_soon(self._pump)

    def _write_some(self, out: Outgoing, budget: int) -> int:
        """Write ``out``'s frame to its next ``budget`` sessions; how many were taken.
        Skipped: sessions that left the feed since (``gone``) and latest-mode ones
        set aside (``lagging``: they get a snapshot once the feed is drained)."""
        feed = out.feed
        start = out.next
        end = min(start + budget, len(out.sessions))
        lagging = self._write(
            feed,
            out.frame,
            islice(out.sessions, start, end),
            feed.gone or None,
            feed.lagging or None,
        )
        out.next = end
        if lagging is not None:
            self._set_aside(feed, lagging)
        return end - start

    def _written(self, out: Outgoing) -> None:
        """``out`` has reached every session it had to."""
        _observe_lag(out.committed)
        feed = out.feed
        feed.queued -= 1
        if feed.queued == 0:
            feed.gone.clear()
            drained, feed.drained = feed.drained, []
            for waiter in drained:
                if not waiter.done():
                    waiter.set_result(None)

    def _flush(self, feed: Feed) -> None:
        """Write everything still pending for ``feed`` now (before a reset)."""
        if not feed.queued:
            return
        for out in [o for o in self.outbox if o.feed is feed]:
            self._write_some(out, len(out.sessions))
            self.outbox.remove(out)
            self._written(out)

    def _drain_pending(self, feed: Feed) -> bool:
        """Deliver held changes that follow ``last``; False if a gap remains."""
        assert feed.last is not None
        for seq in sorted(feed.pending):
            raw = feed.pending.pop(seq)
            if seq <= feed.last:
                metrics.DUPLICATES.labels().inc()
            elif seq == feed.last + 1:
                self._deliver(feed, seq, raw)
            else:
                feed.pending[seq] = raw
                return False
        return not feed.refill

    # -- gap fill ------------------------------------------------------------------------

    def _fill(self, feed: Feed, reason: str) -> None:
        if feed.fill_task is not None:
            feed.refill = True
            return
        metrics.GAP_FILLS.labels(reason).inc()
        feed.fill_task = self._spawn(self._run_fill(feed))

    async def _run_fill(self, feed: Feed) -> None:
        backoff = 0.1
        try:
            while not self._stopping:
                feed.refill = False
                # Changes held now were committed before this read starts, so the
                # read must reach them; one held later may follow a change the read
                # could not see yet, and only asks for another read.
                held = max(feed.pending, default=None)
                try:
                    await self._fill_once(feed)
                    self._drain_pending(feed)
                    if held is not None and feed.last is not None and feed.last < held:
                        # the log lacks what comes before a change it must hold: pruned
                        await self._reset(feed)
                except DB_ERRORS as exc:
                    log.warning(kv("ws.fill_failed", match=feed.match_id, error=repr(exc)))
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, FILL_BACKOFF_MAX)
                    feed.refill = True
                    continue
                backoff = 0.1
                if self._drain_pending(feed):
                    return
        finally:
            feed.fill_task = None
            if self.feeds.get(feed.match_id) is feed and feed.idle:
                del self.feeds[feed.match_id]

    async def _fill_once(self, feed: Feed) -> None:
        """Deliver what the log holds after ``last``."""
        assert feed.last is not None
        while True:
            async with self.db() as conn:
                rows = await changes_since(conn, feed.match_id, feed.last, limit=LOG_CHUNK)
            if rows and rows[0].seq != feed.last + 1:
                log.warning(kv("ws.log_pruned", match=feed.match_id, last=feed.last))
                await self._reset(feed)
                return
            for row in rows:
                if row.seq == feed.last + 1:
                    self._deliver(feed, row.seq, change_codec.encode(row))
            if len(rows) < LOG_CHUNK:
                return

    async def _reset(self, feed: Feed) -> None:
        """The log cannot fill this feed: give everyone a fresh snapshot and go on from it."""
        metrics.RESETS.labels().inc()
        async with self.db() as conn:
            snapshot = await get_match(conn, feed.match_id)
        seq = int(snapshot["seq"])
        feed.last = seq
        if self.memory:
            feed.adopt(dict(snapshot), [], self.ring_size)
        feed.pending = {s: raw for s, raw in feed.pending.items() if s > seq}
        self._flush(feed)  # what they were sent before comes before the fresh snapshot
        members = list(feed.subscribers) + list(feed.waiting) + list(feed.lagging)
        feed.waiting.clear()
        feed.lagging.clear()
        for session in members:
            session.send_payload(
                wp.error(
                    "resume_unavailable",
                    "changes were lost and the log no longer holds them; fresh snapshot follows",
                    matchId=feed.match_id,
                    reason="pruned",
                )
            )
            session.send_payload(wp.subscribed(feed.match_id, seq, snapshot))
            if not session.closed:
                feed.subscribers.add(session)

    # -- joining -------------------------------------------------------------------------

    async def subscribe(
        self, session: Session, match_id: int, since: int | None, *, latest: bool = False
    ) -> None:
        """Raises ProtocolError (told to the client by the caller). ``latest``: the
        client asked for latest-wins delivery of this match (``mode: latest``)."""
        if session.has(match_id, MATCH):
            raise wp.ProtocolError(
                "bad_frame", f"already subscribed to match {match_id}", matchId=match_id
            )
        if session.subscriptions >= self.max_subscriptions:
            raise wp.ProtocolError(
                "too_many_subscriptions",
                f"at most {self.max_subscriptions} subscriptions per connection; "
                "unsubscribe from something first",
                matchId=match_id,
            )
        if latest:
            session.want_latest(match_id)
        if match_id in session.reasons:  # already delivered through a competition
            session.add_reason(match_id, MATCH)
            feed = self.feeds.get(match_id)
            if feed is not None and feed.queued:  # its position: what it has been sent
                await feed.wait_drained()
            position = self._position(session, match_id)
            if position is not None:  # (else its join is running and will say so itself)
                session.send_payload(wp.subscribed(match_id, position, None, resumed=True))
            return
        await self.join(session, match_id, since, MATCH)

    def subscribe_now(
        self, session: Session, match_id: int, since: int | None, *, latest: bool = False
    ) -> bool:
        """``subscribe`` done at once, when the feed's memory serves it and nothing
        needs waiting for: no task, no coroutine (in a reconnect storm, nearly every
        join). False (nothing done) otherwise: the feed's first read or a fan-out a
        client that just left is still in, this pass's turnstile full (or others
        waiting), a resume the ring cannot serve, a subscribe to refuse or one of
        a match the client already has through a competition; ``subscribe`` then
        does it (the same rules, the same frames)."""
        if (
            not self.memory
            or match_id in session.reasons
            or session.subscriptions >= self.max_subscriptions
        ):
            return False
        feed = self.feeds.get(match_id)
        if (
            feed is None
            or feed.loading is not None
            or session in feed.gone
            or not self._memory_serves(feed, since)
            or not self._turnstile.take()
        ):
            return False
        if latest:
            session.want_latest(match_id)
        session.add_reason(match_id, MATCH)
        self._join_from_memory(session, feed, since, None)
        metrics.JOINS.labels("memory").inc()
        if session.closed:
            self._leave(session, match_id)
        return True

    def _position(self, session: Session, match_id: int) -> int | None:
        """The seq this session has been sent up to for a match it is in."""
        feed = self.feeds.get(match_id)
        if feed is None:
            return None
        if session in feed.subscribers or session in feed.lagging:
            return feed.last
        return feed.waiting.get(session)

    async def join(
        self, session: Session, match_id: int, since: int | None, reason: int | str
    ) -> None:
        """Add ``session`` to the match's feed at its snapshot (or ``since``)."""
        if match_id in session.reasons:
            session.add_reason(match_id, reason)
            return
        session.add_reason(match_id, reason)
        feed = self.feeds.get(match_id)
        if feed is None:
            feed = self.feeds[match_id] = Feed(match_id)
        feed.joining += 1
        joined = False
        try:
            if session in feed.gone:  # left moments ago: its old fan-outs finish first
                await feed.wait_drained()
            await self._join(session, feed, since, reason)
            joined = True
        except NotFound:
            session.latest_done(match_id)
            raise wp.ProtocolError(
                "unknown_match", f"match {match_id} does not exist", matchId=match_id
            ) from None
        except DB_ERRORS as exc:
            log.warning(kv("ws.join_failed", match=match_id, error=repr(exc)))
            raise wp.ProtocolError(
                "unavailable", "the database is not answering; try again shortly", matchId=match_id
            ) from exc
        finally:
            feed.joining -= 1
            if not joined or session.closed:
                self._leave(session, match_id)
            elif feed.idle:
                self._drop_feed(feed)

    async def _join(
        self, session: Session, feed: Feed, since: int | None, reason: int | str
    ) -> None:
        competition_id = reason if isinstance(reason, int) else None
        if self.memory:
            if feed.last is None or feed.loading is not None:
                await self._load(feed)
            await self._turnstile.enter()
            if self._join_from_memory(session, feed, since, competition_id):
                metrics.JOINS.labels("memory").inc()
                return
        metrics.JOINS.labels("database").inc()
        await self._join_from_log(session, feed, since, competition_id)

    async def _load(self, feed: Feed) -> None:
        """The feed's first read, shared by every joiner that arrives while it runs."""
        task = feed.loading
        if task is None:
            task = feed.loading = asyncio.get_running_loop().create_task(self._load_once(feed))
            self._tasks.add(task)
            task.add_done_callback(lambda done: self._loaded(feed, done))
        await asyncio.shield(task)

    def _loaded(self, feed: Feed, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if feed.loading is task:
            feed.loading = None
        if not task.cancelled():
            task.exception()  # every joiner gets it; retrieved here so none is reported lost

    async def _load_once(self, feed: Feed) -> None:
        """Read the match and the log's last ``ring_size`` changes (one connection)."""
        match_id = feed.match_id
        prefill = min(self.ring_size, wp.RESUME_LIMIT)
        rows: list[Change] = []
        async with self.db() as conn:
            snapshot = await get_match(conn, match_id)
            seq = int(snapshot["seq"])
            if prefill > 0 and seq > 0:
                rows = await changes_since(conn, match_id, max(0, seq - prefill), limit=prefill)
        metrics.SNAPSHOT_READS.labels().inc()
        self._competition_of[match_id] = (snapshot.get("competition") or {}).get("id")
        if feed.last is None:
            feed.last = seq
            feed.adopt(snapshot, rows, self.ring_size)
            if not self._drain_pending(feed):
                self._fill(feed, "jump")
        elif feed.last == seq and feed.snapshot is None:
            feed.adopt(snapshot, rows, self.ring_size)

    def _join_from_memory(
        self, session: Session, feed: Feed, since: int | None, competition_id: int | None
    ) -> bool:
        """Join at ``last`` from the feed's snapshot or ring, without a database read
        (False: the memory cannot serve this join; the log path will)."""
        if not self._memory_serves(feed, since):
            return False
        last, snapshot = feed.last, feed.snapshot
        assert last is not None and snapshot is not None
        match_id = feed.match_id
        if since is None or last - since > wp.RESUME_LIMIT:
            if since is not None:
                self._resume_refused(
                    session,
                    match_id,
                    since,
                    f"{last - since} changes missed; at most {wp.RESUME_LIMIT} are replayed",
                )
            if competition_id is None:
                frame = feed.snapshot_frame
                if frame is None:
                    frame = feed.snapshot_frame = wp.text_frame(
                        wp.subscribed(match_id, last, snapshot)
                    )
                session.send(frame)
            else:
                session.send_payload(
                    wp.subscribed(match_id, last, snapshot, competition_id=competition_id)
                )
        else:
            frames = feed.resumes.get(since) if competition_id is None else None
            if frames is None:
                frames = [
                    wp.text_frame(
                        wp.subscribed(
                            match_id, since, None, competition_id=competition_id, resumed=True
                        )
                    )
                ]
                missed = last - since
                if feed.ring is not None and missed:
                    tail = list(islice(reversed(feed.ring), missed))  # from the newest end
                    tail.reverse()
                    frames.extend(tail)
                if competition_id is None and len(feed.resumes) < RESUMES_KEPT:
                    feed.resumes[since] = frames
            session.send_many(frames)
        if not session.closed:
            feed.subscribers.add(session)
        return True

    @staticmethod
    def _memory_serves(feed: Feed, since: int | None) -> bool:
        """Can the feed's memory serve a join from ``since`` (None: a subscribe)?
        Its snapshot must be known; a resume must not be ahead of ``last``, and
        the ring must hold what it missed (unless that is more than is ever
        replayed: it then gets ``resume_unavailable`` and the snapshot)."""
        last = feed.last
        if last is None or feed.snapshot is None:
            return False
        if since is None:
            return True
        missed = last - since
        if missed < 0:
            return False
        if missed == 0 or missed > wp.RESUME_LIMIT:
            return True
        return feed.ring is not None and missed <= len(feed.ring)

    async def _join_from_log(
        self, session: Session, feed: Feed, since: int | None, competition_id: int | None
    ) -> None:
        """Join through the database: the snapshot, and for a resume the log."""
        match_id = feed.match_id
        oldest: int | None = None
        async with self.db() as conn:
            snapshot = await get_match(conn, match_id)
            seq = int(snapshot["seq"])
            if since is not None and since < seq:
                oldest = await oldest_kept_seq(conn, match_id)
        self._competition_of[match_id] = (snapshot.get("competition") or {}).get("id")
        if feed.last is None:
            feed.last = seq
            if self.memory:
                feed.adopt(dict(snapshot), [], self.ring_size)
            if not self._drain_pending(feed):
                self._fill(feed, "jump")
        elif self.memory and feed.last == seq and feed.snapshot is None:
            feed.adopt(dict(snapshot), [], self.ring_size)
        position = seq
        resumed = False
        if since is not None:
            problem = None
            if since > seq:
                problem = f"since={since} is ahead of the match (seq {seq})"
            elif seq - since > wp.RESUME_LIMIT:
                problem = f"{seq - since} changes missed; at most {wp.RESUME_LIMIT} are replayed"
            elif since < seq and (oldest is None or oldest > since + 1):
                problem = f"the change log keeps seq {oldest} on only"
            if problem is None:
                position = since
                resumed = True
                session.send_payload(
                    wp.subscribed(
                        match_id, since, None, competition_id=competition_id, resumed=True
                    )
                )
            else:
                self._resume_refused(session, match_id, since, problem)
        if not resumed:  # (since == seq resumes too: one subscribed frame, not two)
            session.send_payload(
                wp.subscribed(match_id, seq, snapshot, competition_id=competition_id)
            )
        try:
            await self._catch_up(session, feed, position)
        except ResumeUnavailable as exc:
            self._resume_refused(session, match_id, position, exc.reason)
            async with self.db() as conn:
                snapshot = await get_match(conn, match_id)
            position = int(snapshot["seq"])
            session.send_payload(
                wp.subscribed(match_id, position, snapshot, competition_id=competition_id)
            )
            await self._catch_up(session, feed, position)

    def _resume_refused(self, session: Session, match_id: int, since: int, why: str) -> None:
        metrics.ERRORS.labels("resume_unavailable").inc()
        session.send_payload(
            wp.error(
                "resume_unavailable",
                f"cannot replay from seq {since}: {why}; a fresh snapshot follows",
                matchId=match_id,
                since=since,
            )
        )

    async def _catch_up(self, session: Session, feed: Feed, position: int) -> None:
        """Send the log from ``position`` until the feed is reached, then join it."""
        while not session.closed:
            last = feed.last
            assert last is not None
            if position >= last:
                if position == last:
                    feed.subscribers.add(session)
                else:
                    feed.waiting[session] = position
                return
            async with self.db() as conn:
                rows = await changes_since(
                    conn, feed.match_id, position, limit=min(last - position, LOG_CHUNK)
                )
            if not rows or rows[0].seq != position + 1:
                raise ResumeUnavailable("the change log no longer holds those changes")
            for row in rows:
                if row.seq != position + 1:
                    raise ResumeUnavailable("the change log has a hole")
                session.send(frame_of(row))
                position = row.seq

    def _leave(self, session: Session, match_id: int) -> None:
        session.forget(match_id)
        feed = self.feeds.get(match_id)
        if feed is None:
            return
        feed.subscribers.discard(session)
        feed.waiting.pop(session, None)
        feed.lagging.discard(session)
        if feed.queued and not session.closed:  # pending fan-outs must not write to it
            feed.gone.add(session)
        if feed.idle:
            self._drop_feed(feed)

    # -- latest-wins ---------------------------------------------------------------------

    def _watch_lagging(self, feed: Feed) -> None:
        """Look at the lagging subscribers' queues again shortly (and until none is left)."""
        if feed.lag_timer is None and feed.lagging:
            feed.lag_timer = asyncio.get_running_loop().call_later(
                LAGGING_RECHECK, self._lagging_tick, feed
            )

    def _lagging_tick(self, feed: Feed) -> None:
        feed.lag_timer = None
        if self._stopping or self.feeds.get(feed.match_id) is not feed:
            return
        self._catch_up_lagging(feed)
        self._watch_lagging(feed)

    def _catch_up_lagging(self, feed: Feed) -> None:
        """Each lagging subscriber whose queue has drained to a quarter of its limit
        gets one ``snapshot`` frame (the match as of ``last``) and is live again."""
        if feed.queued:  # they may still be in a pending fan-out's list: after it
            return
        snapshot, last = feed.snapshot, feed.last
        frame: bytes | None = None
        for session in list(feed.lagging):
            if session.closed:
                feed.lagging.discard(session)
                continue
            if session.queued_now() > session.warn_at // 2:
                continue
            if snapshot is None or last is None:  # not known exactly: exact delivery's rule
                feed.lagging.discard(session)
                session.close(wp.CLOSE_SLOW, "slow consumer: the match state is not at hand")
                continue
            if frame is None:
                frame = wp.text_frame(wp.snapshot(feed.match_id, last, snapshot))
            feed.lagging.discard(session)
            metrics.COLLAPSED.labels().inc()
            if session.send(frame):
                feed.subscribers.add(session)

    def _drop_feed(self, feed: Feed) -> None:
        if feed.fill_task is None and self.feeds.get(feed.match_id) is feed:
            del self.feeds[feed.match_id]
            if feed.lag_timer is not None:
                feed.lag_timer.cancel()
                feed.lag_timer = None

    def unsubscribe(self, session: Session, match_id: int) -> None:
        if not session.has(match_id, MATCH):
            raise wp.ProtocolError(
                "not_subscribed", f"not subscribed to match {match_id}", matchId=match_id
            )
        if session.drop_reason(match_id, MATCH):
            self._leave(session, match_id)

    # -- competitions --------------------------------------------------------------------

    async def subscribe_competition(self, session: Session, competition_id: int) -> None:
        if competition_id in session.competitions:
            raise wp.ProtocolError(
                "bad_frame",
                f"already subscribed to competition {competition_id}",
                competitionId=competition_id,
            )
        if session.subscriptions >= self.max_subscriptions:
            raise wp.ProtocolError(
                "too_many_subscriptions",
                f"at most {self.max_subscriptions} subscriptions per connection",
                competitionId=competition_id,
            )
        try:
            async with self.db() as conn:
                matches = await current_matches_of_competition(conn, competition_id, clock.now())
        except NotFound:
            raise wp.ProtocolError(
                "unknown_competition",
                f"competition {competition_id} does not exist",
                competitionId=competition_id,
            ) from None
        except DB_ERRORS as exc:
            raise wp.ProtocolError(
                "unavailable", "the database is not answering; try again shortly"
            ) from exc
        session.competitions.add(competition_id)
        self.competitions.setdefault(competition_id, set()).add(session)
        ids = [int(m["id"]) for m in matches]
        session.send_payload(wp.subscribed_competition(competition_id, ids))
        if self.on_competition_subscribed is not None:
            await self.on_competition_subscribed(session, competition_id)
        for match_id in ids:
            if session.closed:
                return
            await self._join_quietly(session, match_id, competition_id)

    async def _join_quietly(self, session: Session, match_id: int, competition_id: int) -> None:
        try:
            await self.join(session, match_id, None, competition_id)
        except wp.ProtocolError as exc:
            session.send_payload(exc.frame())

    def unsubscribe_competition(self, session: Session, competition_id: int) -> None:
        if competition_id not in session.competitions:
            raise wp.ProtocolError(
                "not_subscribed",
                f"not subscribed to competition {competition_id}",
                competitionId=competition_id,
            )
        session.competitions.discard(competition_id)
        members = self.competitions.get(competition_id)
        if members is not None:
            members.discard(session)
            if not members:
                del self.competitions[competition_id]
        for match_id in list(session.reasons):
            if session.drop_reason(match_id, competition_id):
                self._leave(session, match_id)

    def _probe(self, match_id: int) -> None:
        """A change of a match nobody here follows: does a subscribed competition own it?"""
        if match_id in self._competition_of:
            competition_id = self._competition_of[match_id]
            if competition_id is not None and competition_id in self.competitions:
                self._spawn(self._join_competition_members(match_id, competition_id))
            return
        if match_id not in self._probing:
            self._probing.add(match_id)
            self._spawn(self._probe_db(match_id))

    async def _probe_db(self, match_id: int) -> None:
        try:
            async with self.db() as conn:
                competition_id = await competition_of(conn, match_id)
        except DB_ERRORS as exc:
            log.warning(kv("ws.probe_failed", match=match_id, error=repr(exc)))
            return
        finally:
            self._probing.discard(match_id)
        if len(self._competition_of) > 100_000:
            self._competition_of.clear()
        self._competition_of[match_id] = competition_id
        if competition_id is not None and competition_id in self.competitions:
            await self._join_competition_members(match_id, competition_id)

    def send_to_competition(self, competition_id: int, payload: bytes) -> int:
        """Write one JSON payload (a ``standings:update``, ``edge.standings_push``) to
        every session subscribed to the competition, framed once; how many took it."""
        frame = wp.text_frame(payload)
        return sum(1 for s in list(self.competitions.get(competition_id, ())) if s.send(frame))

    async def _join_competition_members(self, match_id: int, competition_id: int) -> None:
        for session in list(self.competitions.get(competition_id, ())):
            if match_id not in session.reasons and not session.closed:
                await self._join_quietly(session, match_id, competition_id)
