"""Ingestion: one feed's observations in, reconciled match changes out.

One provider response is ingested in a few round trips (``store.ingest_batch``):

1. **Seen before.** Each worker remembers, per feed and provider match id,
   the fingerprint of the feed's latest observation it ingested or confirmed
   (``SeenCache``, in memory). An observation with that fingerprint, seen
   again within ``stale_after``, is confirmed against PostgreSQL for the
   whole response in ONE statement that also marks it seen now; a pair that
   is no longer the feed's latest (another worker recorded something newer,
   a restart lost nothing since the cache starts empty) is simply not
   confirmed and goes the full way: a stale fingerprint never suppresses a
   real change. A confirmed observation changes nothing, so nothing else is
   done for it (time-driven decisions are the sweep's).
2. **Resolve** the rest: one crosswalk lookup for the response; an unknown id
   takes the slow path of ``pipeline.resolve`` in its own transaction
   (advisory-locked, may create the match; ambiguous ones are recorded as
   rejected).
3. **One transaction per chunk** of the rest (at most ``CHUNK``
   observations; when polling, spread over ``PARALLEL`` transactions at once,
   each on its own connection): lock their matches in id order, record the
   observations once (the fingerprint's unique key turns the same data seen
   again into a freshness touch, never a second row), read every feed's
   latest view and every event of those matches in one query each, run
   ``pipeline.reconcile.settle`` per match, apply each patch through the
   store's single write path (``store.writes.apply_change``), and record the
   outcomes (applied / ignored / rejected with the reason) and ``stale``
   flags in one statement each. An observation identical to its feed's
   latest one, seen while that view was still fresh, is not reconciled (the
   same rule as the cache's, so a restart changes no outcome).

A response listing one provider match twice is ingested in rounds, in order,
so each round holds one observation per match: reconciling each match once
per round gives what reconciling observation by observation gives.

The poll job, ``livescore ingest --once`` and ``livescore replay`` all call
``ingest_observations``. ``at`` is the observation time: now when polling,
the recorded fetch time when replaying (so a replay is reproducible).
"""

from __future__ import annotations

import asyncio
import logging
import math
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from livescore.errors import PipelineError, StoreError
from livescore.logs import kv
from livescore.model import EventType, MatchObservation
from pipeline import observation_codec as codec
from pipeline.decision import ProviderView, ReconcilePolicy
from pipeline.event_merge import ExistingEvent
from pipeline.reconcile import settle
from pipeline.resolve import Ambiguous, resolve
from store import events as store_events
from store import ingest_batch, observations
from store.db import Conn, Pool, atomic
from store.matches import lock_state, set_stale
from store.writes import Change, apply_change

log = logging.getLogger("livescore.pipeline.ingest")


@dataclass
class IngestReport:
    """What one batch of observations did."""

    observations: int = 0
    new_observations: int = 0
    matches_created: int = 0
    changes: list[Change] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)
    touched_matches: set[int] = field(default_factory=set)

    def observations_ambiguous(self, feed: str, obs: MatchObservation, reason: str) -> None:
        self.ambiguous.append(f"{feed}:{obs.provider_match_id}: {reason}")
        log.warning(kv("ingest.ambiguous", feed=feed, id=obs.provider_match_id, reason=reason))

    def merge(self, other: IngestReport) -> None:
        self.observations += other.observations
        self.new_observations += other.new_observations
        self.matches_created += other.matches_created
        self.changes += other.changes
        self.rejected += other.rejected
        self.ambiguous += other.ambiguous
        self.touched_matches |= other.touched_matches


#: observations per transaction at most (bounds how long a response holds its matches' locks)
CHUNK = 100
#: transactions of one response in flight at once, each on its own connection: their
#: matches are disjoint (one round holds each provider match once), so they never wait
#: on each other, and the database's round trips overlap
PARALLEL = 4
#: entries a worker's ``SeenCache`` keeps at most (cleared when full: it only saves work)
SEEN_MAX = 200_000


@dataclass(frozen=True, slots=True)
class _Seen:
    fingerprint: str
    match_id: int
    at: datetime


