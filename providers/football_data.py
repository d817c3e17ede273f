"""football-data.org API v4 (feed kind ``football-data``).

Requests (secret in the ``X-Auth-Token`` header; free tier: 10 requests/min):

* today: ``GET /v4/matches?dateFrom=D&dateTo=D+1`` (the provider's own default
  for "today" is this window; asking one day more is harmless, missing
  matches is not). ``--competitions PL,CL`` becomes ``competitions=PL,CL``.
* live: ``GET /v4/matches?status=LIVE``; one match: ``GET /v4/matches/{id}``.

Time rules:

* ``utcDate`` (kickoff) is real UTC.
* ``lastUpdated`` is labelled ``Z`` but is Europe/Berlin wall time: recorded
  responses carry values up to two hours ahead of their own HTTP ``Date``
  (``11:26:08Z`` in a response dated ``09:30:13 GMT``). We drop the bogus
  ``Z``, read the value as Europe/Berlin (the repeated autumn hour resolves to
  its first occurrence) and convert to UTC; a result later than the moment
  the response was fetched (+5 min) is discarded (``provider_updated_at=None``).

Scores: ``fullTime`` is the current score, except that after a shoot-out it
also includes the extra-time goals and the converted kicks (regular 1-1,
extra 0-0, penalties 4-5 -> fullTime 5-6). The match score is therefore
``regularTime + extraTime`` when given, else ``fullTime - penalties`` when
penalties are given, else ``fullTime``; penalties only go to the breakdown.

Statuses: SCHEDULED/TIMED -> scheduled; IN_PLAY/LIVE -> live; PAUSED ->
halftime (or extra_time when ``score.duration`` shows extra time is coming);
EXTRA_TIME -> extra_time; PENALTY_SHOOTOUT -> penalties; FINISHED/AWARDED ->
finished; SUSPENDED, POSTPONED, CANCELLED as named. Anything else is a
``PayloadError``.

Events: list responses carry none (``events_complete=False``). Single-match
responses of paid tiers may carry ``goals`` (type REGULAR/OWN/PENALTY, team =
the team credited), ``bookings`` (YELLOW/YELLOW_RED/RED), ``substitutions`` and
shoot-out ``penalties``; they get deterministic keys (the feed has no event
ids) and ``events_complete`` is True only when ``goals`` is present and agrees
with the score. Matches whose teams are not decided yet (null team id) are
skipped: they cannot be matched to anything until the draw is made.

Stage and group: ``stage`` ("GROUP_STAGE", "REGULAR_SEASON", "LAST_16") and
``group`` ("GROUP_A", null outside a group) as our ``group_stage`` and
"Group A" (``providers.parsing.stage_key``/``group_label``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
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
    TeamRef,
)
from providers.base import Adapter, RawResponse, RequestSpec
from providers.cursor import Cursor
from providers.parsing import (
    ADDED_MAX,
    MINUTE_MAX,
    EventKeys,
    add_lines,
    goals_agree,
    group_label,
    local_zone,
    normalize_clock,
    plausible_update,
    stage_key,
    subtract_lines,
)

_STATUS: dict[str, MatchStatus] = {
    "SCHEDULED": MatchStatus.SCHEDULED,
    "TIMED": MatchStatus.SCHEDULED,
    "IN_PLAY": MatchStatus.LIVE,
    "LIVE": MatchStatus.LIVE,
    "PAUSED": MatchStatus.HALFTIME,
    "EXTRA_TIME": MatchStatus.EXTRA_TIME,
    "PENALTY_SHOOTOUT": MatchStatus.PENALTIES,
    "FINISHED": MatchStatus.FINISHED,
    "AWARDED": MatchStatus.FINISHED,
    "SUSPENDED": MatchStatus.SUSPENDED,
    "POSTPONED": MatchStatus.POSTPONED,
    "CANCELLED": MatchStatus.CANCELLED,
}
_PERIOD: dict[MatchStatus, Period] = {
    MatchStatus.HALFTIME: Period.HALFTIME,
    MatchStatus.EXTRA_TIME: Period.EXTRA_TIME,
    MatchStatus.PENALTIES: Period.PENALTIES,
    MatchStatus.FINISHED: Period.FULL_TIME,
}
_GOAL_TYPES = {
    "REGULAR": EventType.GOAL,
    "OWN": EventType.OWN_GOAL,
    "PENALTY": EventType.PENALTY_GOAL,
}
_CARDS = {"YELLOW": EventType.YELLOW, "YELLOW_RED": EventType.SECOND_YELLOW, "RED": EventType.RED}
_CLOCKLESS = {
    MatchStatus.SCHEDULED,
    MatchStatus.POSTPONED,
    MatchStatus.CANCELLED,
}


class FootballDataAdapter(Adapter):
    kind = "football-data"
    default_base_url = "https://api.football-data.org"
    default_budget_per_minute = 10
    auth_header = "X-Auth-Token"

    def _competition_params(self) -> tuple[tuple[str, str], ...]:
        if not self.feed.competitions:
            return ()
        return (("competitions", ",".join(self.feed.competitions)),)

    def today_request(self, day: date) -> RequestSpec:
        window = (("dateFrom", day.isoformat()), ("dateTo", (day + timedelta(days=1)).isoformat()))
        return RequestSpec("today", "/v4/matches", window + self._competition_params())

    def live_request(self) -> RequestSpec:
        return RequestSpec("live", "/v4/matches", (("status", "LIVE"), *self._competition_params()))

    def match_request(self, provider_match_id: str) -> RequestSpec:
        return RequestSpec(
            "match", f"/v4/matches/{provider_match_id}", provider_match_id=provider_match_id
        )

    def _parse(self, payload: Any, response: RawResponse) -> list[MatchObservation]:
        root = Cursor(self.kind, payload)
        if root.has("matches"):
            matches = root["matches"].items()
        elif root.has("id"):  # GET /v4/matches/{id} answers with the match itself
            matches = [root]
        elif root.has("message"):
            root.fail(f"provider error: {root['message'].value!r}")
        else:
            root.fail("expected a 'matches' list or a match object")
        observations = (self._item(self._match, match, response) for match in matches)
        return [obs for obs in observations if obs is not None]

    def _match(self, match: Cursor, response: RawResponse) -> MatchObservation | None:
        home_c, away_c = match["homeTeam"], match["awayTeam"]
        if home_c.get("id").is_null or away_c.get("id").is_null:
            return None
        home, away = _team(home_c), _team(away_c)
        match_id = match["id"].as_id()
        score = match.get("score")
        status = _status(match["status"], score.get("duration").opt_str())
        breakdown, current = _score(score, status)
        events, complete = self._events(match, match_id, home, away, current)
        return MatchObservation(
            provider=self.kind,
            provider_match_id=match_id,
            sport=self.sport,
            competition=_competition(match),
            home=home,
            away=away,
            start_time=match["utcDate"].as_timestamp(UTC),
            status=status,
            provider_status=match["status"].as_str(),
            home_score=current.home,
            away_score=current.away,
            breakdown=breakdown,
            clock=_clock(match, status),
            events=events,
            events_complete=complete,
            provider_updated_at=_updated_at(match.get("lastUpdated"), response),
            stage=stage_key(match.get("stage").opt_str()),
            group=group_label(match.get("group").opt_str()),
        )

    def _events(
        self, match: Cursor, match_id: str, home: TeamRef, away: TeamRef, score: ScoreLine
    ) -> tuple[tuple[EventObservation, ...], bool]:
        goals = match.get("goals").opt_items()
        bookings = match.get("bookings").opt_items()
        substitutions = match.get("substitutions").opt_items()
        shootout = match.get("penalties").opt_items()
        if goals is None and bookings is None and substitutions is None and shootout is None:
            return (), False
        keys = EventKeys(self.kind, match_id)
        ids = (home.provider_id, away.provider_id)
        timed: list[EventObservation] = []
        for goal in goals or []:
            kind = goal.get("type").opt_str() or "REGULAR"
            if kind not in _GOAL_TYPES:
                goal["type"].fail(f"unknown goal type {kind!r}")
            timed.append(
                _event(keys, goal, _GOAL_TYPES[kind], ids, goal.get("scorer"), goal.get("assist"))
            )
        for booking in bookings or []:
            card = booking["card"].as_str()
            if card not in _CARDS:
                booking["card"].fail(f"unknown card {card!r}")
            timed.append(_event(keys, booking, _CARDS[card], ids, booking.get("player")))
        for sub in substitutions or []:
            timed.append(
                _event(
                    keys,
                    sub,
                    EventType.SUBSTITUTION,
                    ids,
                    sub.get("playerIn"),
                    player_out=sub.get("playerOut"),
                )
            )
        timed.sort(key=lambda e: (e.minute is None, e.minute or 0, e.added_time or 0))
        kicks = [_kick(keys, kick, ids) for kick in shootout or []]
        events = (*timed, *kicks)
        complete = goals is not None and goals_agree(events, score.home, score.away)
        return events, complete


def _team(team: Cursor) -> TeamRef:
    return TeamRef(
        provider_id=team["id"].as_id(),
        name=team["name"].as_str(),
        short_name=team.get("shortName").opt_str(),
        tla=team.get("tla").opt_str(),
    )


def _competition(match: Cursor) -> CompetitionRef | None:
    competition = match.get("competition")
    if competition.get("id").is_null:
        return None
    return CompetitionRef(
        provider_id=competition["id"].as_id(),
        name=competition["name"].as_str(),
        country=match.get("area").get("name").opt_str(),
    )


def _status(status: Cursor, duration: str | None) -> MatchStatus:
    code = status.as_str()
    if code not in _STATUS:
        status.fail(f"unknown status {code!r}")
    if code == "PAUSED" and duration in ("EXTRA_TIME", "PENALTY_SHOOTOUT"):
        return MatchStatus.EXTRA_TIME
    return _STATUS[code]


def _score(score: Cursor, status: MatchStatus) -> tuple[Breakdown, ScoreLine]:
    full = score.get("fullTime").score_line()
    regular = score.get("regularTime").score_line()
    extra = score.get("extraTime").score_line()
    penalties = score.get("penalties").score_line()
    current: ScoreLine | None
    if regular is not None and regular.is_known() and extra is not None:
        current = add_lines(regular, extra)
    elif full is not None and penalties is not None:
        current = subtract_lines(full, penalties)
        if current is None:
            score["fullTime"].fail(f"cannot take penalties {penalties} out of fullTime {full}")
    else:
        current = full
    if (
        regular is None
        and status is MatchStatus.FINISHED
        and score.get("duration").value
        in (
            "REGULAR",
            None,
        )
    ):
        regular = full
    breakdown = Breakdown(
        half_time=score.get("halfTime").score_line(),
        regular_time=regular,
        extra_time=extra,
        penalties=penalties,
    )
    return breakdown, current or ScoreLine()


def _clock(match: Cursor, status: MatchStatus) -> Clock:
    if status in _CLOCKLESS:
        return Clock()
    minute, added = match.get("minute").opt_minute()
    injury = match.get("injuryTime").opt_int(hi=ADDED_MAX)
    if injury is not None:
        added = injury
    period = _PERIOD.get(status)
    if period is None and status is MatchStatus.LIVE and minute is not None:
        period = Period.FIRST_HALF if minute <= 45 else Period.SECOND_HALF
    return normalize_clock(minute, added, period)


def _updated_at(stamp: Cursor, response: RawResponse) -> datetime | None:
    text, berlin = stamp.opt_str(), local_zone("Europe/Berlin")
    if text is None or berlin is None:
        return None
    # The trailing "Z" is a lie: the wall time is Berlin's. Read it there.
    wall = Cursor(stamp.provider, text.removesuffix("Z"), stamp.path)
    return plausible_update(wall.as_timestamp(berlin), response.fetched_at)


def _event(
    keys: EventKeys,
    raw: Cursor,
    kind: EventType,
    ids: tuple[str, str],
    actor: Cursor,
    assist: Cursor | None = None,
    *,
    player_out: Cursor | None = None,
) -> EventObservation:
    minute = raw.get("minute").opt_int(hi=MINUTE_MAX)
    added = raw.get("injuryTime").opt_int(hi=ADDED_MAX)
    side = raw.get("team").get("id").side(*ids)
    metadata: dict[str, Any] = {}
    if assist is not None and (name := assist.get("name").opt_str()):
        metadata["assist"] = name
    if player_out is not None:
        metadata["player_in"] = actor.get("name").opt_str()
        metadata["player_out"] = player_out.get("name").opt_str()
    if kind is EventType.OWN_GOAL and side is not None:
        metadata["player_side"] = "away" if side == "home" else "home"
    return EventObservation(
        key=keys.next(kind, side, minute, added),
        type=kind,
        minute=minute,
        added_time=added,
        side=side,
        actor=actor.get("name").opt_str(),
        metadata=metadata,
    )


def _kick(keys: EventKeys, kick: Cursor, ids: tuple[str, str]) -> EventObservation:
    scored = kick.get("scored").opt_bool()
    kind = EventType.PENALTY_GOAL if scored else EventType.MISSED_PENALTY
    side = kick.get("team").get("id").side(*ids)
    return EventObservation(
        key=keys.next(kind, side, None, None, shootout=True),
        type=kind,
        minute=None,
        side=side,
        actor=kick.get("player").get("name").opt_str(),
        shootout=True,
    )
