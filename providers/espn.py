"""ESPN site API, soccer (feed kind ``espn``; public, no secret).

Requests: today ``GET /apis/site/v2/sports/soccer/{league}/scoreboard?dates=YYYYMMDD``,
one match ``GET /apis/site/v2/sports/soccer/{league}/summary?event=ID``; there
is no live-only list (``live_request`` is None: poll today's scoreboard).
``{league}`` is the feed's single configured competition (an ESPN slug such
as ``eng.1`` or ``fifa.world``); with none or several configured it is
``all``, ESPN's cross-league soccer board, and the configured slugs / league
ids / names filter the parsed matches.

Times: ``date`` values are UTC (``2026-06-12T19:00Z``); offset-less values
are read as UTC. The feed has no update stamp.

Status: ``status.type.name`` first (STATUS_HALFTIME -> halftime,
STATUS_EXTRA_TIME / STATUS_HALFTIME_ET / STATUS_OVERTIME -> extra_time,
STATUS_SHOOTOUT -> penalties, STATUS_FULL_TIME / STATUS_FINAL /
STATUS_FINAL_AET / STATUS_FINAL_PEN / STATUS_FORFEIT -> finished,
STATUS_POSTPONED, STATUS_CANCELED, STATUS_ABANDONED, STATUS_SUSPENDED as
named, STATUS_DELAYED -> scheduled before kickoff, suspended during play).
Unknown names fall back on ``type.state``: pre -> scheduled, in -> live,
post + completed -> finished; anything else is a ``PayloadError``.

Clock: ``status.clock`` stops at the period's end (5400.0 = 90'), so the
minute and stoppage time come from ``status.displayClock`` ("90'+7'") and
each detail's ``clock.displayValue`` ("45'+5'"); the seconds value is only a
fallback (minute = seconds // 60 + 1). ``status.period`` 1/2 -> halves, 3/4 ->
extra time, 5 -> shoot-out.

Scores arrive as strings ("1"); for scheduled, postponed and cancelled
matches they are "0" placeholders and reported as unknown. ``shootoutScore`` and ``linescores``
(per period) fill the breakdown when present; without linescores the score is
the half-time score at STATUS_HALFTIME and the regular-time score at
STATUS_FULL_TIME (extra-time finishes are STATUS_FINAL_AET / _PEN).

Events: ``competitions[0].details`` (goals, penalties, own goals, cards; no
ids, so deterministic keys). The boolean flags (scoringPlay, ownGoal,
penaltyKick, redCard, yellowCard, shootout) decide the type, ``type.text``
("Goal - Header", "Penalty - Scored") is the message. An own goal's
``team.id`` is the team credited with it while the player belongs to the other
side (kept as ``metadata["player_side"]``). Unrecognised details become
``text`` events. ``events_complete`` is True when ``details`` is present and
its goals add up to the score (the scoreboard lists no substitutions).

Stage and group: the group is in ``competitions[0].altGameNote`` ("FIFA World
Cup, Group B"), else in a ``notes[].headline``; the stage is the event's
``season.slug`` ("group-stage" -> ``group_stage``) unless it names a league
season ("2024-25-english-premier-league": no stage).
"""

from __future__ import annotations

import re
from datetime import UTC, date
from typing import Any

from livescore.model import (
    Breakdown,
    Clock,
    CompetitionRef,
    EventObservation,
    EventType,
    MatchObservation,
    MatchStatus,
    Period,
    ScoreLine,
    Side,
    TeamRef,
)
from providers.base import Adapter, RawResponse, RequestSpec
from providers.cursor import Cursor
from providers.parsing import (
    MINUTE_MAX,
    EventKeys,
    competition_wanted,
    goals_agree,
    group_label,
    normalize_clock,
    stage_key,
    try_parse_minute,
)

