"""Row factories for tests: teams, competitions, matches, events.

Every write goes through the store's real functions (matches through
``create_match``, state and events through ``apply_change``).
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from livescore import clock
from livescore.model import EventType, MatchPatch, MatchStatus, NewEvent, Side
from store.db import Conn
from store.matches import NewMatch, create_match
from store.reference import get_or_create_competition, get_or_create_team
from store.writes import Change, apply_change

_counter = itertools.count(1)


class Factory:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def team(self, name: str | None = None, **kwargs: Any) -> int:
        return await get_or_create_team(self.conn, name or f"Team {next(_counter)}", **kwargs)

    async def competition(self, name: str | None = None, **kwargs: Any) -> int:
        return await get_or_create_competition(
            self.conn, name or f"Competition {next(_counter)}", **kwargs
        )

    async def match(
        self,
        *,
        home: str | int | None = None,
        away: str | int | None = None,
        competition: str | int | None = None,
        start_time: datetime | None = None,
        status: MatchStatus = MatchStatus.SCHEDULED,
        home_score: int | None = None,
        away_score: int | None = None,
        end_time: datetime | None = None,
    ) -> dict[str, Any]:
        """A match; ``status``/scores other than the defaults are applied through
        the write path (so they leave change-log rows)."""
        home_id = home if isinstance(home, int) else await self.team(home)
        away_id = away if isinstance(away, int) else await self.team(away)
        comp_id = (
            competition
            if isinstance(competition, int) or competition is None
            else await self.competition(competition)
        )
        match = await create_match(
            self.conn,
            NewMatch(
                home_team_id=home_id,
                away_team_id=away_id,
                start_time=start_time or clock.now().replace(microsecond=0) + timedelta(hours=1),
                competition_id=comp_id,
                end_time=end_time,
            ),
        )
        if status is not MatchStatus.SCHEDULED or home_score is not None:
            await apply_change(
                self.conn,
                match["id"],
                MatchPatch(
                    source="factory",
                    status=status if status is not MatchStatus.SCHEDULED else None,
                    home_score=home_score,
                    away_score=away_score,
                ),
            )
        return match

    async def event(
        self,
        match_id: int,
        *,
        type: EventType = EventType.TEXT,
        minute: int | None = 10,
        side: Side | None = None,
        message: str | None = "commentary",
        key: str | None = None,
        **kwargs: Any,
    ) -> list[Change]:
        return await apply_change(
            self.conn,
            match_id,
            MatchPatch(
                source="factory",
                new_events=(
                    NewEvent(
                        type=type, minute=minute, side=side, message=message, key=key, **kwargs
                    ),
                ),
            ),
        )
