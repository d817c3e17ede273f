"""Batched SQL of ingestion: one provider response in a few round trips.

``pipeline.ingest`` calls these with every observation of a response at once
(arrays bound as parameters, one statement each), instead of one small query
per observation. Every statement runs with ``prepare=True``: a worker's
connections plan each once and reuse the plan.

Locks: ``lock_states`` locks the matches in id order, so two workers ingesting
overlapping responses queue up instead of deadlocking; take it before
``record`` (an observation row's foreign key share-locks its match).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from livescore.model import MatchState
from store.db import Conn, Cursor
from store.shapes import MATCH_SELECT, state_from_row


async def lookup_matches(conn: Conn, provider: str, provider_ids: Sequence[str]) -> dict[str, int]:
    """The canonical match of each provider id the crosswalk knows."""
    cur = await conn.execute(
        "SELECT provider_id, match_id FROM match_crosswalk "
        "WHERE provider = %s AND provider_id = ANY(%s)",
        (provider, list(provider_ids)),
        prepare=True,
    )
    return {row["provider_id"]: int(row["match_id"]) for row in await cur.fetchall()}


async def confirm_latest(
    conn: Conn, feed: str, seen: Sequence[tuple[str, str]], at: datetime
) -> set[str]:
    """``seen`` is (provider match id, fingerprint) pairs a worker remembers as
    the feed's latest observation of each match. Each pair that still IS the
    latest (no worker recorded anything newer since) is marked seen at ``at``;
    their provider match ids are returned. Pairs not returned changed."""
    if not seen:
        return set()
    cur = await conn.execute(
        """UPDATE observations o SET observed_at = GREATEST(o.observed_at, %(at)s)
             FROM (SELECT DISTINCT ON (provider_match_id) id, provider_match_id, fingerprint
                     FROM observations
                    WHERE feed = %(feed)s AND provider_match_id = ANY(%(ids)s)
                    ORDER BY provider_match_id, observed_at DESC, id DESC) latest
             JOIN unnest(%(ids)s::text[], %(fps)s::text[]) AS s(pid, fp)
               ON s.pid = latest.provider_match_id AND s.fp = latest.fingerprint
            WHERE o.id = latest.id
        RETURNING latest.provider_match_id""",
        {"at": at, "feed": feed, "ids": [p for p, _ in seen], "fps": [f for _, f in seen]},
        prepare=True,
    )
    return {row["provider_match_id"] for row in await cur.fetchall()}


async def _send_lock_states(conn: Conn, match_ids: Sequence[int]) -> Cursor:
    return await conn.execute(
        MATCH_SELECT + " WHERE m.id = ANY(%s) ORDER BY m.id FOR UPDATE OF m",
        (sorted(set(match_ids)),),
        prepare=True,
    )


async def _read_states(cur: Cursor) -> dict[int, tuple[MatchState, datetime | None]]:
    return {int(r["id"]): (state_from_row(r), r["finished_at"]) for r in await cur.fetchall()}


async def load_matches(conn: Conn, match_ids: Sequence[int]) -> Loaded:
    """Inside the caller's transaction: lock the matches (id order) and read
    every feed's latest view and every event of them (a sweep: nothing recorded)."""
    ids = sorted(set(match_ids))
    states = await _send_lock_states(conn, ids)
    views = await _send_latest_views(conn, ids)
    events = await _send_event_keys(conn, ids)
    return Loaded(
        await _read_states(states),
        [],
        await _read_by_match(views, ids),
        await _read_by_match(events, ids),
    )


@dataclass(frozen=True, slots=True)
class Loaded:
    """What ``load`` read: each match's locked state and finish time, what
    recording each observation found, each match's feeds' latest views and
    its events (reconciliation's inputs)."""

    states: dict[int, tuple[MatchState, datetime | None]]
    recorded: list[Recorded]
    views: dict[int, list[dict[str, Any]]]
    events: dict[int, list[dict[str, Any]]]


async def load(conn: Conn, feed: str, rows: Sequence[NewObservation], at: datetime) -> Loaded:
    """Inside the caller's transaction: lock the rows' matches (id order),
    record the observations, read every feed's latest view and every event of
    those matches: four statements, each for every match at once, sent
    together in pipeline mode (``conn.pipeline()``: one round trip). (The
    write path's statements are not pipelined: measured here, running the
    whole transaction in pipeline mode cost more CPU than it saved.)"""
    match_ids = sorted({r.match_id for r in rows})
    states = await _send_lock_states(conn, match_ids)
    recorded = await _send_record(conn, feed, rows, at)
    views = await _send_latest_views(conn, match_ids)
    events = await _send_event_keys(conn, match_ids)
    return Loaded(
        await _read_states(states),
        await _read_recorded(recorded, rows),
        await _read_by_match(views, match_ids),
        await _read_by_match(events, match_ids),
    )


@dataclass(frozen=True, slots=True)
class NewObservation:
    provider_match_id: str
    match_id: int
    fingerprint: str
    status: str
    home_score: int | None
    away_score: int | None
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Recorded:
    """What recording one observation found: its new row id (None: the feed
    had said exactly this before), and for a repeat, whether that earlier row
    was the feed's latest for the match (and already belonged to this match: a
    row recorded while ambiguous and linked since is not) and when it was last
    seen."""

    obs_id: int | None
    was_latest: bool = False
    last_seen: datetime | None = None