_BY_NAME: dict[str, MatchStatus] = {
    "STATUS_SCHEDULED": MatchStatus.SCHEDULED,
    "STATUS_FIRST_HALF": MatchStatus.LIVE,
    "STATUS_SECOND_HALF": MatchStatus.LIVE,
    "STATUS_IN_PROGRESS": MatchStatus.LIVE,
    "STATUS_HALFTIME": MatchStatus.HALFTIME,
    "STATUS_EXTRA_TIME": MatchStatus.EXTRA_TIME,
    "STATUS_OVERTIME": MatchStatus.EXTRA_TIME,
    "STATUS_HALFTIME_ET": MatchStatus.EXTRA_TIME,
    "STATUS_SHOOTOUT": MatchStatus.PENALTIES,
    "STATUS_FULL_TIME": MatchStatus.FINISHED,
    "STATUS_FINAL": MatchStatus.FINISHED,
    "STATUS_FINAL_AET": MatchStatus.FINISHED,
    "STATUS_FINAL_PEN": MatchStatus.FINISHED,
    "STATUS_FORFEIT": MatchStatus.FINISHED,
    "STATUS_POSTPONED": MatchStatus.POSTPONED,
    "STATUS_CANCELED": MatchStatus.CANCELLED,
    "STATUS_CANCELLED": MatchStatus.CANCELLED,
    "STATUS_ABANDONED": MatchStatus.ABANDONED,
    "STATUS_SUSPENDED": MatchStatus.SUSPENDED,
}
_BY_STATE = {"pre": MatchStatus.SCHEDULED, "in": MatchStatus.LIVE}
_PERIOD_NUMBER = {
    1: Period.FIRST_HALF,
    2: Period.SECOND_HALF,
    3: Period.EXTRA_TIME,
    4: Period.EXTRA_TIME,
    5: Period.PENALTIES,
}
_PERIOD_BY_STATUS = {
    MatchStatus.HALFTIME: Period.HALFTIME,
    MatchStatus.PENALTIES: Period.PENALTIES,
    MatchStatus.FINISHED: Period.FULL_TIME,
}
#: The seconds clock stops at a period's end: never derive a minute past it.
_LAST_MINUTE = {
    Period.FIRST_HALF: 45,
    Period.HALFTIME: 45,
    Period.SECOND_HALF: 90,
    Period.EXTRA_TIME: 120,
    Period.PENALTIES: 120,
    Period.FULL_TIME: 120,
}
_CLOCKLESS = {MatchStatus.SCHEDULED, MatchStatus.POSTPONED, MatchStatus.CANCELLED}
_LEAGUE_IN_UID = re.compile(r"~l:(\d+)")
#: a season slug that names a league's season, not a phase ("2024-25-english-premier-league")
_SEASON_SLUG = re.compile(r"\d{4}")


class EspnAdapter(Adapter):
    kind = "espn"
    default_base_url = "https://site.api.espn.com"

    @property
    def league(self) -> str:
        return self.feed.competitions[0] if len(self.feed.competitions) == 1 else "all"

    def today_request(self, day: date) -> RequestSpec:
        path = f"/apis/site/v2/sports/soccer/{self.league}/scoreboard"
        return RequestSpec("today", path, (("dates", day.strftime("%Y%m%d")),))

    def match_request(self, provider_match_id: str) -> RequestSpec:
        path = f"/apis/site/v2/sports/soccer/{self.league}/summary"
        return RequestSpec(
            "match", path, (("event", provider_match_id),), provider_match_id=provider_match_id
        )

    def _parse(self, payload: Any, response: RawResponse) -> list[MatchObservation]:
        root = Cursor(self.kind, payload)
        if root.has("events"):  # scoreboard
            leagues = root.get("leagues").opt_items() or []
            events = root["events"].items()
        elif root.has("header"):  # summary of one event
            leagues = [root["header"]["league"]] if root["header"].has("league") else []
            events = [root["header"]]
        else:
            root.fail("expected a scoreboard ('events') or a summary ('header')")
        observations = []
        for event in events:
            league = _league_of(event, leagues)
            if response.purpose != "match" and not competition_wanted(
                self.feed,
                league.get("slug").opt_str(),
                league.get("id").opt_id(),
                league.get("name").opt_str(),
                league.get("abbreviation").opt_str(),
            ):
                continue
            obs = self._item(self._event, event, league)
            if obs is not None:
                observations.append(obs)
        return observations

    def _event(self, event: Cursor, league: Cursor) -> MatchObservation:
        competitions = event["competitions"].items()
        if not competitions:
            event["competitions"].fail("expected at least one competition")
        contest = competitions[0]
        status_c = contest["status"] if contest.has("status") else event["status"]
        status = _status(status_c["type"])
        sides = _competitors(contest["competitors"])
        home, away = _team(sides["home"]["team"]), _team(sides["away"]["team"])
        match_id = event["id"].as_id()
        unplayed = status in _CLOCKLESS  # ESPN shows "0" as a placeholder
        home_score = None if unplayed else _score(sides["home"].get("score"))
        away_score = None if unplayed else _score(sides["away"].get("score"))
        details = contest.get("details").opt_items()
        events = tuple(self._details(details or [], match_id, home, away))
        date_c = event["date"] if event.has("date") else contest["date"]
        return MatchObservation(
            provider=self.kind,
            provider_match_id=match_id,
            sport=self.sport,
            competition=_competition(league),
            home=home,
            away=away,
            start_time=date_c.as_timestamp(UTC),
            status=status,
            provider_status=status_c["type"].get("name").opt_str()
            or status_c["type"]["state"].as_str(),
            home_score=home_score,
            away_score=away_score,
            breakdown=_breakdown(sides["home"], sides["away"], status_c, (home_score, away_score)),
            clock=_clock(status_c, status),
            events=events,
            events_complete=details is not None and goals_agree(events, home_score, away_score),
            stats={s: _stats(sides[s]) for s in ("home", "away") if sides[s].has("statistics")},
            stage=_stage(event),
            group=_group(contest),
        )

    def _details(
        self, details: list[Cursor], match_id: str, home: TeamRef, away: TeamRef
    ) -> list[EventObservation]:
        keys = EventKeys(self.kind, match_id)
        events = []
        for detail in details:
            kind, shootout = _classify(detail)
            clock = detail.get("clock")
            minute, added = _minute(clock.get("displayValue"), clock.get("value"), None)
            side = detail.get("team").get("id").side(home.provider_id, away.provider_id)
            athletes = detail.get("athletesInvolved").opt_items() or []
            names = [a.get("displayName").opt_str() for a in athletes]
            metadata: dict[str, Any] = {}
            if len(names) > 1:
                metadata["athletes"] = names
            if kind is EventType.OWN_GOAL and side is not None:
                metadata["player_side"] = _other(side)
            events.append(
                EventObservation(
                    key=keys.next(kind, side, minute, added, shootout=shootout),
                    type=kind,
                    minute=minute,
                    added_time=added,
                    side=side,
                    actor=names[0] if names else None,
                    message=detail.get("type").get("text").opt_str(),
                    metadata=metadata,
                    shootout=shootout,
                )
            )
        return events


