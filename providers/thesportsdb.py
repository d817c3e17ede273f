"""TheSportsDB (feed kind ``thesportsdb``).

Requests:

* live: v2 ``GET /api/v2/json/livescore/soccer``, key in the ``X-API-KEY`` header
  (premium);
* today: v1 ``GET /api/v1/json/{key}/eventsday.php?d=YYYY-MM-DD&s=Soccer``;
* one match: v1 ``GET /api/v1/json/{key}/lookupevent.php?id=N``.

v1 puts the key in the URL path: ``RequestSpec.path`` keeps the ``{key}``
placeholder (so recordings never hold the secret) and ``url_path()`` fills in
the secret, or TheSportsDB's public test key ``123`` when the feed has none.
``--competitions`` (league ids or names) filter the parsed matches.

Time rules:

* Kickoff: ``strTimestamp`` (``2026-10-05T19:00:00``, no offset) is UTC per
  TheSportsDB's documentation; without it, ``dateEvent`` + ``strTime`` (UTC,
  ``00:00`` when the time is missing).
* ``updated`` (``2026-10-05 20:30:31``, no offset) is UK wall time, not UTC:
  in the recorded livescore every in-play match is exactly one hour "ahead"
  (kickoff 18:45 UTC, 45' + a few minutes, updated 20:30:31), and a match
  that ended around 18:51 UTC was last updated at 19:58:32. We read it as
  Europe/London and convert; a value later than the fetch time (+5 min) is
  dropped rather than trusted.

Statuses (``strStatus``, codes or words, case-insensitive): NS / Not Started /
TBD -> scheduled; 1H, 2H, LIVE -> live; HT -> halftime; ET, BT -> extra_time;
P -> penalties; FT / AET / PEN / Match Finished / AWD / WO -> finished; PST ->
postponed; CANC -> cancelled; ABD -> abandoned; SUSP / INT -> suspended. An
empty status means not started, or finished when both scores are given
(older v1 rows). Unknown values are a ``PayloadError``.

Scores are strings or null (``"0"``); ``strProgress`` ("45", "90+6") is the
clock. The feed carries no events (``events_complete=False``) and no score
breakdown: the score is the half-time score at HT and the regular-time score
at FT (not AET/PEN); nothing else is inferred.

Group: v1 events' ``strGroup`` ("B" or "Group B"; "" outside a group) as
"Group B"; v2 livescore rows have none. No stage: ``intRound`` is a matchday.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from livescore.model import (
    Breakdown,
    Clock,
    CompetitionRef,
    MatchObservation,
    MatchStatus,
    Period,
    ScoreLine,
    TeamRef,
)
from providers.base import Adapter, RawResponse, RequestSpec
from providers.cursor import Cursor
from providers.parsing import (
    competition_wanted,
    group_label,
    local_zone,
    normalize_clock,
    plausible_update,
)

FREE_KEY = "123"
KEY_PLACEHOLDER = "{key}"

_STATUS: dict[str, MatchStatus] = {
    "NS": MatchStatus.SCHEDULED,
    "NOT STARTED": MatchStatus.SCHEDULED,
    "TBD": MatchStatus.SCHEDULED,
    "TIME TO BE DEFINED": MatchStatus.SCHEDULED,
    "1H": MatchStatus.LIVE,
    "2H": MatchStatus.LIVE,
    "LIVE": MatchStatus.LIVE,
    "HT": MatchStatus.HALFTIME,
    "HALFTIME": MatchStatus.HALFTIME,
    "ET": MatchStatus.EXTRA_TIME,
    "BT": MatchStatus.EXTRA_TIME,
    "P": MatchStatus.PENALTIES,
    "FT": MatchStatus.FINISHED,
    "AET": MatchStatus.FINISHED,
    "PEN": MatchStatus.FINISHED,
    "MATCH FINISHED": MatchStatus.FINISHED,
    "AWD": MatchStatus.FINISHED,
    "WO": MatchStatus.FINISHED,
    "PST": MatchStatus.POSTPONED,
    "POSTPONED": MatchStatus.POSTPONED,
    "MATCH POSTPONED": MatchStatus.POSTPONED,
    "CANC": MatchStatus.CANCELLED,
    "CANCELLED": MatchStatus.CANCELLED,
    "MATCH CANCELLED": MatchStatus.CANCELLED,
    "ABD": MatchStatus.ABANDONED,
    "ABANDONED": MatchStatus.ABANDONED,
    "MATCH ABANDONED": MatchStatus.ABANDONED,
    "SUSP": MatchStatus.SUSPENDED,
    "INT": MatchStatus.SUSPENDED,
}
_PERIOD: dict[str, Period] = {
    "1H": Period.FIRST_HALF,
    "HT": Period.HALFTIME,
    "HALFTIME": Period.HALFTIME,
    "2H": Period.SECOND_HALF,
    "ET": Period.EXTRA_TIME,
    "P": Period.PENALTIES,
}
_CLOCKLESS = {MatchStatus.SCHEDULED, MatchStatus.POSTPONED, MatchStatus.CANCELLED}
_LISTS = ("livescore", "events", "lookup")


class TheSportsDbAdapter(Adapter):
    kind = "thesportsdb"
    default_base_url = "https://www.thesportsdb.com"
    auth_header = "X-API-KEY"

    def today_request(self, day: date) -> RequestSpec:
        path = f"/api/v1/json/{KEY_PLACEHOLDER}/eventsday.php"
        return RequestSpec("today", path, (("d", day.isoformat()), ("s", "Soccer")))

    def live_request(self) -> RequestSpec:
        return RequestSpec("live", "/api/v2/json/livescore/soccer")

    def match_request(self, provider_match_id: str) -> RequestSpec:
        path = f"/api/v1/json/{KEY_PLACEHOLDER}/lookupevent.php"
        return RequestSpec(
            "match", path, (("id", provider_match_id),), provider_match_id=provider_match_id
        )

    def url_path(self, spec: RequestSpec, secret: str | None) -> str:
        return spec.path.replace(KEY_PLACEHOLDER, secret or FREE_KEY)

    def _parse(self, payload: Any, response: RawResponse) -> list[MatchObservation]:
        root = Cursor(self.kind, payload)
        present = [name for name in _LISTS if isinstance(root.obj().get(name, 0), list | None)]
        if not present:
            root.fail(f"expected one of {', '.join(_LISTS)} (a list or null)")
        rows = root.get(present[0]).opt_items() or []  # null: nothing live / no events
        observations = []
        for row in rows:
            sport = row.get("strSport").opt_str()
            if sport is not None and sport.casefold() != "soccer":
                continue
            if response.purpose != "match" and not competition_wanted(
                self.feed, row.get("idLeague").opt_id(), row.get("strLeague").opt_str()
            ):
                continue
            obs = self._item(self._row, row, response)
            if obs is not None:
                observations.append(obs)
        return observations

    def _row(self, row: Cursor, response: RawResponse) -> MatchObservation:
        home_score = row.get("intHomeScore").opt_int()
        away_score = row.get("intAwayScore").opt_int()
        code = (row.get("strStatus").opt_str() or "").upper()
        status = _status(row.get("strStatus"), code, home_score, away_score)
        return MatchObservation(
            provider=self.kind,
            provider_match_id=row["idEvent"].as_id(),
            sport=self.sport,
            competition=_competition(row),
            home=TeamRef(row["idHomeTeam"].as_id(), row["strHomeTeam"].as_str()),
            away=TeamRef(row["idAwayTeam"].as_id(), row["strAwayTeam"].as_str()),
            start_time=_kickoff(row),
            status=status,
            provider_status=code,
            home_score=home_score,
            away_score=away_score,
            breakdown=_breakdown(code, ScoreLine(home_score, away_score)),
            clock=_clock(row.get("strProgress"), code, status),
            events_complete=False,
            provider_updated_at=_updated_at(row.get("updated"), response),
            # v1 events carry ``strGroup`` ("" outside a group, "B" or "Group B" in one);
            # the v2 livescore rows do not (None: the group stays what it was)
            group=_group(row.get("strGroup")),
        )


def _group(raw: Cursor) -> str | None:
    value = raw.opt_scalar()
    return group_label(str(value)) if value is not None and value is not False else None


def _status(raw: Cursor, code: str, home_score: int | None, away_score: int | None) -> MatchStatus:
    if not code:
        both = home_score is not None and away_score is not None
        return MatchStatus.FINISHED if both else MatchStatus.SCHEDULED
    if code not in _STATUS:
        raw.fail(f"unknown status {code!r}")
    return _STATUS[code]


def _breakdown(code: str, score: ScoreLine) -> Breakdown:
    """The only phases the score itself reveals: at HT and after a 90-minute FT."""
    if not score.is_known():
        return Breakdown()
    if code in ("HT", "HALFTIME"):
        return Breakdown(half_time=score)
    if code in ("FT", "MATCH FINISHED"):
        return Breakdown(regular_time=score)
    return Breakdown()


def _competition(row: Cursor) -> CompetitionRef | None:
    if row.get("idLeague").is_null:
        return None
    return CompetitionRef(
        provider_id=row["idLeague"].as_id(),
        name=row["strLeague"].as_str(),
        country=row.get("strCountry").opt_str(),
    )


def _kickoff(row: Cursor) -> datetime:
    if row.has("strTimestamp") and row["strTimestamp"].opt_str():
        return row["strTimestamp"].as_timestamp(UTC)
    day = row["dateEvent"].as_str()
    time = row.get("strTime").opt_str() or "00:00:00"
    return Cursor(row.provider, f"{day}T{time}", f"{row.path}.dateEvent+strTime").as_timestamp(UTC)


def _clock(progress: Cursor, code: str, status: MatchStatus) -> Clock:
    if status in _CLOCKLESS:
        return Clock()
    minute, added = progress.opt_minute()
    period = Period.FULL_TIME if status is MatchStatus.FINISHED else _PERIOD.get(code)
    return normalize_clock(minute, added, period)


def _updated_at(stamp: Cursor, response: RawResponse) -> datetime | None:
    london = local_zone("Europe/London")
    if london is None:
        return None
    return plausible_update(stamp.opt_timestamp(london), response.fetched_at)
