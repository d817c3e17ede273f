"""Replaying a recording "now": every recorded time moved by one offset.

A recording keeps its own clock: fetch times and kickoffs from the day it was
made. To show it as today's matchday (``livescore replay --now``, ``livescore
demo``), the replay adds one offset to every fetch time (the pipeline's
clock) and to every time the parsed observations carry (kickoffs, provider
update times), so reconciliation sees exactly the recorded story, only later.

``offset_to_now`` picks the offset that puts the first kickoff ``lead``
after now (rounded up to a whole minute, so kickoffs stay on the minute);
``paced`` replays everything that now lies in the past at once, then the
rest at ``speed`` recorded seconds per wall second, anchored to the wall clock
(no drift however long it runs). Note that at ``speed > 1`` the shifted clock
runs ahead of the wall clock: change timestamps (``ts``) are in the future.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from livescore.model import MatchObservation
from providers.base import RawResponse
from providers.errors import PayloadError
from providers.fixture import FixtureFeed
from providers.registry import adapter_for

#: Responses read to find the first kickoff (the first "today" lists of each feed).
KICKOFF_PROBE = 20


def first_kickoff(recording: FixtureFeed) -> datetime | None:
    """The earliest kickoff the recording's first responses announce."""
    adapters = {name: adapter_for(config) for name, config in recording.feed_configs().items()}
    kickoffs: list[datetime] = []
    for response in recording.responses[:KICKOFF_PROBE]:
        try:
            batch = adapters[response.feed].parse_report(response).observations
        except PayloadError:
            continue  # replay reports it; only the first kickoff is wanted here
        kickoffs += [obs.start_time for obs in batch]
    return min(kickoffs) if kickoffs else None


def offset_to_now(recording: FixtureFeed, now: datetime, lead: timedelta) -> timedelta:
    """The shift that puts the first kickoff ``lead`` after ``now`` (whole minutes)."""
    anchor = first_kickoff(recording) or recording.start
    seconds = (now + lead - anchor).total_seconds()
    return timedelta(minutes=math.ceil(seconds / 60))


def shift_observations(
    batch: Iterable[MatchObservation], delta: timedelta
) -> list[MatchObservation]:
    return [
        replace(
            obs,
            start_time=obs.start_time + delta,
            provider_updated_at=(
                obs.provider_updated_at + delta if obs.provider_updated_at else None
            ),
        )
        for obs in batch
    ]


async def paced(
    responses: Sequence[RawResponse], *, speed: float, shift: timedelta, now: datetime
) -> AsyncIterator[RawResponse]:
    """Yield responses (times unchanged): those whose shifted fetch time is not
    after ``now`` at once, the rest when the wall clock reaches them at ``speed``."""
    anchor_wall: float | None = None
    for response in responses:
        shifted = response.fetched_at + shift
        if shifted > now and speed > 0:
            if anchor_wall is None:
                anchor_wall = time.monotonic()
            due = anchor_wall + (shifted - now).total_seconds() / speed
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        yield response
