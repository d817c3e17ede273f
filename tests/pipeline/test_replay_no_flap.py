"""The shipped premier-league-matchday replays through the real pipeline with no
flap: VAR disallows Arsenal's 12th-minute goal, and football-data's lagging
0-1 (it counts the cancelled goal for another minute) is not published."""

from __future__ import annotations

from typing import Any

from pipeline.context import PipelineContext
from pipeline.replay import replay
from store.changes import changes_since
from store.db import Conn
from tests.pipeline.conftest import FIXTURES
from tests.pipeline.test_replay import canonical_match, expectations

NAME = "premier-league-matchday"
GOALS = {"goal", "penalty_goal", "own_goal"}


async def test_the_matchday_replay_publishes_no_score_the_goal_events_do_not_explain(
    pctx: PipelineContext, conn: Conn
) -> None:
    await replay(pctx, FIXTURES / NAME, speed=0)
    (expected,) = [m for m in expectations(NAME) if m["key"] == "mun-ars"]
    match_id = await canonical_match(conn, NAME, expected)
    changes = await changes_since(conn, match_id, 0, limit=100_000)
    goals: dict[int, dict[str, Any]] = {}  # event id -> latest published form
    retracted_at: int | None = None
    scores: list[tuple[int, int, int]] = []
    for change in changes:
        payload = change.payload
        if change.type in ("commentary:new", "commentary:update") and payload["type"] in GOALS:
            goals[payload["id"]] = payload
            if payload.get("retracted") and retracted_at is None:
                retracted_at = change.seq
        if change.type == "score:update":
            home, away = payload["homeScore"], payload["awayScore"]
            counted = {
                side: sum(1 for g in goals.values() if g["side"] == side and not g["retracted"])
                for side in ("home", "away")
            }
            # every score published is one the goal events (as published so far) explain
            assert home <= counted["home"] and away <= counted["away"], (
                change.seq,
                (home, away),
                counted,
            )
            scores.append((change.seq, home, away))
    assert retracted_at is not None, "the recording's VAR retraction was not published"
    after = [(h, a) for seq, h, a in scores if seq > retracted_at]
    # the first half after the VAR call stays 0-0 until United's 35th-minute goal
    assert after[0] == (0, 0)
    assert (0, 1) not in after[: after.index((1, 0))]
    assert scores[-1][1:] == (3, 1)
