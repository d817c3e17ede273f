"""``livescore record``: save a feed's raw responses as a replayable recording
(``providers.recording`` documents the format). Each round asks for today's
list, then the live list when the feed has one; secrets are never recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from livescore import clock
from livescore.logs import kv
from pipeline.context import PipelineContext
from providers.errors import BudgetExhausted, ProviderUnavailable
from providers.recording import RecordedFeed, RecordingWriter
from store.feeds import get_feed


async def record(
    ctx: PipelineContext,
    feed_name: str,
    out: Path | str,
    *,
    every: float,
    count: int,
    echo: Callable[[str], None] = print,
) -> int:
    async with ctx.pool.connection() as conn:
        feed = await get_feed(conn, feed_name)
    client = ctx.client_for(feed)
    adapter = client.adapter
    saved = 0
    recorded = RecordedFeed(feed.name, feed.kind, feed.priority, feed.competitions)
    with RecordingWriter(out, feeds=(recorded,)) as writer:
        for round_no in range(count):
            specs = [adapter.today_request(clock.now().date())]
            live = adapter.live_request()
            if live is not None:
                specs.append(live)
            for spec in specs:
                try:
                    response = await client.send(spec)
                except (BudgetExhausted, ProviderUnavailable) as exc:
                    echo(kv("record.skipped", feed=feed.name, purpose=spec.purpose, error=exc))
                    continue
                writer.write(response)
                saved += 1
                echo(kv("record.saved", feed=feed.name, purpose=spec.purpose,
                        status=response.status, bytes=len(response.body)))  # fmt: skip
            if round_no + 1 < count:
                await asyncio.sleep(every)
    return saved
