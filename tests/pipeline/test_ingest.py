"""Ingestion against real Postgres: resolve, record once, reconcile, apply, record the outcome.

Observations are hand-built ``MatchObservation`` values (``tests.pipeline.builders``)
or parsed by the real football-data adapter from provider-format payloads.
``at`` is the observation time, so freshness is driven by the test, not the wall clock.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import httpx
import pytest
import respx

from livescore import clock
from livescore.errors import Conflict, InvalidChange, NotFound
from livescore.feeds import FeedConfig
from livescore.model import CompetitionRef, MatchObservation, MatchStatus
from pipeline import overrides
from pipeline.context import PipelineContext
from pipeline.decision import ReconcilePolicy
from pipeline.ingest import IngestReport, ingest_observations, reconcile_match
from pipeline.polling import poll_feed
from store import crosswalk, reference
from store.changes import changes_since
from store.db import Conn, Pool
from store.events import list_events
from store.feeds import add_feed
from store.matches import get_match
from store.overrides import audit_trail
from tests.factories import Factory
from tests.pipeline.builders import (
    KICKOFF,
    assert_seqs_gap_free,
    change_log,
    fd_list,
    fd_match,
    fd_one,
    goal,
    match_ids,
    minutes,
    obs,
    observation_rows,
    var_check,
)

POLICY = ReconcilePolicy()  # stale after 3 minutes, finished window 2 hours
PRIORITIES = {"alpha": 10, "beta": 20}
T0 = KICKOFF + minutes(30)


async def ingest(pool: Pool, feed: str, *batch: MatchObservation, at: datetime) -> IngestReport:
    return await ingest_observations(pool, feed, batch, at=at, priorities=PRIORITIES, policy=POLICY)


async def only_match(conn: Conn) -> int:
    ids = await match_ids(conn)
    assert len(ids) == 1, ids
    return ids[0]


async def latest_outcome(conn: Conn, feed: str) -> tuple[str, str | None]:
    rows = await observation_rows(conn, feed)
    return rows[-1]["outcome"], rows[-1]["reason"]


# -- priority and freshness ------------------------------------------------------------------


async def test_the_more_trusted_feed_wins_until_it_goes_stale_then_the_other_takes_over(
    pool: Pool, conn: Conn
) -> None:
    # alpha (priority 10) says 1-0; beta (priority 20) claims a second goal
    await ingest(pool, "alpha", obs("alpha", "a-1", score=(1, 0), minute=30), at=T0)
    report = await ingest(
        pool, "beta", obs("beta", "b-1", score=(2, 0), minute=31), at=T0 + minutes(0.5)
    )
    match_id = await only_match(conn)
    match = await get_match(conn, match_id)
    assert (match["homeScore"], match["awayScore"]) == (1, 0)
    assert report.changes == []
    assert await latest_outcome(conn, "beta") == ("ignored", None)

    # alpha goes quiet for longer than the stale window: beta's next word is taken
    report = await ingest(
        pool, "beta", obs("beta", "b-1", score=(2, 0), minute=34), at=T0 + minutes(4)
    )
    match = await get_match(conn, match_id)
    assert (match["homeScore"], match["awayScore"], match["clock"]["minute"]) == (2, 0, 34)
    assert match["stale"] is False
    assert {c.type for c in report.changes} == {"score:update"}
    assert all(c.source == "beta" for c in report.changes)
    assert await latest_outcome(conn, "beta") == ("applied", None)


async def test_a_returning_trusted_feed_cannot_lower_a_score_another_feed_set(
    pool: Pool, conn: Conn
) -> None:
    await ingest(pool, "alpha", obs("alpha", "a-1", score=(1, 0), minute=30), at=T0)
    await ingest(pool, "beta", obs("beta", "b-1", score=(2, 0), minute=34), at=T0 + minutes(4))
    # alpha is fresh again but still says 1-0: beta set 2-0 and still says so
    await ingest(pool, "alpha", obs("alpha", "a-1", score=(1, 0), minute=35), at=T0 + minutes(5))
    match = await get_match(conn, await only_match(conn))
    assert (match["homeScore"], match["awayScore"]) == (2, 0)
    outcome, reason = await latest_outcome(conn, "alpha")
    assert outcome == "rejected"
    assert reason is not None and reason.startswith("score_decrease:")
    assert "set by beta" in reason


async def test_a_live_match_whose_feeds_all_went_quiet_is_flagged_stale_not_guessed(
    pool: Pool, conn: Conn
) -> None:
    await ingest(pool, "alpha", obs("alpha", "a-1", score=(1, 0), minute=30), at=T0)
    match_id = await only_match(conn)
    before = await get_match(conn, match_id)
    report = IngestReport()
    await reconcile_match(
        conn, match_id, at=T0 + minutes(10), priorities=PRIORITIES, policy=POLICY, report=report
    )
    after = await get_match(conn, match_id)
    assert after["stale"] is True
    assert report.changes == []
    assert {k: v for k, v in after.items() if k != "stale"} == {
        k: v for k, v in before.items() if k != "stale"
    }
    # a fresh observation clears the flag
    await ingest(pool, "alpha", obs("alpha", "a-1", score=(1, 0), minute=41), at=T0 + minutes(11))
    assert (await get_match(conn, match_id))["stale"] is False


# -- scores and statuses ---------------------------------------------------------------------


async def test_a_var_retraction_lowers_the_score_and_keeps_the_goal_in_history(
    pool: Pool, conn: Conn
) -> None:
    scored = obs("alpha", "a-1", score=(1, 0), minute=20, events=(goal("g1", "home", 18),))
    await ingest(pool, "alpha", scored, at=T0)
    match_id = await only_match(conn)
    assert (await get_match(conn, match_id))["homeScore"] == 1

    disallowed = obs(
        "alpha",
        "a-1",
        score=(0, 0),
        minute=21,
        events=(goal("g1", "home", 18, retracted=True), var_check("v1", 20, "Goal disallowed")),
    )
    report = await ingest(pool, "alpha", disallowed, at=T0 + minutes(1))
    match = await get_match(conn, match_id)
    assert (match["homeScore"], match["awayScore"]) == (0, 0)
    assert [c.type for c in report.changes] == [
        "commentary:new",
        "commentary:update",
        "score:update",
    ]
    retraction = report.changes[1].payload
    assert (retraction["type"], retraction["retracted"]) == ("goal", True)
    events = {e["type"]: e for e in await list_events(conn, match_id, limit=10)}
    assert events["goal"]["retracted"] is True  # still there, marked
    assert events["var"]["message"] == "Goal disallowed"
    assert await latest_outcome(conn, "alpha") == ("applied", None)


async def test_a_lower_score_without_a_retraction_from_another_feed_is_refused(
    pool: Pool, conn: Conn
) -> None:
    await ingest(pool, "alpha", obs("alpha", "a-1", score=(2, 1), minute=60), at=T0)
    # alpha goes quiet; beta reports fewer goals and no retraction
    await ingest(pool, "beta", obs("beta", "b-1", score=(1, 1), minute=64), at=T0 + minutes(4))
    match = await get_match(conn, await only_match(conn))
    assert (match["homeScore"], match["awayScore"]) == (2, 1)
    outcome, reason = await latest_outcome(conn, "beta")
    assert outcome == "rejected"
    assert reason is not None and "score_decrease" in reason


async def test_an_illegal_status_move_is_ignored_and_recorded_on_the_observation(
    pool: Pool, conn: Conn
) -> None:
    await ingest(pool, "alpha", obs("alpha", "a-1", score=(1, 1), minute=80), at=T0)
    await ingest(
        pool,
        "alpha",
        obs("alpha", "a-1", status=MatchStatus.FINISHED, score=(2, 1)),
        at=T0 + minutes(70),
    )
    match_id = await only_match(conn)
    finished = await get_match(conn, match_id)
    assert finished["status"] == "finished"

    report = await ingest(
        pool, "alpha", obs("alpha", "a-1", score=(2, 1), minute=90), at=T0 + minutes(72)
    )
    assert report.changes == []
    assert await get_match(conn, match_id) == finished
    rows = await observation_rows(conn, "alpha")
    assert (rows[-1]["status"], rows[-1]["outcome"]) == ("live", "rejected")
    assert rows[-1]["reason"].startswith("illegal_status: illegal status move finished -> live")
    assert report.rejected and "finished -> live" in report.rejected[0]


# -- manual overrides ------------------------------------------------------------------------


async def test_an_override_pins_the_match_against_every_feed_until_cleared_with_an_audit_trail(
    pool: Pool, conn: Conn
) -> None:
    await ingest(pool, "alpha", obs("alpha", "a-1", score=(1, 0), minute=30), at=T0)
    match_id = await only_match(conn)

    pinned = await overrides.set_score(conn, match_id, 0, 0, who="ops", reason="goal was offside")
    assert [c.type for c in pinned] == ["score:update", "match:update"]
    assert all(c.source == "override" for c in pinned)
    match = await get_match(conn, match_id)
    assert (match["homeScore"], match["awayScore"]) == (0, 0)
    assert match["override"]["who"] == "ops"
    assert match["override"]["reason"] == "goal was offside"

    # both feeds keep saying 1-0 (new observations): the override holds
    for feed, minute in (("alpha", 33), ("beta", 34)):
        report = await ingest(
            pool, feed, obs(feed, f"{feed[0]}-1", score=(1, 0), minute=minute), at=T0 + minutes(2)
        )
        assert report.changes == []
    match = await get_match(conn, match_id)
    assert (match["homeScore"], match["awayScore"], match["clock"]["minute"]) == (0, 0, 30)
    outcome, reason = await latest_outcome(conn, "alpha")
    assert outcome == "rejected"
    assert reason is not None and reason.startswith("overridden:") and "ops" in reason

    await overrides.set_status(conn, match_id, MatchStatus.HALFTIME, who="ops", reason="HT")
    assert (await get_match(conn, match_id))["status"] == "halftime"

    cleared = await overrides.clear(conn, match_id, who="lead", reason="feeds agree again")
    assert [c.type for c in cleared] == ["match:update"]
    assert cleared[0].payload == {"override": None}
    assert (await get_match(conn, match_id))["override"] is None
    assert await overrides.clear(conn, match_id, who="lead") == []  # nothing left to clear

    trail = await audit_trail(conn, match_id)
    assert [(r["action"], r["who"], r["reason"]) for r in trail] == [
        ("score", "ops", "goal was offside"),
        ("status", "ops", "HT"),
        ("clear", "lead", "feeds agree again"),
    ]
    assert (trail[0]["old"]["homeScore"], trail[0]["new"]["homeScore"]) == (1, 0)
    assert trail[0]["old"]["override"] is None
    assert trail[0]["new"]["override"]["who"] == "ops"
    assert (trail[1]["old"]["status"], trail[1]["new"]["status"]) == ("live", "halftime")
    assert trail[2]["old"]["override"] is not None and trail[2]["new"]["override"] is None
    assert all(r["at"] is not None for r in trail)
    assert trail[0]["at"] <= trail[1]["at"] <= trail[2]["at"]

    # cleared: the next observation is reconciled again (second half, a second goal)
    await ingest(pool, "alpha", obs("alpha", "a-1", score=(2, 0), minute=50), at=T0 + minutes(20))
    match = await get_match(conn, match_id)
    assert (match["status"], match["homeScore"], match["awayScore"]) == ("live", 2, 0)
    assert await latest_outcome(conn, "alpha") == ("applied", None)


async def test_after_clearing_a_too_high_override_the_feeds_lower_score_is_taken(
    pool: Pool, conn: Conn
) -> None:
    await ingest(pool, "alpha", obs("alpha", "a-1", score=(1, 0), minute=30), at=T0)
    match_id = await only_match(conn)
    await overrides.set_score(conn, match_id, 3, 0, who="ops", reason="typo incoming")
    await overrides.clear(conn, match_id, who="ops", reason="that was a typo")
    await ingest(pool, "alpha", obs("alpha", "a-1", score=(1, 0), minute=31), at=T0 + minutes(1))
    match = await get_match(conn, match_id)
    assert (match["homeScore"], match["awayScore"]) == (1, 0), await latest_outcome(conn, "alpha")


async def test_an_override_reason_over_the_limit_is_refused_naming_it(
    conn: Conn, factory: Factory
) -> None:
    match = await factory.match()
    with pytest.raises(InvalidChange, match="--reason is 501 characters long; at most 500"):
        await overrides.set_score(conn, match["id"], 1, 0, who="ops", reason="r" * 501)
    assert (await get_match(conn, match["id"]))["override"] is None


# -- exactly once ----------------------------------------------------------------------------


async def test_the_same_observation_twice_is_recorded_and_applied_once(
    pool: Pool, conn: Conn
) -> None:
    seen = obs("alpha", "a-1", score=(1, 0), minute=30, events=(goal("g1", "home", 28),))
    first = await ingest(pool, "alpha", seen, at=T0)
    assert first.new_observations == 1 and first.changes
    match_id = await only_match(conn)
    log = await change_log(conn, match_id)

    again = await ingest(pool, "alpha", seen, seen, at=T0 + minutes(1))
    assert (again.observations, again.new_observations, again.changes) == (2, 0, [])
    assert await change_log(conn, match_id) == log
    rows = await observation_rows(conn)
    assert len(rows) == 1
    assert rows[0]["observed_at"] == T0 + minutes(1)  # still fresh: it was seen again
    assert len(await list_events(conn, match_id, limit=10)) == 1


async def test_concurrent_ingests_of_one_observation_apply_it_once(pool: Pool, conn: Conn) -> None:
    batch = [
        obs("alpha", f"a-{n}", home=f"Home {n}", away=f"Away {n}", score=(n, 0), minute=30)
        for n in range(1, 6)
    ]
    reports = await asyncio.gather(*(ingest(pool, "alpha", *batch, at=T0) for _ in range(4)))
    assert sum(r.new_observations for r in reports) == 5
    assert sum(r.matches_created for r in reports) == 5
    assert len(await observation_rows(conn)) == 5
    seqs = await assert_seqs_gap_free(conn)
    assert sum(len(r.changes) for r in reports) == sum(seqs.values())
    for match_id in seqs:
        assert [t for _, t in await change_log(conn, match_id)] == ["score:update", "match:status"]


# -- entity resolution -----------------------------------------------------------------------

PL_ALPHA = CompetitionRef("PL", "Premier League", "England")
PL_BETA = CompetitionRef("39", "Premier League", "England")


async def test_one_real_match_seen_by_two_providers_with_other_ids_and_spellings_is_one_match(
    pool: Pool, conn: Conn
) -> None:
    first = obs(
        "alpha",
        "416332",
        home="Brighton & Hove Albion FC",
        away="Leicester City FC",
        competition=PL_ALPHA,
        score=(1, 0),
        minute=20,
    )
    second = obs(
        "beta",
        "868012",
        home="Brighton",
        away="Leicester",
        competition=PL_BETA,
        score=(1, 0),
        minute=21,
    )
    created = await ingest(pool, "alpha", first, at=T0)
    joined = await ingest(pool, "beta", second, at=T0 + minutes(0.5))
    assert (created.matches_created, joined.matches_created) == (1, 0)
    match_id = await only_match(conn)
    assert await crosswalk.provider_ids_of_match(conn, match_id) == {
        "alpha": "416332",
        "beta": "868012",
    }
    match = await get_match(conn, match_id)
    assert match["homeTeam"]["name"] == "Brighton & Hove Albion FC"
    assert match["competition"]["name"] == "Premier League"
    cur = await conn.execute("SELECT count(*) AS n FROM teams")
    assert (await cur.fetchone() or {})["n"] == 2
    # beta's spellings are learnt: its team ids now resolve without the names
    home_id = await crosswalk.lookup(conn, "team", "beta", second.home.provider_id)
    assert home_id == match["homeTeam"]["id"]
    assert (await ingest(pool, "beta", second, at=T0 + minutes(1))).matches_created == 0


async def test_an_ambiguous_observation_is_reported_and_rejected_not_guessed(
    pool: Pool, conn: Conn, factory: Factory
) -> None:
    # the same fixture was created twice (say, through the API)
    one = await factory.match(home="Riverside FC", away="Hilltop United", start_time=KICKOFF)
    two = await factory.match(home="Riverside FC", away="Hilltop United", start_time=KICKOFF)
    report = await ingest(pool, "alpha", obs("alpha", "a-9", score=(1, 0)), at=T0)
    assert report.changes == [] and report.matches_created == 0
    assert len(report.ambiguous) == 1
    assert f"could be matches {one['id']}, {two['id']}" in report.ambiguous[0]
    rows = await observation_rows(conn)
    assert len(rows) == 1
    assert (rows[0]["outcome"], rows[0]["match_id"]) == ("rejected", None)
    assert "`livescore link match alpha a-9 MATCH_ID`" in rows[0]["reason"]
    assert await crosswalk.lookup(conn, "match", "alpha", "a-9") is None
    assert await match_ids(conn) == [one["id"], two["id"]]
    for match in (one, two):
        assert (await get_match(conn, match["id"]))["seq"] == 0


async def test_an_operator_link_settles_an_ambiguous_match(
    pool: Pool, conn: Conn, factory: Factory
) -> None:
    one = await factory.match(home="Riverside FC", away="Hilltop United", start_time=KICKOFF)
    two = await factory.match(home="Riverside FC", away="Hilltop United", start_time=KICKOFF)
    assert (await ingest(pool, "alpha", obs("alpha", "a-9", score=(1, 0)), at=T0)).ambiguous
    assert await crosswalk.relink(conn, "match", "alpha", "a-9", two["id"]) is None
    report = await ingest(pool, "alpha", obs("alpha", "a-9", score=(1, 0)), at=T0 + minutes(1))
    assert not report.ambiguous and report.changes
    assert (await get_match(conn, two["id"]))["homeScore"] == 1
    assert (await get_match(conn, one["id"]))["seq"] == 0
    # one match has one id per provider; a link to a missing match is refused
    with pytest.raises(Conflict):
        await crosswalk.relink(conn, "match", "alpha", "a-10", two["id"])
    with pytest.raises(NotFound):
        await crosswalk.relink(conn, "team", "alpha", "t-1", 999_999)


async def test_a_competition_name_two_competitions_share_is_ambiguous(
    pool: Pool, conn: Conn
) -> None:
    # two leagues of one name (store.reference.create: get-or-create would find the first)
    await reference.create(conn, "competition", "Premier League", "football", country="England")
    await reference.create(conn, "competition", "Premier League", "football", country="Wales")
    report = await ingest(
        pool,
        "alpha",
        obs("alpha", "a-1", competition=CompetitionRef("PL", "Premier League")),
        at=T0,
    )
    assert report.matches_created == 0
    assert report.ambiguous and "competition 'Premier League' could be" in report.ambiguous[0]
    assert await match_ids(conn) == []
    # with the country the provider gives, it is not ambiguous
    report = await ingest(
        pool,
        "alpha",
        obs("alpha", "a-2", competition=CompetitionRef("PL2", "Premier League", "Wales")),
        at=T0,
    )
    assert report.matches_created == 1 and not report.ambiguous


# -- polling: a match that vanishes from the live list ---------------------------------------

FD_BASE = "http://football-data.test"
HOME, AWAY = (65, "Manchester City FC"), (66, "Manchester United FC")
OTHER_HOME, OTHER_AWAY = (57, "Arsenal FC"), (61, "Chelsea FC")


async def test_a_match_vanished_from_the_live_list_is_fetched_by_id_not_assumed_over(
    pctx: PipelineContext, conn: Conn
) -> None:
    feed = await add_feed(
        conn, FeedConfig(name="fd", kind="football-data", base_url=FD_BASE, priority=10)
    )
    kickoff = clock.now().replace(microsecond=0) - minutes(80)
    derby = fd_match(
        1001, HOME, AWAY, status=MatchStatus.LIVE, score=(2, 1), kickoff=kickoff, minute=88
    )
    other = fd_match(
        1002, OTHER_HOME, OTHER_AWAY, status=MatchStatus.LIVE, score=(0, 0), kickoff=kickoff,
        minute=87,
    )  # fmt: skip
    with respx.mock(base_url=FD_BASE, assert_all_called=True) as mock:
        live = mock.get("/v4/matches", params={"status": "LIVE"}).mock(
            side_effect=[
                httpx.Response(200, text=fd_list(derby, other)),
                httpx.Response(200, text=fd_list(other | {"minute": 89})),
            ]
        )
        finished = derby | {
            "status": "FINISHED",
            "score": derby["score"] | {"fullTime": {"home": 3, "away": 1}},
        }
        by_id = mock.get("/v4/matches/1001").mock(
            return_value=httpx.Response(200, text=fd_one(finished))
        )

        first = await poll_feed(pctx, feed, "live", clock.now())
        assert (first.vanished_fetched, first.report.matches_created) == (0, 2)
        assert not by_id.called
        second = await poll_feed(pctx, feed, "live", clock.now())

    assert live.call_count == 2 and by_id.call_count == 1
    assert second.vanished_fetched == 1
    derby_id = await crosswalk.lookup(conn, "match", "football-data", "1001")
    assert derby_id is not None
    match = await get_match(conn, derby_id)
    assert (match["status"], match["homeScore"], match["awayScore"]) == ("finished", 3, 1)
    assert [c.type for c in await changes_since(conn, derby_id, 0)][-2:] == [
        "score:update",
        "match:status",
    ]