class SeenCache:
    """Per worker (per pool): (feed, provider match id) -> the fingerprint of
    the feed's latest observation as this worker last recorded or confirmed it."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _Seen] = {}

    def get(self, feed: str, provider_id: str) -> _Seen | None:
        return self._entries.get((feed, provider_id))

    def put(self, feed: str, provider_id: str, seen: _Seen) -> None:
        if len(self._entries) >= SEEN_MAX:
            self._entries.clear()
        self._entries[(feed, provider_id)] = seen

    def forget(self, feed: str, provider_id: str) -> None:
        self._entries.pop((feed, provider_id), None)

    def clear(self) -> None:
        self._entries.clear()


_CACHES: weakref.WeakKeyDictionary[Pool, SeenCache] = weakref.WeakKeyDictionary()


def seen_cache(pool: Pool) -> SeenCache:
    """The ``SeenCache`` of the worker owning ``pool``."""
    cache = _CACHES.get(pool)
    if cache is None:
        cache = _CACHES[pool] = SeenCache()
    return cache


@dataclass(frozen=True, slots=True)
class _Item:
    obs: MatchObservation
    payload: dict[str, object]
    fingerprint: str


async def ingest_observations(
    pool: Pool,
    feed: str,
    batch: Iterable[MatchObservation],
    *,
    at: datetime,
    priorities: dict[str, int],
    policy: ReconcilePolicy,
    parallel: int = 1,
) -> IngestReport:
    """Ingest a batch (one provider response) from feed ``feed``.

    ``parallel``: chunks in flight at once (polling passes ``PARALLEL``).
    Replay keeps the default 1: chunks committed in order number the rows
    (events, change-log entries) of a big response the same way every time,
    so two replays agree byte for byte."""
    report = IngestReport()
    items: list[_Item] = []
    for obs in batch:
        payload = codec.to_json(obs)
        items.append(_Item(obs, payload, codec.fingerprint(payload)))
    report.observations = len(items)
    cache = seen_cache(pool)
    for round_ in _rounds(items):
        rest = await _confirm_repeats(pool, cache, feed, round_, at=at, policy=policy,
                                      report=report)  # fmt: skip
        # the rest (news, mostly) in chunks spread over the parallel transactions
        size = min(CHUNK, max(1, math.ceil(len(rest) / parallel)))
        chunks = [rest[i : i + size] for i in range(0, len(rest), size)]
        for start in range(0, len(chunks), parallel):
            await asyncio.gather(*(
                _ingest_chunk(pool, cache, feed, chunk, at=at, priorities=priorities,
                              policy=policy, report=report)
                for chunk in chunks[start : start + parallel]
            ))  # fmt: skip
    return report


def _rounds(items: list[_Item]) -> list[list[_Item]]:
    """Split into rounds holding each provider match id once, keeping order."""
    rounds: list[list[_Item]] = []
    count: dict[str, int] = {}
    for item in items:
        n = count.get(item.obs.provider_match_id, 0)
        count[item.obs.provider_match_id] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(item)
    return rounds


async def _confirm_repeats(
    pool: Pool,
    cache: SeenCache,
    feed: str,
    items: Sequence[_Item],
    *,
    at: datetime,
    policy: ReconcilePolicy,
    report: IngestReport,
) -> list[_Item]:
    """Confirm the round's remembered repeats in one statement (marking them
    seen); the items left to ingest, in order."""
    remembered = {}
    for item in items:
        seen = cache.get(feed, item.obs.provider_match_id)
        if (
            seen is not None
            and seen.fingerprint == item.fingerprint
            and seen.at <= at <= seen.at + policy.stale_after
        ):
            remembered[item.obs.provider_match_id] = seen
    if not remembered:
        return list(items)
    pairs = [(pid, s.fingerprint) for pid, s in remembered.items()]
    async with pool.connection() as conn:
        confirmed = await ingest_batch.confirm_latest(conn, feed, pairs, at)
    for pid in confirmed:
        seen = remembered[pid]
        cache.put(feed, pid, _Seen(seen.fingerprint, seen.match_id, at))
        report.touched_matches.add(seen.match_id)
    return [i for i in items if i.obs.provider_match_id not in confirmed]


async def _ingest_chunk(
    pool: Pool,
    cache: SeenCache,
    feed: str,
    items: Sequence[_Item],
    *,
    at: datetime,
    priorities: dict[str, int],
    policy: ReconcilePolicy,
    report: IngestReport,
) -> None:
    async with pool.connection() as conn:
        resolved = await _resolve_all(conn, feed, items, at=at, report=report)
        if resolved:
            await _ingest_resolved(
                conn, feed, resolved, at=at, priorities=priorities, policy=policy,
                report=report, cache=cache,
            )  # fmt: skip


async def _resolve_all(
    conn: Conn, feed: str, items: Sequence[_Item], *, at: datetime, report: IngestReport
) -> list[tuple[_Item, int]]:
    """(item, match id) for each item that resolves, in order; an unknown id
    takes ``pipeline.resolve``'s slow path in its own transaction, an ambiguous
    one is recorded as rejected."""
    known: dict[str, int] = {}
    for provider in sorted({i.obs.provider for i in items}):
        ids = [i.obs.provider_match_id for i in items if i.obs.provider == provider]
        found = await ingest_batch.lookup_matches(conn, provider, ids)
        known.update({f"{provider}\0{pid}": mid for pid, mid in found.items()})
    out: list[tuple[_Item, int]] = []
    for item in items:
        obs = item.obs
        match_id = known.get(f"{obs.provider}\0{obs.provider_match_id}")
        if match_id is None:
            async with atomic(conn):
                resolution = await resolve(conn, obs)
                if isinstance(resolution, Ambiguous):
                    obs_id = await _record(
                        conn, feed, obs, None, item.fingerprint, at, item.payload
                    )
                    if obs_id is not None:
                        await observations.set_outcome(conn, obs_id, "rejected", resolution.reason)
                    report.observations_ambiguous(feed, obs, resolution.reason)
                    continue
            match_id = resolution.match_id
            report.matches_created += resolution.created
        report.touched_matches.add(match_id)
        out.append((item, match_id))
    return out


async def _ingest_resolved(
    conn: Conn,
    feed: str,
    resolved: Sequence[tuple[_Item, int]],
    *,
    at: datetime,
    priorities: dict[str, int],
    policy: ReconcilePolicy,
    report: IngestReport,
    cache: SeenCache,
) -> None:
    rows = [
        ingest_batch.NewObservation(
            provider_match_id=item.obs.provider_match_id,
            match_id=match_id,
            fingerprint=item.fingerprint,
            status=item.obs.status.value,
            home_score=item.obs.home_score,
            away_score=item.obs.away_score,
            payload=item.payload,
        )
        for item, match_id in resolved
    ]
    latest: list[tuple[str, _Seen]] = []
    async with atomic(conn):
        async with conn.pipeline():  # the four statements in one round trip
            loaded = await ingest_batch.load(conn, feed, rows, at)
        todo: list[tuple[int, int | None]] = []  # (match id, new observation id)
        for (item, match_id), rec in zip(resolved, loaded.recorded, strict=True):
            pid = item.obs.provider_match_id
            if rec.obs_id is not None:
                report.new_observations += 1
                latest.append((pid, _Seen(item.fingerprint, match_id, at)))
                todo.append((match_id, rec.obs_id))
            elif rec.was_latest and rec.last_seen is not None:
                latest.append((pid, _Seen(item.fingerprint, match_id, max(at, rec.last_seen))))
                if not rec.last_seen <= at <= rec.last_seen + policy.stale_after:
                    todo.append((match_id, None))  # a view that had gone stale is back
            else:
                todo.append((match_id, None))
        stale, outcomes = await _settle_all(
            conn, feed, todo, loaded, at=at, priorities=priorities, policy=policy, report=report
        )
        async with conn.pipeline():
            flipped = await ingest_batch.finish(conn, stale, outcomes)
    for match_id, flag in flipped.items():
        log.warning(kv("match.stale" if flag else "match.fresh", match=match_id))
    for pid, seen in latest:
        cache.put(feed, pid, seen)


async def _settle_all(
    conn: Conn,
    feed: str | None,
    todo: Sequence[tuple[int, int | None]],
    loaded: ingest_batch.Loaded,
    *,
    at: datetime,
    priorities: dict[str, int],
    policy: ReconcilePolicy,
    report: IngestReport,
) -> tuple[dict[int, bool], list[tuple[int, str, str | None]]]:
    """Settle each (match, new observation id) from what ``loaded`` read and
    apply the patches; each match's stale flag, and each new observation's
    (id, outcome, reason)."""
    stale: dict[int, bool] = {}
    outcomes: list[tuple[int, str, str | None]] = []
    for match_id, obs_id in todo:
        state, finished_at = loaded.states[match_id]
        views = [_view(row, priorities) for row in loaded.views[match_id]]
        existing = [_existing(row) for row in loaded.events[match_id]]
        decisions = settle(state, views, at, policy, events=existing, finished_at=finished_at)
        applied: list[Change] = []
        for decision in decisions:
            if decision.patch is not None:
                applied += await apply_change(conn, match_id, decision.patch, at=at)
        last = decisions[-1]
        stale[match_id] = last.stale
        report.changes += applied
        if obs_id is None:
            continue
        mine = [r for r in last.rejected if r.feed == feed]
        if mine:
            reason = "; ".join(f"{r.code}: {r.reason}" for r in mine)
            outcomes.append((obs_id, "rejected", reason))
            report.rejected.append(f"{feed} match {match_id}: {reason}")
        else:
            outcomes.append((obs_id, "applied" if applied else "ignored", None))
    return stale, outcomes


async def reconcile_matches(
    pool: Pool,
    match_ids: Sequence[int],
    *,
    at: datetime,
    priorities: dict[str, int],
    policy: ReconcilePolicy,
    report: IngestReport,
) -> list[tuple[int, Exception]]:
    """``reconcile_match`` for many matches (the sweep), ``CHUNK`` per transaction
    with the reads batched (``store.ingest_batch.load_matches``). A chunk that
    fails is redone match by match, so one bad match never costs the others;
    the matches that still fail are returned with their errors."""
    failed: list[tuple[int, Exception]] = []
    async with pool.connection() as conn:
        for start in range(0, len(match_ids), CHUNK):
            chunk = list(match_ids[start : start + CHUNK])
            try:
                async with atomic(conn):
                    loaded = await ingest_batch.load_matches(conn, chunk)
                    todo = [(m, None) for m in chunk if m in loaded.states]
                    stale, _ = await _settle_all(
                        conn, None, todo, loaded, at=at, priorities=priorities, policy=policy,
                        report=report,
                    )  # fmt: skip
                    flipped = await ingest_batch.finish(conn, stale, [])
            except (StoreError, PipelineError) as exc:
                log.warning(kv("sweep.chunk_failed", matches=len(chunk), error=exc))
                for match_id in chunk:
                    try:
                        await reconcile_match(
                            conn, match_id, at=at, priorities=priorities, policy=policy,
                            report=report,
                        )  # fmt: skip
                    except (StoreError, PipelineError) as one:
                        failed.append((match_id, one))
                continue
            for match_id, flag in flipped.items():
                log.warning(kv("match.stale" if flag else "match.fresh", match=match_id))
    return failed


def _view(row: dict[str, Any], priorities: dict[str, int]) -> ProviderView:
    return ProviderView(
        feed=row["feed"],
        priority=priorities.get(row["feed"], 1000),
        observed_at=row["observed_at"],
        observation=codec.from_json(row["payload"]),
    )


def _existing(row: dict[str, Any]) -> ExistingEvent:
    return ExistingEvent(
        key=row["event_key"],
        type=EventType(row["type"]),
        side=row["side"],
        minute=row["minute"],
        source=row["source"],
        retracted=row["retracted"],
        shootout=row["shootout"],
    )


async def reconcile_match(
    conn: Conn,
    match_id: int,
    *,
    at: datetime,
    priorities: dict[str, int],
    policy: ReconcilePolicy,
    report: IngestReport,
    observation: tuple[str, int | None] | None = None,
) -> None:
    """Reconcile one match from its feeds' latest views and apply the result.

    ``observation`` (feed, observation id) is the new observation that
    triggered this, whose outcome is recorded; None for sweeps."""
    async with atomic(conn):
        state, finished_at = await lock_state(conn, match_id)
        views = [_view(r, priorities) for r in await observations.latest_per_feed(conn, match_id)]
        existing = [_existing(r) for r in await store_events.event_keys(conn, match_id)]
        decisions = settle(state, views, at, policy, events=existing, finished_at=finished_at)
        applied: list[Change] = []
        for decision in decisions:
            if decision.patch is not None:
                applied += await apply_change(conn, match_id, decision.patch, at=at)
        last = decisions[-1]
        if await set_stale(conn, match_id, last.stale):
            log.warning(kv("match.stale" if last.stale else "match.fresh", match=match_id))
        report.changes += applied
        if observation is None:
            return
        feed, obs_id = observation
        if obs_id is None:
            return
        mine = [r for r in last.rejected if r.feed == feed]
        if mine:
            reason = "; ".join(f"{r.code}: {r.reason}" for r in mine)
            await observations.set_outcome(conn, obs_id, "rejected", reason)
            report.rejected.append(f"{feed} match {match_id}: {reason}")
        elif applied:
            await observations.set_outcome(conn, obs_id, "applied", None)
        else:
            await observations.set_outcome(conn, obs_id, "ignored", None)


async def _record(
    conn: Conn,
    feed: str,
    obs: MatchObservation,
    match_id: int | None,
    fingerprint: str,
    at: datetime,
    payload: dict[str, object],
) -> int | None:
    return await observations.record(
        conn,
        feed=feed,
        provider_match_id=obs.provider_match_id,
        match_id=match_id,
        fingerprint=fingerprint,
        observed_at=at,
        status=obs.status.value,
        home_score=obs.home_score,
        away_score=obs.away_score,
        payload=payload,
    )
