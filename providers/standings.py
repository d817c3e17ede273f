"""Provider standings, for the cross-check of our own tables (issue 16 part 4).

Pure like the adapters: ``standings_request`` builds the request a feed kind
answers with a competition's table, ``parse_standings`` turns the response into
``ProviderRow`` values. The pipeline (``pipeline.standings_check``) sends the
request through the feed's ``FeedClient`` and compares; nothing here is stored
and nothing ever overwrites our table.

* football-data.org: ``GET /v4/competitions/{id}/standings[?season=YYYY]``;
  ``standings[]`` of ``type`` ``TOTAL`` (``HOME``/``AWAY`` splits are skipped), each
  with ``group`` (null in a league) and ``table[]`` rows (``position``,
  ``team.id``/``name``, ``playedGames``, ``won``, ``draw``, ``lost``, ``goalsFor``,
  ``goalsAgainst``, ``points``); the season is ``season.startDate``'s year.
* API-Football v3: ``GET /standings?league={id}&season=YYYY`` (season required);
  ``response[0].league.standings`` is a list of groups, each a list of rows
  (``rank``, ``team.id``/``name``, ``points``, ``group``, ``all.played/win/draw/lose``,
  ``all.goals.for/against``).

ESPN and TheSportsDB are not asked (no standings in the responses we poll).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from providers.base import RequestSpec
from providers.cursor import Cursor

#: Feed kinds whose standings we can read.
STANDINGS_KINDS = frozenset({"football-data", "api-football"})
#: Points beyond this either way are refused as malformed (deductions may go below 0).
POINTS_MAX = 999


@dataclass(frozen=True, slots=True)
class ProviderRow:
    team_id: str
    team_name: str
    group: str | None
    position: int
    played: int
    won: int
    drawn: int
    lost: int
    goals_for: int
    goals_against: int
    points: int


@dataclass(frozen=True, slots=True)
class ProviderTable:
    season: int | None
    rows: list[ProviderRow]


def standings_request(kind: str, competition_id: str, season: int | None) -> RequestSpec:
    """The request for a competition's standings (the provider's competition id)."""
    if kind == "football-data":
        params = (("season", str(season)),) if season is not None else ()
        return RequestSpec("standings", f"/v4/competitions/{competition_id}/standings", params)
    if kind == "api-football":
        if season is None:
            raise ValueError("API-Football needs a season for /standings: pass the year it starts")
        return RequestSpec(
            "standings", "/standings", (("league", competition_id), ("season", str(season)))
        )
    raise ValueError(f"{kind} offers no standings we read; use one of {sorted(STANDINGS_KINDS)}")


def parse_standings(kind: str, payload: Any) -> ProviderTable:
    """A standings response -> rows (``PayloadError`` naming the field when malformed)."""
    root = Cursor(kind, payload)
    if kind == "football-data":
        return _football_data(root)
    if kind == "api-football":
        return _api_football(root)
    raise ValueError(f"{kind} offers no standings we read; use one of {sorted(STANDINGS_KINDS)}")


def _football_data(root: Cursor) -> ProviderTable:
    season = None
    if root.has("season") and root["season"].has("startDate"):
        season = root["season"]["startDate"].as_timestamp().year
    rows: list[ProviderRow] = []
    for standing in root["standings"].items():
        if standing.has("type") and standing["type"].value != "TOTAL":
            continue
        group = standing.get("group").opt_str()
        for row in standing["table"].items():
            team = row["team"]
            rows.append(
                ProviderRow(
                    team_id=team["id"].as_id(),
                    team_name=team["name"].as_str(),
                    group=group or None,
                    position=row["position"].as_int(1),
                    played=row["playedGames"].as_int(),
                    won=row["won"].as_int(),
                    drawn=row["draw"].as_int(),
                    lost=row["lost"].as_int(),
                    goals_for=row["goalsFor"].as_int(),
                    goals_against=row["goalsAgainst"].as_int(),
                    points=row["points"].as_int(-POINTS_MAX, POINTS_MAX),
                )
            )
    return ProviderTable(season, rows)


def _api_football(root: Cursor) -> ProviderTable:
    rows: list[ProviderRow] = []
    season = None
    for item in root["response"].items():
        league = item["league"]
        if league.has("season"):
            season = league["season"].as_int(1900, 2200)
        groups = league["standings"].items()
        for group in groups:
            for row in group.items():
                every = row["all"]
                name = row.get("group").opt_str()
                rows.append(
                    ProviderRow(
                        team_id=row["team"]["id"].as_id(),
                        team_name=row["team"]["name"].as_str(),
                        group=name if name and len(groups) > 1 else None,
                        position=row["rank"].as_int(1),
                        played=every["played"].as_int(),
                        won=every["win"].as_int(),
                        drawn=every["draw"].as_int(),
                        lost=every["lose"].as_int(),
                        goals_for=every["goals"]["for"].as_int(),
                        goals_against=every["goals"]["against"].as_int(),
                        points=row["points"].as_int(-POINTS_MAX, POINTS_MAX),
                    )
                )
    return ProviderTable(season, rows)
