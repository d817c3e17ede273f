"""``/sse`` in a real headless Chromium: a page on another origin follows a match
with the browser's own EventSource (CORS), gets the snapshot and the changes as
they are published, and each event's ``lastEventId`` is the stream position the
browser would send back as ``Last-Event-ID`` on reconnecting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from livescore.model import MatchPatch, MatchStatus
from store.db import Conn
from store.writes import apply_change
from tests.edge.conftest import EdgeServers, publish
from tests.factories import Factory
from tests.waiting import eventually
from tests.ws.browser import chromium_or_skip, on_another_origin

pytestmark = pytest.mark.slow

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>sse from another origin</title></head>
<body><script>
window.events = [];
window.follow = (url) => {
  const source = new EventSource(url);
  for (const kind of ["subscribed", "score:update", "error"]) {
    source.addEventListener(kind, (e) => window.events.push(
      {type: e.type, lastEventId: e.lastEventId, data: JSON.parse(e.data)}));
  }
  source.onerror = () => window.events.push({type: "transport-error"});
};
window.ready = true;
</script></body></html>
"""


async def test_eventsource_on_another_origin_follows_a_match(
    edge_server: EdgeServers,
    factory: Factory,
    conn: Conn,
    redis: aioredis.Redis,
    tmp_path: Path,
) -> None:
    chromium_or_skip()  # before starting a node for nothing
    (node,) = edge_server.start(1)
    m = (await factory.match(status=MatchStatus.LIVE))["id"]
    async with on_another_origin(PAGE, tmp_path / "chromium") as browser:
        url = orjson.dumps(f"{node.url}/sse?matchId={m}").decode()
        await browser.evaluate(f"window.follow({url})")
        await browser.wait_for("window.events.length >= 1")
        for home in (1, 2):
            changes = await apply_change(
                conn, m, MatchPatch(source="t", home_score=home, away_score=0)
            )
            await publish(redis, node.keys, changes)

        async def received() -> list[dict[str, Any]] | None:
            events: list[dict[str, Any]] = await browser.evaluate("window.events")
            return events if len(events) >= 3 else None

        events = await eventually(received, 10, "the browser to receive both changes")
    subscribed, *changes = events
    assert subscribed["type"] == "subscribed" and subscribed["data"]["matchId"] == m
    seq = subscribed["data"]["seq"]
    assert subscribed["lastEventId"] == f"{m}:{seq}"
    assert [e["type"] for e in changes] == ["score:update", "score:update"]
    assert [e["lastEventId"] for e in changes] == [f"{m}:{seq + 1}", f"{m}:{seq + 2}"]
    assert changes[-1]["data"]["data"]["homeScore"] == 2