async def _send_record(
    conn: Conn, feed: str, rows: Sequence[NewObservation], at: datetime
) -> Cursor:
    """Insert each observation once, in ONE statement: the fingerprint's unique
    key turns a repeat into a freshness touch of the earlier row (the UPDATE
    sees only rows that existed before the statement, so exactly the repeats),
    never a second row. In order; call with one row per provider match id."""
    return await conn.execute(
        """WITH v AS (
             SELECT * FROM unnest(%(pids)s::text[], %(mids)s::bigint[], %(fps)s::text[],
                                  %(sts)s::text[], %(hss)s::int[], %(aws)s::int[],
                                  %(pls)s::jsonb[]) AS v(pid, mid, fp, st, hs, aw, pl)),
           latest AS (
             SELECT DISTINCT ON (provider_match_id) id, provider_match_id
               FROM observations
              WHERE feed = %(feed)s AND provider_match_id = ANY(%(pids)s)
              ORDER BY provider_match_id, observed_at DESC, id DESC),
           before AS (
             SELECT o.id, o.provider_match_id, o.observed_at, v.mid,
                    o.id = l.id AND o.match_id IS NOT DISTINCT FROM v.mid AS was_latest
               FROM observations o
               JOIN v ON o.feed = %(feed)s AND o.provider_match_id = v.pid
                     AND o.fingerprint = v.fp
               LEFT JOIN latest l ON l.provider_match_id = o.provider_match_id),
           ins AS (
             INSERT INTO observations (feed, provider_match_id, match_id, fingerprint,
                                       observed_at, status, home_score, away_score, payload)
             SELECT %(feed)s, pid, mid, fp, %(at)s, st, hs, aw, pl FROM v
             ON CONFLICT (feed, provider_match_id, fingerprint) DO NOTHING
             RETURNING id, provider_match_id),
           touched AS (
             UPDATE observations o
                SET observed_at = GREATEST(o.observed_at, %(at)s),
                    match_id = COALESCE(o.match_id, b.mid)
               FROM before b
              WHERE o.id = b.id
             RETURNING b.provider_match_id, b.observed_at AS last_seen, b.was_latest)
         SELECT provider_match_id, id, NULL::timestamptz AS last_seen, false AS was_latest
           FROM ins
         UNION ALL
         SELECT provider_match_id, NULL, last_seen, was_latest FROM touched""",
        {
            "feed": feed,
            "at": at,
            "pids": [r.provider_match_id for r in rows],
            "mids": [r.match_id for r in rows],
            "fps": [r.fingerprint for r in rows],
            "sts": [r.status for r in rows],
            "hss": [r.home_score for r in rows],
            "aws": [r.away_score for r in rows],
            "pls": [Jsonb(r.payload) for r in rows],
        },
        prepare=True,
    )


async def _read_recorded(cur: Cursor, rows: Sequence[NewObservation]) -> list[Recorded]:
    found: dict[str, Recorded] = {}
    for row in await cur.fetchall():
        obs_id = int(row["id"]) if row["id"] is not None else None
        found[row["provider_match_id"]] = Recorded(obs_id, row["was_latest"], row["last_seen"])
    return [found.get(r.provider_match_id, Recorded(None)) for r in rows]


async def _send_latest_views(conn: Conn, match_ids: Sequence[int]) -> Cursor:
    """The newest observation of each feed covering each match, however old."""
    return await conn.execute(
        """SELECT DISTINCT ON (match_id, feed) match_id, id, feed, observed_at, payload
             FROM observations
            WHERE match_id = ANY(%s)
            ORDER BY match_id, feed, observed_at DESC, id DESC""",
        (list(match_ids),),
        prepare=True,
    )


async def _send_event_keys(conn: Conn, match_ids: Sequence[int]) -> Cursor:
    """Each match's events as plain data (for reconciliation), in id order."""
    return await conn.execute(
        "SELECT match_id, event_key, type, side, minute, source, retracted, "
        "COALESCE(metadata->'shootout' = 'true'::jsonb, false) AS shootout FROM events "
        "WHERE match_id = ANY(%s) ORDER BY match_id, id",
        (list(match_ids),),
        prepare=True,
    )


async def _read_by_match(cur: Cursor, match_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {m: [] for m in match_ids}
    for row in await cur.fetchall():
        out[int(row["match_id"])].append(row)
    return out


async def finish(
    conn: Conn, stale: dict[int, bool], outcomes: Sequence[tuple[int, str, str | None]]
) -> dict[int, bool]:
    """Flag or unflag each match as stale and record (observation id, outcome,
    reason) of each new observation, sent together; the matches whose stale
    flag changed."""
    ids = sorted(stale)
    flags = await conn.execute(
        """UPDATE matches m SET stale = v.stale
             FROM unnest(%s::bigint[], %s::bool[]) AS v(id, stale)
            WHERE m.id = v.id AND m.stale <> v.stale
        RETURNING m.id, m.stale""",
        (ids, [stale[i] for i in ids]),
        prepare=True,
    )
    if outcomes:
        await conn.execute(
            """UPDATE observations o SET outcome = v.outcome, reason = v.reason
                 FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS v(id, outcome, reason)
                WHERE o.id = v.id""",
            ([o[0] for o in outcomes], [o[1] for o in outcomes], [o[2] for o in outcomes]),
            prepare=True,
        )
    return {int(row["id"]): bool(row["stale"]) for row in await flags.fetchall()}
