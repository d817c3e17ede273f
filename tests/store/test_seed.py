"""`livescore db seed` loads a realistic matchday once."""

from __future__ import annotations

from store.changes import changes_since
from store.db import Conn
from store.matches import MatchFilter, list_matches
from store.seed import SEED_MATCHES, seed


async def test_seed_creates_a_day_in_several_states_and_is_idempotent(conn: Conn) -> None:
    assert await seed(conn) == len(SEED_MATCHES)
    assert await seed(conn) == 0
    matches, _ = await list_matches(conn, MatchFilter(), limit=100)
    assert len(matches) == len(SEED_MATCHES)
    statuses = {m["status"] for m in matches}
    assert {"finished", "live", "halftime", "postponed", "scheduled"} <= statuses
    finished = next(m for m in matches if m["status"] == "finished")
    assert (finished["homeScore"], finished["awayScore"]) == (2, 1)
    assert finished["breakdown"]["halfTime"] == {"home": 1, "away": 0}
    # seeded state went through the write path: seq matches the change log
    log = await changes_since(conn, finished["id"], 0)
    assert [c.seq for c in log] == list(range(1, finished["seq"] + 1))
