"""API-Football v3 (feed kind ``api-football``).

Requests (secret in the ``x-apisports-key`` header): today
``GET /fixtures?date=YYYY-MM-DD`` (UTC day), live ``GET /fixtures?live=all``
(``live=39-61`` when every configured competition is a numeric league id),
one match ``GET /fixtures?id=N``. Other ``--competitions`` values (league
names) are filtered after parsing. A 200 answer can still be an error:
``errors.token`` raises ``CredentialsRejected``, ``errors.requests`` /
``errors.rateLimit`` raise ``Throttled`` (the feed pauses), any other error a
``PayloadError``.

Times: ``fixture.date`` carries an offset; an offset-less value is UTC (the
default ``timezone`` of the API). No trustworthy update stamp exists.

Statuses (``fixture.status.short``): TBD/NS -> scheduled; 1H/2H/LIVE -> live;
HT -> halftime; ET and BT (break before/inside extra time) -> extra_time; P ->
penalties; FT/AET/PEN and AWD/WO (awarded, walkover) -> finished; SUSP and INT
(interrupted) -> suspended; PST -> postponed; CANC -> cancelled; ABD ->
abandoned. Unknown codes are a ``PayloadError``.

Clock: ``status.elapsed`` + ``status.extra`` (45 + 1 = 45+1); an elapsed past
the period's end with no extra (93 in 2H) is split into 90+3.

Scores: ``goals`` is the match score (extra time included, shoot-out
excluded); breakdown from ``score.halftime`` / ``fulltime`` (after 90') /
``extratime`` (extra-time goals only) / ``penalty``.

Events (no provider ids: deterministic keys): ``Goal`` with detail Normal
Goal / Own Goal / Penalty / Missed Penalty (a miss is never a goal); own goals
list the team credited with the goal. ``comments == "Penalty Shootout"`` marks
shoot-out kicks (elapsed 120, extra 1..n), flagged ``shootout`` and never
counted. ``Card``: Yellow Card / Second Yellow card / Red Card. ``subst``:
``player`` is the player going off and ``assist`` the one coming on (checked
against published line-ups). ``Var`` with detail "Goal cancelled" or "Goal
Disallowed ..." marks the matching goal (same side, same player when named,
latest at or before the decision) ``retracted`` and names it in
``metadata["retracts"]``. Players may be null. ``events_complete`` is True
only when ``events`` is present and its goals add up to ``goals``.

Stage: ``league.round`` without its matchday ("Group Stage - 3" ->
``group_stage``, "Regular Season - 35" -> ``regular_season``). The feed never
names the group (no letter), so ``group`` stays None.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from typing import Any

from livescore.model import (
    SCORING_EVENT_TYPES,
    Breakdown,
    Clock,
    CompetitionRef,
    EventObservation,
    EventType,
    MatchObservation,
    MatchStatus,
    Period,
    Side,
    TeamRef,
)
from providers.base import Adapter, RawResponse, RequestSpec
from providers.cursor import Cursor
from providers.errors import CredentialsRejected, Throttled
from providers.parsing import (
    ADDED_MAX,
    MINUTE_MAX,
    EventKeys,
    competition_wanted,
    goals_agree,
    normalize_clock,
    stage_key,
)

_STATUS: dict[str, MatchStatus] = {
    "TBD": MatchStatus.SCHEDULED,
    "NS": MatchStatus.SCHEDULED,
    "1H": MatchStatus.LIVE,
    "HT": MatchStatus.HALFTIME,
    "2H": MatchStatus.LIVE,
    "ET": MatchStatus.EXTRA_TIME,
    "BT": MatchStatus.EXTRA_TIME,
    "P": MatchStatus.PENALTIES,
    "SUSP": MatchStatus.SUSPENDED,
    "INT": MatchStatus.SUSPENDED,
    "FT": MatchStatus.FINISHED,
    "AET": MatchStatus.FINISHED,
    "PEN": MatchStatus.FINISHED,
    "PST": MatchStatus.POSTPONED,
    "CANC": MatchStatus.CANCELLED,
    "ABD": MatchStatus.ABANDONED,
    "AWD": MatchStatus.FINISHED,
    "WO": MatchStatus.FINISHED,
    "LIVE": MatchStatus.LIVE,
}
_PERIOD: dict[str, Period] = {
    "1H": Period.FIRST_HALF,
    "HT": Period.HALFTIME,
    "2H": Period.SECOND_HALF,
    "ET": Period.EXTRA_TIME,
    "P": Period.PENALTIES,
    "FT": Period.FULL_TIME,
    "AET": Period.FULL_TIME,
    "PEN": Period.FULL_TIME,
}
_CLOCKLESS = {"TBD", "NS", "PST", "CANC", "AWD", "WO"}


class ApiFootballAdapter(Adapter):
    kind = "api-football"
    default_base_url = "https://v3.football.api-sports.io"
    # The free plan is 100 requests/day; 10/min keeps a day's polling inside it.
    default_budget_per_minute = 10
    auth_header = "x-apisports-key"

    def today_request(self, day: date) -> RequestSpec:
        return RequestSpec("today", "/fixtures", (("date", day.isoformat()),))

    def live_request(self) -> RequestSpec:
        leagues = self.feed.competitions
        live = "-".join(leagues) if leagues and all(c.isdigit() for c in leagues) else "all"
        return RequestSpec("live", "/fixtures", (("live", live),))

    def match_request(self, provider_match_id: str) -> RequestSpec:
        return RequestSpec(
            "match", "/fixtures", (("id", provider_match_id),), provider_match_id=provider_match_id
        )

    def _parse(self, payload: Any, response: RawResponse) -> list[MatchObservation]:
        root = Cursor(self.kind, payload)
        self._check_errors(root.get("errors"), response)
        parsed = (self._item(self._fixture, item) for item in root["response"].items())
        observations = [obs for obs in parsed if obs is not None]
        if response.purpose == "match":
            return observations
        return [
            obs
            for obs in observations
            if competition_wanted(
                self.feed,
                obs.competition.provider_id if obs.competition else None,
                obs.competition.name if obs.competition else None,
            )
        ]

    def _check_errors(self, errors: Cursor, response: RawResponse) -> None:
        if errors.is_null or errors.value in ([], {}):
            return
        if isinstance(errors.value, dict):
            if "token" in errors.value:
                raise CredentialsRejected(self.kind, response.status, self.feed.secret_env)
            if "requests" in errors.value or "rateLimit" in errors.value:
                raise Throttled(self.kind, 60.0)
        errors.fail(f"provider reported errors: {errors.value!r:.200}")

    def _fixture(self, item: Cursor) -> MatchObservation:
        fixture = item["fixture"]
        match_id = fixture["id"].as_id()
        short = fixture["status"]["short"].as_str()
        if short not in _STATUS:
            fixture["status"]["short"].fail(f"unknown status {short!r}")
        teams = item["teams"]
        home, away = _team(teams["home"]), _team(teams["away"])
        goals = item.get("goals")
        home_score, away_score = goals.get("home").opt_int(), goals.get("away").opt_int()
        score = item.get("score")
        events, complete = self._events(item, match_id, home, away, home_score, away_score)
        return MatchObservation(
            provider=self.kind,
            provider_match_id=match_id,
            sport=self.sport,
            competition=_competition(item.get("league")),
            home=home,
            away=away,
            start_time=_kickoff(fixture),
            status=_STATUS[short],
            provider_status=short,
            home_score=home_score,
            away_score=away_score,
            breakdown=Breakdown(
                half_time=score.get("halftime").score_line(),
                regular_time=score.get("fulltime").score_line(),
                extra_time=score.get("extratime").score_line(),
                penalties=score.get("penalty").score_line(),
            ),
            clock=_clock(fixture["status"], short),
            events=events,
            events_complete=complete,
            stats=_stats(item.get("statistics"), home, away),
            # "Group Stage - 3": the stage and the matchday, never the group's letter
            stage=stage_key(item.get("league").get("round").opt_str()),
        )

    def _events(
        self,
        item: Cursor,
        match_id: str,
        home: TeamRef,
        away: TeamRef,
        home_score: int | None,
        away_score: int | None,
    ) -> tuple[tuple[EventObservation, ...], bool]:
        raw_events = item.get("events").opt_items()
        if raw_events is None:
            return (), False
        keys = EventKeys(self.kind, match_id)
        events: list[EventObservation] = []
        players: list[tuple[str | None, str | None]] = []
        for raw in raw_events:
            event, player = _event(keys, raw, home.provider_id, away.provider_id)
            events.append(event)
            players.append(player)
        _apply_var(events, players)
        return tuple(events), goals_agree(events, home_score, away_score)


def _team(team: Cursor) -> TeamRef:
    return TeamRef(provider_id=team["id"].as_id(), name=team["name"].as_str())


def _competition(league: Cursor) -> CompetitionRef | None:
    if league.get("id").is_null:
        return None
    return CompetitionRef(
        provider_id=league["id"].as_id(),
        name=league["name"].as_str(),
        country=league.get("country").opt_str(),
    )


def _kickoff(fixture: Cursor) -> datetime:
    if fixture.has("date") or not fixture.has("timestamp"):
        return fixture["date"].as_timestamp(UTC)
    epoch = fixture["timestamp"].as_int(hi=7_258_118_400)  # year 2200
    return datetime.fromtimestamp(epoch, UTC)


def _clock(status: Cursor, short: str) -> Clock:
    if short in _CLOCKLESS:
        return Clock()
    elapsed = status.get("elapsed").opt_int(hi=MINUTE_MAX)
    extra = status.get("extra").opt_int(hi=ADDED_MAX)
    return normalize_clock(elapsed, extra, _PERIOD.get(short))


def _stats(blocks: Cursor, home: TeamRef, away: TeamRef) -> dict[str, Any]:
    stats: dict[str, Any] = {}
    for block in blocks.opt_items() or []:
        side = block["team"]["id"].side(home.provider_id, away.provider_id)
        if side is None:
            continue
        values = {
            entry["type"].as_str(): entry.get("value").opt_scalar()
            for entry in block.get("statistics").opt_items() or []
        }
        stats[side] = values
    return stats


def _classify(type_: str, detail: str, comments: str) -> tuple[EventType, bool]:
    kind, low = type_.casefold(), detail.casefold()
    shootout = "penalty shootout" in comments.casefold()
    if kind == "goal":
        if "missed" in low:
            return EventType.MISSED_PENALTY, shootout
        if "own" in low:
            return EventType.OWN_GOAL, False
        if "penalty" in low or shootout:
            return EventType.PENALTY_GOAL, shootout
        return EventType.GOAL, False
    if kind == "card":
        if "second" in low:
            return EventType.SECOND_YELLOW, False
        if "red" in low:
            return EventType.RED, False
        return (EventType.YELLOW if "yellow" in low else EventType.TEXT), False
    if kind == "subst":
        return EventType.SUBSTITUTION, False
    if kind == "var":
        return EventType.VAR, False
    return EventType.TEXT, False


def _event(
    keys: EventKeys, raw: Cursor, home_id: str, away_id: str
) -> tuple[EventObservation, tuple[str | None, str | None]]:
    time = raw.get("time")
    minute = time.get("elapsed").opt_int(hi=MINUTE_MAX)
    added = time.get("extra").opt_int(hi=ADDED_MAX)
    side = raw.get("team").get("id").side(home_id, away_id)
    detail = raw.get("detail").opt_str() or ""
    comments = raw.get("comments").opt_str() or ""
    kind, shootout = _classify(raw["type"].as_str(), detail, comments)
    player, assist = raw.get("player"), raw.get("assist")
    player_name, assist_name = player.get("name").opt_str(), assist.get("name").opt_str()
    actor = player_name
    metadata: dict[str, Any] = {}
    if kind is EventType.SUBSTITUTION:
        actor = assist_name
        metadata.update(player_out=player_name, player_in=assist_name)
    elif kind is EventType.VAR:
        metadata["var_outcome"] = detail or None
    elif assist_name and kind in SCORING_EVENT_TYPES:
        metadata["assist"] = assist_name
    if comments and not shootout:
        metadata["comments"] = comments
    if kind is EventType.OWN_GOAL and side is not None:
        metadata["player_side"] = _other(side)
    event = EventObservation(
        key=keys.next(kind, side, minute, added, shootout=shootout),
        type=kind,
        minute=minute,
        added_time=added,
        side=side,
        actor=actor,
        message=detail or None,
        metadata=metadata,
        shootout=shootout,
    )
    return event, (player.get("id").opt_id(), player_name)


def _other(side: Side) -> Side:
    return "away" if side == "home" else "home"


def _cancels_goal(event: EventObservation) -> bool:
    outcome = str(event.metadata.get("var_outcome") or "").casefold()
    return event.type is EventType.VAR and outcome.startswith(("goal cancelled", "goal disallowed"))


Player = tuple[str | None, str | None]  # (provider id, name)


def _apply_var(events: list[EventObservation], players: list[Player]) -> None:
    """Mark the goal each goal-cancelling VAR decision refers to as retracted."""
    for index, decision in enumerate(events):
        if not _cancels_goal(decision):
            continue
        at = (decision.minute or 0, decision.added_time or 0)
        candidates = [
            i
            for i, goal in enumerate(events)
            if goal.type in SCORING_EVENT_TYPES
            and not goal.retracted
            and not goal.shootout
            and goal.side == decision.side
            and (goal.minute or 0, goal.added_time or 0) <= at
        ]
        same_player = [i for i in candidates if _same_player(players[i], players[index])]
        pool = same_player or candidates
        if pool:
            i = max(pool, key=lambda j: (events[j].minute or 0, events[j].added_time or 0, j))
            events[i] = dataclasses.replace(events[i], retracted=True)
            metadata = {**decision.metadata, "retracts": events[i].key}
            events[index] = dataclasses.replace(decision, metadata=metadata)


def _same_player(first: Player, second: Player) -> bool:
    if first[0] is not None and first[0] == second[0]:
        return True
    return first[1] is not None and first[1] == second[1]
