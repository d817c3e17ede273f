"""The single write path: row update + next seq + change-log row, atomically."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psycopg
import pytest

from livescore.errors import InvalidChange, NotFound
from livescore.model import (
    Clock,
    EventType,
    MatchPatch,
    MatchState,
    MatchStatus,
    NewEvent,
    OverrideInfo,
    Period,
)
from store.changes import changes_since
from store.db import Conn, Pool
from store.matches import get_match
from store.writes import apply_change
from tests.factories import Factory


async def log_of(conn: Conn, match_id: int) -> list[tuple[int, str]]:
    return [(c.seq, c.type) for c in await changes_since(conn, match_id, 0)]


async def test_score_change_takes_next_seq_and_logs_one_row(conn: Conn, factory: Factory) -> None:
    match = await factory.match()
    changes = await apply_change(
        conn, match["id"], MatchPatch(source="test", home_score=1, away_score=0)
    )
    assert [(c.seq, c.type) for c in changes] == [(1, "score:update")]
    assert changes[0].payload["homeScore"] == 1
    stored = await get_match(conn, match["id"])
    assert (stored["seq"], stored["homeScore"], stored["awayScore"]) == (1, 1, 0)
    assert await log_of(conn, match["id"]) == [(1, "score:update")]


async def test_patch_that_changes_nothing_writes_nothing(conn: Conn, factory: Factory) -> None:
    match = await factory.match(home_score=2, away_score=2)
    before = await get_match(conn, match["id"])
    again = MatchPatch(source="test", home_score=2, away_score=2)
    assert await apply_change(conn, match["id"], again) == []
    assert (await get_match(conn, match["id"]))["seq"] == before["seq"]


async def test_one_patch_can_make_several_changes_in_order(conn: Conn, factory: Factory) -> None:
    match = await factory.match()
    patch = MatchPatch(
        source="test",
        status=MatchStatus.LIVE,
        home_score=1,
        away_score=0,
        clock=Clock(12, None, Period.FIRST_HALF),
        new_events=(NewEvent(EventType.GOAL, 12, key="g1", side="home", actor="Saka"),),
    )
    changes = await apply_change(conn, match["id"], patch)
    assert [(c.seq, c.type) for c in changes] == [
        (1, "commentary:new"),
        (2, "score:update"),
        (3, "match:status"),
    ]
    assert changes[0].payload["team"]["id"] == match["homeTeam"]["id"]
    assert changes[0].payload["seq"] == 1
    clock = changes[2].payload["clock"]
    assert changes[2].payload == {"status": "live", "previous": "scheduled", "clock": clock}
    assert (clock["minute"], clock["addedTime"], clock["period"], clock["running"]) == (
        12,
        None,
        "1H",
        True,
    )


async def test_event_with_known_key_is_not_added_twice(conn: Conn, factory: Factory) -> None:
    match = await factory.match()
    event = NewEvent(EventType.YELLOW, 30, key="fd:card:30", side="away")
    assert len(await apply_change(conn, match["id"], MatchPatch("t", new_events=(event,)))) == 1
    assert await apply_change(conn, match["id"], MatchPatch("t", new_events=(event,))) == []
    assert await log_of(conn, match["id"]) == [(1, "commentary:new")]


async def test_retraction_marks_the_event_and_logs_an_update(conn: Conn, factory: Factory) -> None:
    match = await factory.match()
    goal = NewEvent(EventType.GOAL, 50, key="g", side="home")
    await apply_change(
        conn, match["id"], MatchPatch("t", new_events=(goal,), home_score=1, away_score=0)
    )
    changes = await apply_change(
        conn,
        match["id"],
        MatchPatch("t", retract_event_keys=("g",), home_score=0, away_score=0),
    )
    assert [c.type for c in changes] == ["commentary:update", "score:update"]
    assert changes[0].payload["retracted"] is True
    assert changes[1].payload["homeScore"] == 0


async def test_unknown_match_raises_not_found(conn: Conn) -> None:
    with pytest.raises(NotFound):
        await apply_change(conn, 424242, MatchPatch("t", home_score=1, away_score=1))


@pytest.mark.parametrize(
    ("home", "away"), [(-1, 0), (0, 1000), (1, None)], ids=["negative", "huge", "half"]
)
async def test_invalid_score_is_refused_and_nothing_is_written(
    conn: Conn, factory: Factory, home: int, away: int | None
) -> None:
    match = await factory.match()
    with pytest.raises(InvalidChange):
        await apply_change(conn, match["id"], MatchPatch("t", home_score=home, away_score=away))
    assert (await get_match(conn, match["id"]))["seq"] == 0


async def test_failure_after_the_first_change_rolls_everything_back(
    conn: Conn, factory: Factory
) -> None:
    match = await factory.match()
    # the event goes in first, then the clock violates the schema's check: all or nothing
    patch = MatchPatch(
        "t",
        new_events=(NewEvent(EventType.TEXT, 1, key="k"),),
        clock=Clock(999, None, Period.FIRST_HALF),
    )
    with pytest.raises(psycopg.errors.CheckViolation):
        await apply_change(conn, match["id"], patch)
    assert await log_of(conn, match["id"]) == []
    cur = await conn.execute("SELECT count(*) AS n FROM events WHERE match_id = %s", (match["id"],))
    row = await cur.fetchone()
    assert row is not None and row["n"] == 0


async def test_override_is_stored_and_cleared_through_the_log(conn: Conn, factory: Factory) -> None:
    match = await factory.match(status=MatchStatus.LIVE)
    since = datetime(2026, 1, 1, tzinfo=UTC)
    override = OverrideInfo("ops", "feed wrong", since, home_score=3, away_score=1)
    changes = await apply_change(
        conn, match["id"], MatchPatch("override", home_score=3, away_score=1, override=override)
    )
    assert [c.type for c in changes] == ["score:update", "match:update"]
    assert changes[1].payload["override"]["who"] == "ops"
    assert (await get_match(conn, match["id"]))["override"]["reason"] == "feed wrong"
    cleared = await apply_change(conn, match["id"], MatchPatch("override", clear_override=True))
    assert [(c.type, c.payload) for c in cleared] == [("match:update", {"override": None})]
    assert (await get_match(conn, match["id"]))["override"] is None


async def test_concurrent_writers_get_gap_free_unique_seqs_and_lose_no_update(
    pool: Pool, factory: Factory
) -> None:
    """8+ writers on one match: every increment lands, seqs are 1..N with no gap."""
    match = await factory.match()
    writers, rounds = 10, 6

    def add_goal(state: MatchState) -> MatchPatch:
        return MatchPatch("w", home_score=state.home_score + 1, away_score=state.away_score)

    async def writer() -> list[int]:
        seqs: list[int] = []
        for _ in range(rounds):
            async with pool.connection() as conn:
                seqs += [c.seq for c in await apply_change(conn, match["id"], add_goal)]
        return seqs

    results = await asyncio.gather(*(writer() for _ in range(writers)))
    all_seqs = sorted(s for seqs in results for s in seqs)
    assert all_seqs == list(range(1, writers * rounds + 1))
    async with pool.connection() as conn:
        final = await get_match(conn, match["id"])
        log = await changes_since(conn, match["id"], 0)
    assert final["homeScore"] == writers * rounds
    assert final["seq"] == writers * rounds
    assert [c.seq for c in log] == list(range(1, writers * rounds + 1))
    assert [c.payload["homeScore"] for c in log] == list(range(1, writers * rounds + 1))


async def test_concurrent_writers_on_different_fields_keep_both(
    pool: Pool, factory: Factory
) -> None:
    match = await factory.match()

    async def write(patch: MatchPatch) -> None:
        async with pool.connection() as conn:
            await apply_change(conn, match["id"], patch)

    await asyncio.gather(
        write(MatchPatch("a", status=MatchStatus.LIVE)),
        write(MatchPatch("b", home_score=0, away_score=1)),
        write(MatchPatch("c", new_events=(NewEvent(EventType.TEXT, 3, key="x"),))),
    )
    async with pool.connection() as conn:
        final = await get_match(conn, match["id"])
    assert (final["status"], final["awayScore"], final["seq"]) == ("live", 1, 3)


def _nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("metadata", "says"),
    [
        (_nested(300), "cannot be encoded"),  # deeper than any encoder of the message goes
        ({"blob": "x" * 70_000}, "over the 65536-byte limit"),
    ],
    ids=["too-deep", "too-large"],
)
async def test_a_change_that_could_not_be_published_is_refused_before_it_commits(
    conn: Conn, factory: Factory, metadata: dict[str, object], says: str
) -> None:
    """Every stored change can be published: the write path encodes each new
    change once before committing and refuses the write otherwise (issue 10)."""
    match = await factory.match()
    event = NewEvent(
        type=EventType.TEXT, minute=1, added_time=None, side=None, actor=None,
        message="m", metadata=metadata, source="test",
    )  # fmt: skip
    with pytest.raises(InvalidChange, match=says):
        await apply_change(conn, match["id"], MatchPatch(source="test", new_events=(event,)))
    assert await log_of(conn, match["id"]) == []
    cur = await conn.execute("SELECT count(*) AS n FROM events WHERE match_id = %s", (match["id"],))
    row = await cur.fetchone()
    assert row is not None and row["n"] == 0
