"""``livescore db seed``: a small, realistic matchday so the API has something to show.

Three competitions, twelve teams and a day of matches around "now" in
several states (finished with goals and cards, live, at half-time, postponed,
scheduled). Every state change goes through the single write path, so the
seeded matches have change logs and seqs like any other. Seeding twice adds
nothing: seeded matches are recorded in the crosswalk under provider "seed".

No feed covers a seeded match, so status automation runs it on
(``pipeline.automation.timeline``): each one in play is seeded where that
timeline puts it (kickoff 73 minutes ago: 58' of the second half; 50 minutes
ago: half time), so it ticks on, resumes and finishes like a real one instead
of sitting frozen. None of the seeded teams plays in the demo's recording
(``fixtures/premier-league-matchday``), so no team is live twice at once
(``tests/store/test_seed.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from livescore import clock
from livescore.model import (
    Breakdown,
    Clock,
    EventType,
    MatchPatch,
    MatchStatus,
    NewEvent,
    Period,
    ScoreLine,
    Side,
)
from store.db import Conn
from store.matches import NewMatch, create_match
from store.reference import get_or_create_competition, get_or_create_team
from store.writes import apply_change

COMPETITIONS = {
    "Premier League": "England",
    "LaLiga": "Spain",
    "Bundesliga": "Germany",
}

TEAMS: dict[str, list[tuple[str, str, str]]] = {
    "Premier League": [
        ("Aston Villa FC", "Aston Villa", "AVL"),
        ("Chelsea FC", "Chelsea", "CHE"),
        ("Liverpool FC", "Liverpool", "LIV"),
        ("Tottenham Hotspur FC", "Tottenham", "TOT"),
    ],
    "LaLiga": [
        ("Real Madrid CF", "Real Madrid", "RMA"),
        ("FC Barcelona", "Barça", "FCB"),
        ("Sevilla FC", "Sevilla", "SEV"),
        ("Valencia CF", "Valencia", "VAL"),
    ],
    "Bundesliga": [
        ("FC Bayern München", "Bayern", "FCB"),
        ("Borussia Dortmund", "Dortmund", "BVB"),
        ("RB Leipzig", "Leipzig", "RBL"),
        ("Bayer 04 Leverkusen", "Leverkusen", "B04"),
    ],
}

Goal = tuple[int, Side, str, EventType]


@dataclass(frozen=True)
class SeedMatch:
    key: str
    competition: str
    home: int
    away: int
    kickoff: timedelta  # relative to now
    status: MatchStatus
    goals: tuple[Goal, ...] = ()
    cards: tuple[tuple[int, Side, str, EventType], ...] = ()
    minute: int | None = None
    period: Period | None = None


SEED_MATCHES: tuple[SeedMatch, ...] = (
    SeedMatch(
        "pl-1", "Premier League", 0, 1, timedelta(hours=-3), MatchStatus.FINISHED,
        goals=((23, "home", "Ollie Watkins", EventType.GOAL),
               (58, "away", "Cole Palmer", EventType.PENALTY_GOAL),
               (81, "home", "Morgan Rogers", EventType.GOAL)),
        cards=((44, "away", "Moisés Caicedo", EventType.YELLOW),),
        minute=90, period=Period.FULL_TIME,
    ),
    SeedMatch(
        "pl-2", "Premier League", 2, 3, timedelta(minutes=-73), MatchStatus.LIVE,
        goals=((12, "home", "Mohamed Salah", EventType.GOAL),),
        cards=((35, "away", "James Maddison", EventType.YELLOW),),
        minute=58, period=Period.SECOND_HALF,
    ),
    SeedMatch(
        "ll-1", "LaLiga", 0, 1, timedelta(minutes=-50), MatchStatus.HALFTIME,
        goals=((9, "away", "Robert Lewandowski", EventType.GOAL),
               (41, "home", "Vinícius Júnior", EventType.GOAL)),
        minute=45, period=Period.HALFTIME,
    ),
    SeedMatch("ll-2", "LaLiga", 2, 3, timedelta(hours=1), MatchStatus.POSTPONED),
    SeedMatch("bl-1", "Bundesliga", 0, 1, timedelta(hours=2), MatchStatus.SCHEDULED),
    SeedMatch("bl-2", "Bundesliga", 2, 3, timedelta(hours=4), MatchStatus.SCHEDULED),
)  # fmt: skip


async def seed(conn: Conn, now: datetime | None = None) -> int:
    """Load the seed matchday; returns how many matches were created (0 if seeded)."""
    now = now or clock.now()
    created = 0
    comp_ids: dict[str, int] = {}
    team_ids: dict[str, list[int]] = {}
    for comp, country in COMPETITIONS.items():
        comp_ids[comp] = await get_or_create_competition(conn, comp, country=country)
        team_ids[comp] = [
            await get_or_create_team(conn, name, short_name=short, tla=tla)
            for name, short, tla in TEAMS[comp]
        ]
    for spec in SEED_MATCHES:
        cur = await conn.execute(
            "SELECT match_id FROM match_crosswalk WHERE provider = 'seed' AND provider_id = %s",
            (spec.key,),
        )
        if await cur.fetchone() is not None:
            continue
        kickoff = (now + spec.kickoff).replace(second=0, microsecond=0)
        async with conn.transaction():
            match = await create_match(
                conn,
                NewMatch(
                    home_team_id=team_ids[spec.competition][spec.home],
                    away_team_id=team_ids[spec.competition][spec.away],
                    start_time=kickoff,
                    competition_id=comp_ids[spec.competition],
                ),
            )
            await conn.execute(
                "INSERT INTO match_crosswalk (provider, provider_id, match_id) "
                "VALUES ('seed', %s, %s)",
                (spec.key, match["id"]),
            )
            await _play(conn, match["id"], spec)
        created += 1
    return created


async def _play(conn: Conn, match_id: int, spec: SeedMatch) -> None:
    """Drive a seeded match to its state through the write path."""
    if spec.status in (MatchStatus.SCHEDULED,):
        return
    if spec.status is MatchStatus.POSTPONED:
        await apply_change(conn, match_id, MatchPatch(source="seed", status=MatchStatus.POSTPONED))
        return
    await apply_change(
        conn,
        match_id,
        MatchPatch(source="seed", status=MatchStatus.LIVE, clock=Clock(0, None, Period.FIRST_HALF)),
    )
    home = away = 0
    ht_home = ht_away = 0
    events = sorted(
        [(g[0], "goal", g) for g in spec.goals] + [(c[0], "card", c) for c in spec.cards],
        key=lambda item: item[0],
    )
    for index, (minute, _, (_, side, actor, kind)) in enumerate(events):
        if kind in (EventType.GOAL, EventType.PENALTY_GOAL, EventType.OWN_GOAL):
            home, away = (home + 1, away) if side == "home" else (home, away + 1)
            if minute <= 45:
                ht_home, ht_away = home, away
        period = Period.FIRST_HALF if minute <= 45 else Period.SECOND_HALF
        await apply_change(
            conn,
            match_id,
            MatchPatch(
                source="seed",
                new_events=(
                    NewEvent(
                        type=kind,
                        minute=minute,
                        key=f"seed:{spec.key}:{index}",
                        side=side,
                        actor=actor,
                        message=f"{kind.value.replace('_', ' ')} - {actor}",
                        source="seed",
                    ),
                ),
                home_score=home,
                away_score=away,
                clock=Clock(minute, None, period),
            ),
        )
    breakdown = Breakdown(half_time=ScoreLine(ht_home, ht_away))
    if spec.status is MatchStatus.FINISHED:
        breakdown = Breakdown(
            half_time=ScoreLine(ht_home, ht_away), regular_time=ScoreLine(home, away)
        )
    await apply_change(
        conn,
        match_id,
        MatchPatch(
            source="seed",
            status=spec.status,
            breakdown=breakdown,
            clock=Clock(spec.minute, None, spec.period),
        ),
    )
