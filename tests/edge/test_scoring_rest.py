"""Keeping score over REST against a real ``livescore serve``: the original Live
Score API's bodies are accepted as its clients send them, free-text event kinds
and team names map onto ours (tables), a goal posted on a match no feed covers
moves the score and a retraction takes it back, PATCH scores a match (an
override on a match a feed covers, audited with the key's name, cleared over
REST), and bad bodies are still refused with messages that name the field."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import httpx
import pytest

from livescore import clock
from livescore.model import MatchStatus
from pipeline.decision import ReconcilePolicy
from pipeline.ingest import ingest_observations
from store.apikeys import create_key
from store.db import Conn, Pool
from store.matches import get_match
from store.overrides import audit_trail
from store.reference import add_aliases
from tests.edge.conftest import EdgeNode, auth
from tests.factories import Factory
from tests.pipeline.builders import obs

pytestmark = pytest.mark.slow


def unique(label: str) -> str:
    return f"{label} {secrets.token_hex(3)}"


@pytest.fixture
async def key(conn: Conn) -> tuple[str, str]:
    """(name, plain key) of a fresh API key."""
    name = f"scorer-{secrets.token_hex(4)}"
    return name, (await create_key(conn, name)).plain


async def post_event(http: httpx.AsyncClient, match_id: int, body: dict[str, Any]) -> Any:
    response = await http.post(f"/api/matches/{match_id}/commentary", json=body)
    assert response.status_code == 201, (body, response.text)
    return response.json()["data"]


async def match_of(http: httpx.AsyncClient, match_id: int) -> Any:
    response = await http.get(f"/api/matches/{match_id}")
    assert response.status_code == 200, response.text
    return response.json()["data"]


# -- (a) the original project's bodies, replayed ------------------------------------------

# POST /api/matches as the original's validation schema and test factory send it: team
# names, ISO 8601 start/end (JavaScript's toISOString, milliseconds and Z), and the
# optional initial score, as numbers or numeric strings (its schema converted them).
ORIGINAL_MATCHES: list[tuple[dict[str, Any], tuple[int, int]]] = [
    ({}, (0, 0)),
    ({"homeScore": 0, "awayScore": 0}, (0, 0)),
    ({"homeScore": 2, "awayScore": 1}, (2, 1)),
    ({"homeScore": "3", "awayScore": "0"}, (3, 0)),
    ({"homeScore": 1}, (1, 0)),
]

# POST .../commentary as the original's schema and factory send it: minute and message
# required; sequence, period (number or numeric string), eventType (any text, default
# "commentary"), actor, team (by name), metadata and tags optional.
ORIGINAL_COMMENTARY: list[dict[str, Any]] = [
    {"minute": 0, "message": "Kick-off"},
    {"minute": 1, "sequence": 0, "period": 1, "eventType": "commentary", "message": "Underway"},
    {
        "minute": 12,
        "sequence": 1,
        "period": 1,
        "eventType": "goal",
        "actor": "Erling Haaland",
        "team": "{home}",
        "message": "GOAL! A tap-in at the far post.",
        "metadata": {"assist": "Kevin De Bruyne", "xg": 0.41},
        "tags": ["goal", "highlight"],
    },
    {
        "minute": 23,
        "sequence": 2,
        "period": "1",
        "eventType": "card",
        "actor": "Declan Rice",
        "team": "{away_upper}",
        "message": "Yellow card for a late challenge",
        "tags": ["card"],
    },
    {"minute": 31, "sequence": 3, "period": 1, "eventType": "corner", "message": "Corner"},
    {
        "minute": 44,
        "sequence": 4,
        "period": 1,
        "eventType": "foul",
        "team": "{home}",
        "message": "Free kick",
        "metadata": {},
        "tags": [],
    },
    {
        "minute": 46,
        "sequence": 5,
        "period": 2,
        "eventType": "substitution",
        "team": "{away}",
        "actor": "Bukayo Saka",
        "message": "Change",
        "metadata": {"playerOut": "Trossard"},
    },
    {"minute": 67, "sequence": 6, "period": 2, "eventType": "offside", "message": "Flag up"},
    {"minute": 90, "sequence": 7, "period": 2, "eventType": "fulltime", "message": "Full time"},
]


async def test_the_original_apis_match_bodies_are_accepted_with_their_initial_score(
    edge: EdgeNode, key: tuple[str, str]
) -> None:
    start = (clock.now() + timedelta(days=3)).replace(microsecond=0)
    end = start + timedelta(hours=2)
    async with httpx.AsyncClient(base_url=edge.url, headers=auth(key[1])) as http:
        for extra, score in ORIGINAL_MATCHES:
            body = {
                "sport": "football",
                "homeTeam": unique("Manchester City"),
                "awayTeam": unique("Arsenal"),
                "startTime": start.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "endTime": end.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                **extra,
            }
            created = await http.post("/api/matches", json=body)
            assert created.status_code == 201, (body, created.text)
            match = created.json()["data"]
            assert (match["homeScore"], match["awayScore"]) == score, body
            assert match["homeTeam"]["name"] == body["homeTeam"]
            # an initial score is the match's first change (seq 1), through the write path
            assert match["seq"] == (0 if score == (0, 0) else 1)
            assert (await match_of(http, match["id"]))["homeScore"] == score[0]


async def test_the_original_apis_commentary_bodies_are_all_accepted_and_kept(
    edge: EdgeNode, key: tuple[str, str], factory: Factory
) -> None:
    home, away = unique("Manchester City"), unique("Arsenal")
    match = await factory.match(home=home, away=away, status=MatchStatus.LIVE)
    names = {"{home}": home, "{away}": away, "{away_upper}": away.upper()}
    async with httpx.AsyncClient(base_url=edge.url, headers=auth(key[1])) as http:
        stored = []
        for template in ORIGINAL_COMMENTARY:
            body = {k: names.get(v, v) if isinstance(v, str) else v for k, v in template.items()}
            stored.append(await post_event(http, match["id"], body))
        listed = (await http.get(f"/api/matches/{match['id']}/commentary?limit=50")).json()
        after = await match_of(http, match["id"])
    kinds = [(e["type"], e["originalType"]) for e in stored]
    assert kinds == [
        ("text", None),
        ("text", "commentary"),
        ("goal", None),
        ("yellow", "card"),
        ("text", "corner"),
        ("text", "foul"),
        ("substitution", None),
        ("text", "offside"),
        ("period_end", "fulltime"),
    ]
    assert [e["sequence"] for e in stored] == [None, *range(8)]
    assert [e["period"] for e in stored] == [None, "1H", "1H", "1H", "1H", "1H", "2H", "2H", "2H"]
    assert stored[2]["tags"] == ["goal", "highlight"] and stored[0]["tags"] == []
    assert stored[2]["metadata"] == {"assist": "Kevin De Bruyne", "xg": 0.41}
    sides = [None, None, "home", "away", None, "home", "away", None, None]
    assert [e["side"] for e in stored] == sides
    assert stored[3]["team"] == {"id": match["awayTeam"]["id"], "name": away}
    # what was returned is what is stored and listed
    assert sorted(listed["data"], key=lambda e: e["id"]) == stored
    # no feed covers this match: the goal moved the score in the same change
    assert (after["homeScore"], after["awayScore"]) == (1, 0)


# -- (d) tables: event kinds and teams -----------------------------------------------------

EVENT_KINDS = [
    # (sent, stored type, originalType kept)
    (None, "text", None),
    ("text", "text", None),
    ("commentary", "text", "commentary"),
    ("goal", "goal", None),
    ("Goal", "goal", "Goal"),
    ("own_goal", "own_goal", None),
    ("own goal", "own_goal", "own goal"),
    ("OWN", "own_goal", "OWN"),
    ("penalty_goal", "penalty_goal", None),
    ("penalty-scored", "penalty_goal", "penalty-scored"),
    ("missed_penalty", "missed_penalty", None),
    ("penalty_missed", "missed_penalty", "penalty_missed"),
    ("card", "yellow", "card"),
    ("Yellow Card", "yellow", "Yellow Card"),
    ("YELLOW_RED", "second_yellow", "YELLOW_RED"),
    ("second_yellow", "second_yellow", None),
    ("red_card", "red", "red_card"),
    ("red", "red", None),
    ("subst", "substitution", "subst"),
    ("sub", "substitution", "sub"),
    ("substitution", "substitution", None),
    ("VAR", "var", "VAR"),
    ("kickoff", "period_start", "kickoff"),
    ("halftime", "period_end", "halftime"),
    ("corner", "text", "corner"),
    ("penalty", "text", "penalty"),  # awarded or scored? unknown: kept, never a goal
    ("Throw-in", "text", "Throw-in"),
]


@pytest.mark.parametrize(("sent", "stored", "original"), EVENT_KINDS)
async def test_event_kinds_map_onto_ours_and_unknown_ones_are_kept(
    edge: EdgeNode,
    key: tuple[str, str],
    factory: Factory,
    sent: str | None,
    stored: str,
    original: str | None,
) -> None:
    match = await factory.match(status=MatchStatus.LIVE)
    body: dict[str, Any] = {"minute": 10, "message": "event", "team": "home"}
    if sent is not None:
        body["eventType"] = sent
    async with httpx.AsyncClient(base_url=edge.url, headers=auth(key[1])) as http:
        event = await post_event(http, match["id"], body)
        # "type" is the same field as "eventType"
        body = {**body, "minute": 11}
        if sent is not None:
            body["type"] = body.pop("eventType")
        again = await post_event(http, match["id"], body)
    assert (event["type"], event["originalType"]) == (stored, original)
    assert (again["type"], again["originalType"]) == (stored, original)


TEAMS = [
    # (team as sent, given the home and away names and ids -> side)
    ("home", "home"),
    ("away", "away"),
    ("{home_id}", "home"),
    ("{away_id}", "away"),
    ("{home}", "home"),
    ("{away}", "away"),
    ("{home_upper}", "home"),
    ("{away_lower}", "away"),
    ("Red Devils", "home"),  # an alias the home team is known by
    ("{away} FC", "away"),  # a spelling with a noise word: the same name key
]


@pytest.mark.parametrize(("sent", "side"), TEAMS)
async def test_team_is_a_side_an_id_or_either_teams_name(
    edge: EdgeNode, key: tuple[str, str], factory: Factory, conn: Conn, sent: str, side: str
) -> None:
    home, away = unique("Manchester United"), unique("Aston Villa")
    match = await factory.match(home=home, away=away, status=MatchStatus.LIVE)
    await add_aliases(conn, "team", "football", match["homeTeam"]["id"], "Red Devils")
    values: dict[str, Any] = {
        "{home_id}": match["homeTeam"]["id"],
        "{away_id}": match["awayTeam"]["id"],
        "{home}": home,
        "{away}": away,
        "{home_upper}": home.upper(),
        "{away_lower}": away.lower(),
        "{away} FC": f"{away} FC",
    }
    team = values.get(sent, sent)
    async with httpx.AsyncClient(base_url=edge.url, headers=auth(key[1])) as http:
        event = await post_event(
            http, match["id"], {"minute": 5, "eventType": "card", "message": "x", "team": team}
        )
    assert event["side"] == side
    assert event["team"]["id"] == match[f"{side}Team"]["id"]


BAD_EVENTS = [
    # (body, field, words the message holds)
    ({"minute": 5, "message": "x", "team": "Nobody Rovers"}, "team", "does not play"),
    ({"minute": 5, "message": "x", "team": 123456789}, "team", "does not play"),
    ({"minute": 5, "message": "x", "period": 6}, "period", "period number"),
    ({"minute": 5, "message": "x", "period": 1.0}, "period", "period number"),
    ({"minute": 5, "message": "x", "tags": "goal"}, "tags", "array of strings"),
    ({"minute": 5, "message": "x", "tags": ["a"] * 21}, "tags", "at most 20"),
    ({"minute": 5, "message": "x", "tags": ["ok", " "]}, "tags", "item 1"),
    ({"minute": 5, "message": "x", "sequence": -1}, "sequence", "whole number"),
    ({"minute": 5, "message": "x", "eventType": "x" * 65}, "type", "at most 64"),
    ({"minute": 5, "message": "x", "eventType": " "}, "type", "non-empty"),
    ({"minute": 5, "message": "x", "type": "goal", "eventType": "goal"}, "eventType", "not both"),
    ({"minute": "5", "message": "x"}, "minute", "whole number"),
    ({"minute": 5, "message": " "}, "message", "non-empty"),
    ({"minute": 5}, "message", "required"),
    ({"minute": 5, "message": "x", "venue": "Wembley"}, "venue", "unknown field"),
    ({"minute": 5, "message": "x", "eventType": "goal"}, "team", "which team it counts for"),
    ({"minute": 5, "message": "x", "retracts": 987654321}, "retracts", "has no event"),
]


@pytest.mark.parametrize(("body", "field", "words"), BAD_EVENTS)
async def test_bad_commentary_bodies_are_refused_naming_the_field(
    edge: EdgeNode,
    key: tuple[str, str],
    factory: Factory,
    body: dict[str, Any],
    field: str,
    words: str,
) -> None:
    match = await factory.match(status=MatchStatus.LIVE)
    async with httpx.AsyncClient(base_url=edge.url, headers=auth(key[1])) as http:
        before = await match_of(http, match["id"])
        response = await http.post(f"/api/matches/{match['id']}/commentary", json=body)
        after = await match_of(http, match["id"])
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert any(e["field"] == field and words in e["message"] for e in error["details"]["errors"])
    assert after["seq"] == before["seq"]  # nothing written


# -- scoring on a match no feed covers ------------------------------------------------------


def event(minute: int, kind: str, team: str | None, message: str) -> dict[str, Any]:
    body: dict[str, Any] = {"minute": minute, "eventType": kind, "message": message}
    if team is not None:
        body["team"] = team
    return body


async def test_goals_move_the_score_and_a_retraction_moves_it_back(
    edge: EdgeNode, key: tuple[str, str], factory: Factory
) -> None:
    match = await factory.match(status=MatchStatus.LIVE)
    mid = match["id"]
    async with httpx.AsyncClient(base_url=edge.url, headers=auth(key[1])) as http:
        goal = await post_event(http, mid, event(9, "goal", "home", "1-0"))
        own = await post_event(http, mid, event(20, "own_goal", "away", "1-1: counts for away"))
        pen = await post_event(http, mid, event(30, "penalty_goal", "away", "1-2"))
        await post_event(http, mid, event(31, "missed_penalty", "home", "saved"))
        assert ((m := await match_of(http, mid))["homeScore"], m["awayScore"]) == (1, 2)
        var = await post_event(
            http, mid, {**event(33, "var", None, "penalty overturned"), "retracts": pen["id"]}
        )
        after = await match_of(http, mid)
        twice = await http.post(
            f"/api/matches/{mid}/commentary",
            json={"minute": 34, "eventType": "var", "retracts": pen["id"], "message": "again"},
        )
        changes = (await http.get(f"/api/matches/{mid}/changes?since={var['seq'] - 1}")).json()
    assert (after["homeScore"], after["awayScore"]) == (1, 1)
    assert goal["seq"] + 1 < own["seq"]  # each goal: its commentary, then the score
    # the retraction is one change set: the VAR line, the goal marked retracted, the score
    assert [(c["type"], c["seq"]) for c in changes["data"]] == [
        ("commentary:new", var["seq"]),
        ("commentary:update", var["seq"] + 1),
        ("score:update", var["seq"] + 2),
    ]
    assert changes["data"][1]["data"]["id"] == pen["id"]
    assert changes["data"][1]["data"]["retracted"] is True
    assert (changes["data"][2]["data"]["homeScore"], changes["data"][2]["data"]["awayScore"]) == (
        1,
        1,
    )
    assert twice.status_code == 422 and "already retracted" in twice.text


# -- PATCH ----------------------------------------------------------------------------------


async def test_patch_sets_score_status_and_clock_audited_with_the_keys_name(
    edge: EdgeNode, key: tuple[str, str], factory: Factory, conn: Conn
) -> None:
    match = await factory.match()
    mid = match["id"]
    async with httpx.AsyncClient(base_url=edge.url, headers=auth(key[1])) as http:
        live = await http.patch(f"/api/matches/{mid}", json={"status": "live"})
        assert live.status_code == 200, live.text
        scored = await http.patch(
            f"/api/matches/{mid}",
            json={"homeScore": 2, "awayScore": "1", "minute": 38, "reason": "catch-up"},
        )
        illegal = await http.patch(f"/api/matches/{mid}", json={"status": "scheduled"})
        empty = await http.patch(f"/api/matches/{mid}", json={"reason": "nothing"})
        too_high = await http.patch(f"/api/matches/{mid}", json={"homeScore": 1000})
        unknown = await http.patch(f"/api/matches/{mid}", json={"score": "2-1"})
        no_key = await http.patch(
            f"/api/matches/{mid}", json={"homeScore": 3}, headers={"Authorization": ""}
        )
        half = await http.patch(f"/api/matches/{mid}", json={"status": "halftime"})
        final = await match_of(http, mid)
    assert live.json()["data"]["status"] == "live"
    assert live.json()["data"]["clock"]["minute"] == 0
    assert live.json()["data"]["clock"]["period"] == "1H"
    body = scored.json()["data"]
    assert (body["homeScore"], body["awayScore"], body["clock"]["minute"]) == (2, 1, 38)
    assert body["override"] is None  # no feed covers it: set, not pinned
    assert illegal.status_code == 409
    assert illegal.json()["error"]["code"] == "illegal_transition"
    assert "live -> scheduled" in illegal.json()["error"]["message"]
    assert empty.status_code == 422 and "at least one of" in empty.text
    assert too_high.status_code == 422 and "homeScore" in too_high.text
    assert unknown.status_code == 422 and "unknown field" in unknown.text
    assert no_key.status_code == 401
    assert (final["status"], final["clock"]["period"]) == ("halftime", "HT")
    assert final["breakdown"]["halfTime"] == {"home": 2, "away": 1}
    assert final["seq"] == half.json()["data"]["seq"]

    trail = await audit_trail(conn, mid)
    assert [(r["action"], r["who"]) for r in trail] == [("update", key[0])] * 3
    assert [r["reason"] for r in trail] == [
        "set over the REST API",
        "catch-up",
        "set over the REST API",
    ]
    assert (trail[1]["old"]["homeScore"], trail[1]["new"]["homeScore"]) == (0, 2)
    assert (trail[2]["old"]["status"], trail[2]["new"]["status"]) == ("live", "halftime")


# -- (c) a match a feed covers: PATCH pins like an override ----------------------------------


async def test_patch_on_a_covered_match_pins_it_until_cleared_over_rest(
    edge: EdgeNode, key: tuple[str, str], pool: Pool, conn: Conn
) -> None:
    home, away = unique("Riverside"), unique("Hilltop")
    feed, provider_id = "alpha", unique("m").replace(" ", "-")
    now = clock.now()
    start = now - timedelta(minutes=30)
    policy, priorities = ReconcilePolicy(), {feed: 10}

    async def observe(score: tuple[int, int], minute: int) -> None:
        seen = obs(feed, provider_id, home=home, away=away, score=score, minute=minute, start=start)
        await ingest_observations(
            pool, feed, [seen], at=clock.now(), priorities=priorities, policy=policy
        )

    await observe((1, 0), 30)
    cur = await conn.execute(
        "SELECT m.id FROM matches m JOIN teams t ON t.id = m.home_team_id WHERE t.name = %s",
        (home,),
    )
    row = await cur.fetchone()
    assert row is not None
    mid = int(row["id"])
    async with httpx.AsyncClient(base_url=edge.url, headers=auth(key[1])) as http:
        pinned = await http.patch(
            f"/api/matches/{mid}",
            json={"homeScore": 0, "awayScore": 0, "reason": "goal was offside"},
        )
        assert pinned.status_code == 200, pinned.text
        override = pinned.json()["data"]["override"]
        assert (override["who"], override["reason"]) == (key[0], "goal was offside")
        assert (override["homeScore"], override["awayScore"]) == (0, 0)

        # the feed keeps saying 1-0, then 2-0: the pin holds
        await observe((1, 0), 33)
        await observe((2, 0), 40)
        # (read from PostgreSQL: the edge caches ingestion's writes only once published,
        # and no relay runs in these tests)
        held = await get_match(conn, mid)
        assert (held["homeScore"], held["awayScore"]) == (0, 0)

        # a goal posted as commentary on a covered match is history, not the score
        await post_event(http, mid, event(41, "goal", "home", "the feed's goal"))
        assert (await match_of(http, mid))["homeScore"] == 0

        cleared = await http.delete(f"/api/matches/{mid}/override?reason=feed%20agrees")
        assert cleared.status_code == 200, cleared.text
        assert cleared.json()["data"]["override"] is None
        again = await http.delete(f"/api/matches/{mid}/override")
        assert again.status_code == 200 and again.json()["data"]["override"] is None

        # un-pinned: the feed's next report is taken
        await observe((2, 0), 44)
        taken = await get_match(conn, mid)
    assert (taken["homeScore"], taken["awayScore"]) == (2, 0)
    trail = await audit_trail(conn, mid)
    assert [(r["action"], r["who"], r["reason"]) for r in trail] == [
        ("update", key[0], "goal was offside"),
        ("clear", key[0], "feed agrees"),
    ]
    assert trail[0]["new"]["override"]["who"] == key[0]
