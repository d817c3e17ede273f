"""A scorer app runs a match from kickoff to full time over REST alone (create,
PATCH live, goals as commentary, a VAR retraction, half time, second half, full
time) against real edge nodes, while a real WebSocket subscriber on the other
node receives every change exactly once, in order, and ends on the right score."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import httpx

from livescore import clock
from pipeline.relay import Relay
from store.apikeys import create_key
from store.db import Conn
from tests.edge.conftest import auth
from tests.waiting import eventually
from tests.ws.conftest import EdgeFactory
from tests.ws.helpers import CHANGE_TYPES, WsClient, ws_url


def goal(minute: int, team: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"minute": minute, "eventType": "goal", "team": team, "message": message, **extra}


async def test_a_scorer_runs_a_match_over_rest_and_a_subscriber_sees_every_change_in_order(
    edges: EdgeFactory, relay: Relay, conn: Conn
) -> None:
    writer_node, reader_node = edges(2)
    key = (await create_key(conn, f"scorer-{secrets.token_hex(4)}")).plain
    start = clock.now().replace(microsecond=0) + timedelta(minutes=5)
    tag = secrets.token_hex(3)
    async with (
        httpx.AsyncClient(base_url=writer_node.url, headers=auth(key)) as http,
        WsClient(ws_url(reader_node)) as subscriber,
    ):

        async def send(method: str, path: str, body: dict[str, Any]) -> Any:
            response = await http.request(method, path, json=body)
            assert response.status_code in (200, 201), (method, path, body, response.text)
            return response.json()["data"]

        match = await send(
            "POST",
            "/api/matches",
            {
                "sport": "football",
                "homeTeam": f"Scorers United {tag}",
                "awayTeam": f"Reporters City {tag}",
                "startTime": start.isoformat(),
            },
        )
        mid = match["id"]
        reply = await subscriber.request({"action": "subscribe", "matchId": mid})
        assert reply["type"] == "subscribed" and reply["seq"] == 0

        one = f"/api/matches/{mid}"
        commentary = f"{one}/commentary"
        await send("PATCH", one, {"status": "live"})
        await send("POST", commentary, {"minute": 1, "message": "Kick-off", "period": 1})
        await send("POST", commentary, goal(12, "home", "1-0", actor="A. Striker"))
        await send("POST", commentary, goal(30, f"reporters city {tag}", "1-1"))  # by name
        disallowed = await send("POST", commentary, goal(41, "home", "2-1?"))
        await send(
            "POST",
            commentary,
            {"minute": 43, "eventType": "var", "message": "offside", "retracts": disallowed["id"]},
        )
        await send("PATCH", one, {"status": "halftime"})
        await send("PATCH", one, {"status": "live"})
        await send("POST", commentary, goal(77, "home", "2-1", eventType="penalty_goal"))
        await send("PATCH", one, {"minute": 90, "addedTime": 4})
        final = await send("PATCH", one, {"status": "finished", "reason": "full time"})

        async def all_arrived() -> bool:
            assert subscriber.seqs(mid) and subscriber.seqs(mid)[-1] == final["seq"]
            return True

        await eventually(all_arrived, 15, "every change to reach the subscriber")
        log = (await http.get(f"{one}/changes?limit=1000")).json()["data"]

    frames = [f for f in subscriber.frames if f["type"] in CHANGE_TYPES and f["matchId"] == mid]
    # every change exactly once, in order, as the change log has it
    assert [f["seq"] for f in frames] == list(range(1, final["seq"] + 1))
    assert [(f["seq"], f["type"]) for f in frames] == [(c["seq"], c["type"]) for c in log]
    scores = [
        (f["data"]["homeScore"], f["data"]["awayScore"])
        for f in frames
        if f["type"] == "score:update" and f["data"]["homeScore"] is not None
    ]
    distinct = [s for i, s in enumerate(scores) if i == 0 or s != scores[i - 1]]
    assert distinct == [(0, 0), (1, 0), (1, 1), (2, 1), (1, 1), (2, 1)]
    statuses = [f["data"]["status"] for f in frames if f["type"] == "match:status"]
    assert statuses == ["live", "halftime", "live", "finished"]
    retracted = [f["data"] for f in frames if f["type"] == "commentary:update"]
    assert [(e["id"], e["retracted"]) for e in retracted] == [(disallowed["id"], True)]
    assert (final["homeScore"], final["awayScore"], final["status"]) == (2, 1, "finished")
    assert final["breakdown"]["halfTime"] == {"home": 1, "away": 1}
    assert final["clock"]["period"] == "FT"
