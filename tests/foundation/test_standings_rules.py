"""The table rules of ``livescore.standings.compute``: what counts, points,
order and tie-breakers, form, provisional live rows, groups, seasons; and
hypothesis properties over random results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livescore.model import IN_PLAY_STATUSES, MatchStatus
from livescore.standings import (
    Result,
    Row,
    Rules,
    Team,
    compute,
    counts,
    is_knockout,
    season_bounds,
    season_of,
    sort_key,
    version,
)

T0 = datetime(2024, 8, 17, 14, 0, tzinfo=UTC)
ARS, CHE, LIV, MCI = (
    Team(1, "Arsenal"),
    Team(2, "Chelsea"),
    Team(3, "Liverpool"),
    Team(4, "Man City"),
)

_ids = iter(range(1, 10_000))


def game(
    home: Team,
    away: Team,
    hs: int,
    as_: int,
    status: MatchStatus = MatchStatus.FINISHED,
    *,
    day: int = 0,
    group: str | None = None,
    stage: str | None = None,
    seq: int = 1,
) -> Result:
    when = T0 + timedelta(days=day)
    return Result(next(_ids), home, away, status, hs, as_, when, seq, group, stage)


def rows_by_name(results: list[Result], **kw: object) -> dict[str, Row]:
    (table,) = compute(results, **kw)  # type: ignore[arg-type]
    return {row.team.name: row for row in table.rows}


def test_a_win_gives_three_points_a_draw_one_a_defeat_none() -> None:
    rows = rows_by_name([game(ARS, CHE, 2, 0), game(LIV, MCI, 1, 1)])
    assert [rows[n].points for n in ("Arsenal", "Chelsea", "Liverpool", "Man City")] == [3, 0, 1, 1]
    ars = rows["Arsenal"]
    assert (ars.played, ars.won, ars.drawn, ars.lost) == (1, 1, 0, 0)
    assert (ars.goals_for, ars.goals_against, ars.goal_difference) == (2, 0, 2)
    assert rows["Chelsea"].goal_difference == -2


def test_points_per_result_are_the_competitions_own() -> None:
    rows = rows_by_name([game(ARS, CHE, 2, 0), game(LIV, MCI, 1, 1)], rules=Rules(2, 1, 0))
    assert rows["Arsenal"].points == 2
    rows = rows_by_name([game(ARS, CHE, 0, 1)], rules=Rules(3, 1, 1))  # a point for a defeat
    assert rows["Arsenal"].points == 1


@pytest.mark.parametrize(
    "status",
    [
        MatchStatus.SCHEDULED,
        MatchStatus.POSTPONED,
        MatchStatus.SUSPENDED,
        MatchStatus.CANCELLED,
        MatchStatus.ABANDONED,
    ],
)
def test_only_finished_and_in_play_matches_count(status: MatchStatus) -> None:
    rows = rows_by_name([game(ARS, CHE, 3, 0, status)])
    assert rows["Arsenal"].played == 0 and rows["Arsenal"].points == 0
    assert rows["Chelsea"].played == 0
    assert not counts(status, live=True)


@pytest.mark.parametrize("status", sorted(IN_PLAY_STATUSES))
def test_a_match_in_play_counts_as_it_stands_and_flags_both_rows(status: MatchStatus) -> None:
    results = [game(ARS, CHE, 1, 0, status), game(LIV, MCI, 2, 0)]
    rows = rows_by_name(results)
    assert rows["Arsenal"].points == 3 and rows["Arsenal"].provisional
    assert rows["Chelsea"].lost == 1 and rows["Chelsea"].provisional
    assert not rows["Liverpool"].provisional and not rows["Man City"].provisional
    final_only = rows_by_name(results, live=False)
    assert final_only["Arsenal"].played == 0 and not final_only["Arsenal"].provisional


def test_ties_go_to_goal_difference_then_goals_for_then_name_then_id() -> None:
    # Liverpool and Arsenal: 3 points, GD +1, Liverpool scored more; Chelsea and
    # Man City: 0 points, GD -1, Chelsea scored more
    results = [game(LIV, CHE, 3, 2), game(ARS, MCI, 1, 0)]
    (table,) = compute(results)
    assert [r.team.name for r in table.rows] == ["Liverpool", "Arsenal", "Chelsea", "Man City"]
    # same everything: by name, case-folded
    a, b = Team(10, "zeta"), Team(11, "Alpha")
    (table,) = compute([game(a, b, 1, 1)])
    assert [r.team.name for r in table.rows] == ["Alpha", "zeta"]
    # same name too: by id
    x, y = Team(21, "United"), Team(20, "United")
    (table,) = compute([game(x, y, 0, 0)])
    assert [r.team.id for r in table.rows] == [20, 21]
    assert [r.position for r in table.rows] == [1, 2]


def test_goal_difference_beats_goals_for() -> None:
    # Arsenal: 3 pts, GD +1 (1-0); Chelsea: 3 pts, GD +1 (4-3); Liverpool: 3 pts, GD +3 (3-0)
    results = [
        game(ARS, MCI, 1, 0),
        game(CHE, Team(5, "Spurs"), 4, 3),
        game(LIV, Team(6, "Wolves"), 3, 0),
    ]
    (table,) = compute(results)
    assert [r.team.name for r in table.rows[:3]] == ["Liverpool", "Chelsea", "Arsenal"]


def test_form_is_the_last_five_results_oldest_first() -> None:
    others = [Team(100 + i, f"T{i}") for i in range(7)]
    scores = [(1, 0), (0, 1), (2, 2), (3, 0), (0, 2), (1, 0), (1, 1)]
    # listed out of order: form follows kickoff, not input order
    results = [game(ARS, others[i], *scores[i], day=i) for i in reversed(range(7))]
    assert rows_by_name(results)["Arsenal"].form == ("D", "W", "L", "W", "D")
    live = [*results, game(others[0], ARS, 0, 1, MatchStatus.LIVE, day=9)]
    assert rows_by_name(live)["Arsenal"].form == ("W", "L", "W", "D", "W")


def test_every_team_of_the_season_has_a_row_even_before_playing() -> None:
    rows = rows_by_name([game(ARS, CHE, 0, 0, MatchStatus.SCHEDULED)])
    assert set(rows) == {"Arsenal", "Chelsea"}
    assert all(r.played == 0 and r.form == () for r in rows.values())


def test_groups_get_a_table_each_and_knockout_matches_are_left_out() -> None:
    results = [
        game(ARS, CHE, 1, 0, group="Group B"),
        game(LIV, MCI, 2, 2, group="Group A"),
        game(ARS, LIV, 5, 0),  # a knockout match: no group
    ]
    tables = compute(results)
    assert [t.group for t in tables] == ["Group A", "Group B"]
    assert [r.team.name for r in tables[1].rows] == ["Arsenal", "Chelsea"]
    assert tables[1].rows[0].goals_for == 1


def test_knockout_stage_matches_count_in_no_table_even_without_groups() -> None:
    # API-Football names the stage ("Group Stage - 3", "Round of 16") but no group
    results = [
        game(ARS, CHE, 1, 0, stage="group_stage"),
        game(LIV, MCI, 2, 2, stage="group_stage"),
        game(ARS, LIV, 5, 0, stage="round_of_16"),
        game(CHE, MCI, 0, 3, stage="final"),
    ]
    rows = rows_by_name(results)
    assert rows["Arsenal"].played == rows["Man City"].played == 1
    assert rows["Arsenal"].goals_for == 1 and rows["Man City"].points == 1


def test_a_grouped_match_in_a_knockout_stage_counts_in_no_group() -> None:
    results = [
        game(ARS, CHE, 1, 0, group="Group A", stage="group_stage"),
        game(ARS, CHE, 0, 4, group="Group A", stage="play_offs"),
    ]
    (table,) = compute(results)
    assert table.rows[0].team == ARS and table.rows[0].played == 1


@pytest.mark.parametrize(
    ("stage", "knockout"),
    [
        ("final", True),
        ("semi_finals", True),
        ("quarter_finals", True),
        ("third_place", True),
        ("3rd_place_final", True),
        ("round_of_16", True),
        ("last_16", True),
        ("playoffs", True),
        ("knockout_round_play_offs", True),
        ("qualification", True),
        ("preliminary_round", True),
        ("2nd_round", True),
        ("round_1", True),
        ("group_stage", False),
        ("league_stage", False),
        ("regular_season", False),
        ("apertura", False),
        (None, False),
    ],
)
def test_knockout_stages_are_the_documented_ones(stage: str | None, knockout: bool) -> None:
    assert is_knockout(stage) is knockout


def test_without_groups_there_is_one_table_named_none() -> None:
    assert [t.group for t in compute([game(ARS, CHE, 1, 0)])] == [None]
    assert compute([]) == [compute([])[0]] and compute([])[0].rows == ()


@pytest.mark.parametrize(
    ("start", "month", "season"),
    [
        (datetime(2025, 3, 1, tzinfo=UTC), 7, 2024),
        (datetime(2024, 7, 1, tzinfo=UTC), 7, 2024),
        (datetime(2024, 6, 30, 23, 59, tzinfo=UTC), 7, 2023),
        (datetime(2026, 6, 11, tzinfo=UTC), 1, 2026),
        (datetime(2026, 7, 19, tzinfo=UTC), 1, 2026),
    ],
)
def test_the_season_is_the_year_it_starts_in(start: datetime, month: int, season: int) -> None:
    assert season_of(start, month) == season
    begin, end = season_bounds(season, month)
    assert begin <= start < end


def test_a_season_start_month_outside_1_to_12_is_refused() -> None:
    with pytest.raises(ValueError, match=r"use 1\.\.12"):
        Rules(season_start_month=13)


def test_row_json_names_every_column() -> None:
    (table,) = compute([game(ARS, CHE, 2, 1, MatchStatus.LIVE)])
    assert table.to_json()["rows"][0] == {
        "position": 1,
        "team": {"id": 1, "name": "Arsenal"},
        "played": 1,
        "won": 1,
        "drawn": 0,
        "lost": 0,
        "goalsFor": 2,
        "goalsAgainst": 1,
        "goalDifference": 1,
        "points": 3,
        "form": "W",
        "provisional": True,
    }


def test_the_version_is_the_sum_of_the_match_seqs() -> None:
    assert version([game(ARS, CHE, 0, 0, seq=4), game(LIV, MCI, 0, 0, seq=9)]) == 13


# -- properties ---------------------------------------------------------------------------

TEAMS = [Team(i, name) for i, name in enumerate(["A", "b", "B", "c", "D", "e"], start=1)]
STATUSES = st.sampled_from(list(MatchStatus))


@st.composite
def results(draw: st.DrawFn) -> list[Result]:
    out = []
    for n in range(draw(st.integers(0, 25))):
        home, away = draw(st.lists(st.sampled_from(TEAMS), min_size=2, max_size=2, unique=True))
        out.append(
            Result(
                n + 1,
                home,
                away,
                draw(STATUSES),
                draw(st.integers(0, 6)),
                draw(st.integers(0, 6)),
                T0 + timedelta(hours=draw(st.integers(0, 1000))),
                group=draw(st.sampled_from([None, None, "G1", "G2"])),
                stage=draw(st.sampled_from([None, None, "group_stage", "final", "last_16"])),
            )
        )
    return out


@settings(max_examples=200, deadline=None)
@given(results(), st.booleans())
def test_properties_of_every_table(games: list[Result], live: bool) -> None:
    tables = compute(games, live=live)
    table_games = [g for g in games if not is_knockout(g.stage)]
    grouped = any(g.group for g in table_games)
    for table in tables:
        mine = [g for g in table_games if g.group == table.group] if grouped else table_games
        counted = [g for g in mine if counts(g.status, live=live)]
        decisive = sum(1 for g in counted if g.home_score != g.away_score)
        draws = len(counted) - decisive
        rows = table.rows
        # points: 3 per decisive match, 2 per draw (default rules)
        assert sum(r.points for r in rows) == 3 * decisive + 2 * draws
        assert sum(r.played for r in rows) == 2 * len(counted)
        assert sum(r.goals_for for r in rows) == sum(r.goals_against for r in rows)
        # positions are a permutation of 1..n, in the documented order
        assert sorted(r.position for r in rows) == list(range(1, len(rows) + 1))
        assert [r.position for r in rows] == list(range(1, len(rows) + 1))
        assert [sort_key(r) for r in rows] == sorted(sort_key(r) for r in rows)
        assert len({r.team.id for r in rows}) == len(rows)
        for row in rows:
            assert row.won + row.drawn + row.lost == row.played
            assert len(row.form) == min(row.played, 5)
            in_play = any(
                g.status in IN_PLAY_STATUSES and row.team in (g.home, g.away) for g in counted
            )
            # provisional exactly when a match it plays counts but is not finished
            assert row.provisional == in_play
            if not live:
                assert not row.provisional