def _stage(event: Cursor) -> str | None:
    """The event's ``season.slug`` as a stage, unless it is a league season's name."""
    slug = event.get("season").get("slug").opt_str()
    return None if slug is None or _SEASON_SLUG.match(slug) else stage_key(slug)


def _group(contest: Cursor) -> str | None:
    """The group named by ``altGameNote`` or, failing that, by a note's headline."""
    found = group_label(contest.get("altGameNote").opt_str())
    for note in contest.get("notes").opt_items() or []:
        if found is not None:
            break
        found = group_label(note.get("headline").opt_str())
    return found


def _league_of(event: Cursor, leagues: list[Cursor]) -> Cursor:
    """The league entry an event belongs to (by the ``l:`` part of its uid)."""
    uid = event.get("uid").opt_str() or ""
    found = _LEAGUE_IN_UID.search(uid)
    if found:
        for league in leagues:
            if league.get("id").opt_id() == found.group(1):
                return league
    if len(leagues) == 1:
        return leagues[0]
    return Cursor(event.provider, None, f"{event.path}.league")


def _competition(league: Cursor) -> CompetitionRef | None:
    if league.get("id").is_null:
        return None
    return CompetitionRef(
        provider_id=league["id"].as_id(),
        name=league.get("name").opt_str() or league["abbreviation"].as_str(),
    )


def _competitors(competitors: Cursor) -> dict[str, Cursor]:
    sides = {c["homeAway"].as_str(): c for c in competitors.items()}
    if "home" not in sides or "away" not in sides:
        competitors.fail("expected a home and an away competitor")
    return sides


def _team(team: Cursor) -> TeamRef:
    name = team.get("displayName").opt_str() or team["name"].as_str()
    return TeamRef(
        provider_id=team["id"].as_id(),
        name=name,
        short_name=team.get("shortDisplayName").opt_str(),
        tla=team.get("abbreviation").opt_str(),
    )


def _score(score: Cursor) -> int | None:
    if isinstance(score.value, dict):  # {"value": 1.0, "displayValue": "1"} in some endpoints
        return score.get("value").opt_int()
    return score.opt_int()


