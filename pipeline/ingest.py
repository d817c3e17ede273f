"""Ingestion: one feed's observations in, reconciled match changes out.

For each observation, in one transaction:

1. resolve the canonical match (``pipeline.resolve``);
2. record the observation once (its fingerprint's unique key turns the same
   data seen again into a freshness touch, never a second row);
3. lock the match row, read the latest view of every feed covering it, and
   run ``pipeline.reconcile.settle``;
4. apply each decision's patch through the store's single write path
   (``store.writes.apply_change``), record the outcome on the observation
   (applied / ignored / rejected with the reason), and flag or clear ``stale``.

The poll job, ``livescore ingest --once`` and ``livescore replay`` all call
``ingest_observations``. ``at`` is the observation time: now when polling,
the recorded fetch time when replaying (so a replay is reproducible).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from livescore.logs import kv
from livescore.model import EventType, MatchObservation
from pipeline import observation_codec as codec
from pipeline.decision import ProviderView, ReconcilePolicy
from pipeline.event_merge import ExistingEvent
from pipeline.reconcile import settle
from pipeline.resolve import Ambiguous, resolve
from store import events as store_events
from store import observations
from store.db import Conn, Pool, atomic
from store.matches import lock_match, lock_state, set_stale
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

    def merge(self, other: IngestReport) -> None:
        self.observations += other.observations
        self.new_observations += other.new_observations
        self.matches_created += other.matches_created
        self.changes += other.changes
        self.rejected += other.rejected
        self.ambiguous += other.ambiguous
        self.touched_matches |= other.touched_matches


async def ingest_observations(
    pool: Pool,
    feed: str,
    batch: Iterable[MatchObservation],
    *,
    at: datetime,
    priorities: dict[str, int],
    policy: ReconcilePolicy,
) -> IngestReport:
    """Ingest a batch from feed ``feed`` (each observation in its own transaction)."""
    report = IngestReport()
    for obs in batch:
        async with pool.connection() as conn:
            await ingest_one(
                conn, feed, obs, at=at, priorities=priorities, policy=policy, report=report
            )
    return report


async def ingest_one(
    conn: Conn,
    feed: str,
    obs: MatchObservation,
    *,
    at: datetime,
    priorities: dict[str, int],
    policy: ReconcilePolicy,
    report: IngestReport,
) -> None:
    report.observations += 1
    payload = codec.to_json(obs)
    fingerprint = codec.fingerprint(payload)
    async with atomic(conn):
        resolution = await resolve(conn, obs)
        if isinstance(resolution, Ambiguous):
            obs_id = await _record(conn, feed, obs, None, fingerprint, at, payload)
            if obs_id is not None:
                await observations.set_outcome(conn, obs_id, "rejected", resolution.reason)
            report.ambiguous.append(f"{feed}:{obs.provider_match_id}: {resolution.reason}")
            log.warning(kv("ingest.ambiguous", feed=feed, id=obs.provider_match_id,
                           reason=resolution.reason))  # fmt: skip
            return
        match_id = resolution.match_id
        report.matches_created += resolution.created
        report.touched_matches.add(match_id)
        # lock the match before the observation row's foreign key share-locks it
        await lock_match(conn, match_id)
        obs_id = await _record(conn, feed, obs, match_id, fingerprint, at, payload)
        if obs_id is None:
            await observations.touch(
                conn, feed, obs.provider_match_id, fingerprint, at, match_id=match_id
            )
        else:
            report.new_observations += 1
        await reconcile_match(
            conn, match_id, at=at, priorities=priorities, policy=policy, report=report,
            observation=(feed, obs_id),
        )  # fmt: skip


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
        views = [
            ProviderView(
                feed=row["feed"],
                priority=priorities.get(row["feed"], 1000),
                observed_at=row["observed_at"],
                observation=codec.from_json(row["payload"]),
            )
            for row in await observations.latest_per_feed(conn, match_id)
        ]
        existing = [
            ExistingEvent(
                key=row["event_key"],
                type=EventType(row["type"]),
                side=row["side"],
                minute=row["minute"],
                source=row["source"],
                retracted=row["retracted"],
                shootout=row["shootout"],
            )
            for row in await store_events.event_keys(conn, match_id)
        ]
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
