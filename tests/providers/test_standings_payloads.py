"""``providers.standings``: the standings requests and the rows read from
football-data and API-Football standings responses (shapes as documented by
each provider), and malformed rows named by their field path."""

from __future__ import annotations

from typing import Any

import pytest

from providers.errors import PayloadError
from providers.standings import ProviderRow, parse_standings, standings_request


def fd_row(team: int, name: str, pos: int, played: int, w: int, d: int, lost: int,
           gf: int, ga: int, pts: int) -> dict[str, Any]:  # fmt: skip
    return {
        "position": pos,
        "team": {"id": team, "name": name, "shortName": name, "tla": name[:3].upper()},
        "playedGames": played, "form": None, "won": w, "draw": d, "lost": lost,
        "points": pts, "goalsFor": gf, "goalsAgainst": ga, "goalDifference": gf - ga,
    }  # fmt: skip


FOOTBALL_DATA = {
    "competition": {"id": 2021, "name": "Premier League", "code": "PL"},
    "season": {"id": 2287, "startDate": "2024-08-16", "endDate": "2025-05-25"},
    "standings": [
        {"stage": "REGULAR_SEASON", "type": "TOTAL", "group": None,
         "table": [fd_row(57, "Arsenal FC", 1, 2, 2, 0, 0, 5, 1, 6),
                   fd_row(61, "Chelsea FC", 2, 2, 0, 1, 1, 1, 3, -2)]},
        {"stage": "REGULAR_SEASON", "type": "HOME", "group": None,
         "table": [fd_row(57, "Arsenal FC", 1, 1, 1, 0, 0, 3, 0, 3)]},
    ],
}  # fmt: skip

API_FOOTBALL = {
    "get": "standings",
    "parameters": {"league": "1", "season": "2026"},
    "response": [{"league": {"id": 1, "name": "World Cup", "season": 2026, "standings": [
        [{"rank": 1, "team": {"id": 2384, "name": "USA"}, "points": 3, "goalsDiff": 3,
          "group": "Group D", "form": "W",
          "all": {"played": 1, "win": 1, "draw": 0, "lose": 0, "goals": {"for": 4, "against": 1}}}],
        [{"rank": 1, "team": {"id": 5529, "name": "Canada"}, "points": 1, "goalsDiff": 0,
          "group": "Group B", "form": "D",
          "all": {"played": 1, "win": 0, "draw": 1, "lose": 0, "goals": {"for": 1, "against": 1}}}],
    ]}}],
}  # fmt: skip


def test_football_data_total_tables_only_with_the_season_start_year() -> None:
    table = parse_standings("football-data", FOOTBALL_DATA)
    assert table.season == 2024
    assert table.rows == [
        ProviderRow("57", "Arsenal FC", None, 1, 2, 2, 0, 0, 5, 1, 6),
        ProviderRow("61", "Chelsea FC", None, 2, 2, 0, 1, 1, 1, 3, -2),  # a deduction
    ]


def test_api_football_groups_keep_their_names() -> None:
    table = parse_standings("api-football", API_FOOTBALL)
    assert table.season == 2026
    assert [(r.team_name, r.group, r.points, r.goals_for) for r in table.rows] == [
        ("USA", "Group D", 3, 4),
        ("Canada", "Group B", 1, 1),
    ]


def test_a_malformed_row_names_its_field() -> None:
    broken = {"standings": [{"type": "TOTAL", "table": [{"position": 1, "team": {"id": 1}}]}]}
    with pytest.raises(PayloadError, match=r"standings\[0\]\.table\[0\]\.team\.name"):
        parse_standings("football-data", broken)


def test_requests_per_kind() -> None:
    fd = standings_request("football-data", "2021", 2024)
    assert (fd.purpose, fd.path, fd.params) == (
        "standings", "/v4/competitions/2021/standings", (("season", "2024"),)
    )  # fmt: skip
    af = standings_request("api-football", "39", 2024)
    assert (af.path, af.params) == ("/standings", (("league", "39"), ("season", "2024")))
    with pytest.raises(ValueError, match="needs a season"):
        standings_request("api-football", "39", None)
    with pytest.raises(ValueError, match="no standings"):
        standings_request("espn", "eng.1", 2024)