def _status(kind: Cursor) -> MatchStatus:
    name = kind.get("name").opt_str()
    state = kind.get("state").opt_str()
    if name == "STATUS_DELAYED":
        return MatchStatus.SCHEDULED if state == "pre" else MatchStatus.SUSPENDED
    if name in _BY_NAME:
        return _BY_NAME[name]
    if state in _BY_STATE:
        return _BY_STATE[state]
    if state == "post" and kind.get("completed").opt_bool():
        return MatchStatus.FINISHED
    kind.fail(f"unknown status {name!r} in state {state!r}")


def _minute(
    display: Cursor, seconds: Cursor, period: Period | None
) -> tuple[int | None, int | None]:
    """(minute, added) from a display clock like "90'+8'", else from seconds."""
    try:
        parsed = try_parse_minute(display.opt_str())
    except ValueError as exc:
        display.fail(str(exc))
    if parsed is not None:
        return parsed
    value = seconds.opt_float()
    if value is None:
        return None, None
    if value < 0:
        seconds.fail(f"expected a clock in seconds >= 0, got {value:g}")
    last = _LAST_MINUTE.get(period, MINUTE_MAX) if period else MINUTE_MAX
    minute = min(int(value // 60) + 1, last)
    return minute, None


def _clock(status: Cursor, match_status: MatchStatus) -> Clock:
    if match_status in _CLOCKLESS:
        return Clock()
    number = status.get("period").opt_int(hi=10)
    period = _PERIOD_BY_STATUS.get(match_status) or _PERIOD_NUMBER.get(number or 0)
    minute, added = _minute(status.get("displayClock"), status.get("clock"), period)
    if minute == 0 and match_status is not MatchStatus.LIVE:
        minute = None
    return normalize_clock(minute, added, period)


def _breakdown(
    home: Cursor, away: Cursor, status: Cursor, score: tuple[int | None, int | None]
) -> Breakdown:
    current = ScoreLine(*score)
    name = status["type"].get("name").opt_str()
    if not home.has("linescores") and current.is_known():
        # Without per-period scores, the score itself is the half-time score
        # at half-time and the regular-time score at a 90-minute full time.
        if name == "STATUS_HALFTIME":
            return Breakdown(half_time=current)
        if name == "STATUS_FULL_TIME":
            return Breakdown(regular_time=current)
    penalties = ScoreLine(home.get("shootoutScore").opt_int(), away.get("shootoutScore").opt_int())
    periods = [_periods(home), _periods(away)]
    half = regular = extra = None
    if all(len(p) >= 1 for p in periods):
        half = ScoreLine(periods[0][0], periods[1][0])
    if all(len(p) >= 2 for p in periods):
        regular = ScoreLine(sum(periods[0][:2]), sum(periods[1][:2]))
    if all(len(p) >= 3 for p in periods):
        extra = ScoreLine(sum(periods[0][2:4]), sum(periods[1][2:4]))
    return Breakdown(
        half_time=half,
        regular_time=regular,
        extra_time=extra,
        penalties=penalties if penalties.is_known() else None,
    )


def _periods(competitor: Cursor) -> list[int]:
    goals = [line.get("value").opt_int() for line in competitor.get("linescores").opt_items() or []]
    return [g for g in goals if g is not None][:4]


def _stats(competitor: Cursor) -> dict[str, Any]:
    return {
        stat["name"].as_str(): stat.get("displayValue").opt_scalar()
        for stat in competitor["statistics"].items()
    }


def _classify(detail: Cursor) -> tuple[EventType, bool]:
    text = (detail.get("type").get("text").opt_str() or "").casefold()
    flag = {name: detail.get(name).opt_bool() for name in _FLAGS}
    shootout = flag["shootout"]
    if flag["ownGoal"] or "own goal" in text:
        return EventType.OWN_GOAL, False
    if flag["penaltyKick"] or "penalty" in text or shootout:
        scored = flag["scoringPlay"] or "scored" in text
        return (EventType.PENALTY_GOAL if scored else EventType.MISSED_PENALTY), shootout
    if flag["scoringPlay"] or text.startswith("goal"):
        return EventType.GOAL, False
    if "second yellow" in text or (flag["redCard"] and flag["yellowCard"]):
        return EventType.SECOND_YELLOW, False
    if flag["redCard"] or "red card" in text:
        return EventType.RED, False
    if flag["yellowCard"] or "yellow card" in text:
        return EventType.YELLOW, False
    if "substitution" in text:
        return EventType.SUBSTITUTION, False
    return EventType.TEXT, False


_FLAGS = ("scoringPlay", "ownGoal", "penaltyKick", "redCard", "yellowCard", "shootout")


def _other(side: Side) -> Side:
    return "away" if side == "home" else "home"
