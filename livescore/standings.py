"""League tables computed from our own results: a pure function over plain data.

``compute`` takes the matches of one competition and season (``Result``) and
the competition's ``Rules`` and returns one ``Table`` per group (one table
when no match names a group). Nothing here reads a database or a clock.

The rules (README "Standings" says the same):

* **What counts.** A ``finished`` match counts with its score. A match in play
  (``live``, ``halftime``, ``extra_time``, ``penalties``) counts with its
  current score "as it stands" when ``live=True``, and both teams' rows are
  flagged ``provisional``; with ``live=False`` it does not count. Nothing else
  counts: ``scheduled``, ``postponed``, ``suspended`` (no result yet),
  ``cancelled`` and ``abandoned`` (void until the competition says otherwise).
  We have no ``awarded`` status: an awarded result (e.g. 3-0) is entered by an
  operator as an override (status ``finished`` with the awarded score) and
  then counts like any finished match. A shoot-out never counts: the match
  score excludes it, so a match decided on penalties is a draw in the table.
* **Points.** ``Rules.win``/``draw``/``loss`` (3/1/0 unless the competition
  has its own, ``standings_rules`` in PostgreSQL).
* **Order.** Points, then goal difference, then goals for (all descending),
  then the team's name (case-folded, ascending), then the team id (ascending;
  our further tie-breaker, so two teams of the same name still get distinct,
  stable positions). Positions are 1..n with no shared places.
* **Form.** The results (``W``/``D``/``L``) of the team's last five counted
  matches by kickoff, oldest first; a provisional result is included.
* **Rows.** Every team with a match in the season (group) has a row, with zeros
  until it has played.
* **Groups.** Matches with a ``group`` make one table per group (ordered by
  group name); when any match has a group, matches without one (knockout
  rounds) are left out of the tables. Whatever the groups, a match whose
  ``stage`` is a knockout phase (``is_knockout``: finals, rounds of N, last N,
  play-offs, qualifying and numbered rounds) never counts in a table: a
  competition whose feeds name the stage but not the group (API-Football)
  still gets a table of its group (or league) phase only.
* **Season.** ``season_of``: the year the season starts in. A competition's
  season starts on the first day of ``Rules.season_start_month`` (July by
  default: a match on 2025-03-01 is in season 2024; month 1 makes seasons
  calendar years, as for a World Cup).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from livescore.model import IN_PLAY_STATUSES, MatchStatus

#: How many recent results ``form`` shows.
FORM_LENGTH = 5


@dataclass(frozen=True, slots=True)
class Rules:
    """A competition's table rules: points per result and when its season starts."""

    win: int = 3
    draw: int = 1
    loss: int = 0
    season_start_month: int = 7

    def __post_init__(self) -> None:
        if not 1 <= self.season_start_month <= 12:
            raise ValueError(
                f"season_start_month {self.season_start_month} is not a month: use 1..12"
            )


@dataclass(frozen=True, slots=True)
class Team:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Result:
    """One match as the table needs it."""

    match_id: int
    home: Team
    away: Team
    status: MatchStatus
    home_score: int
    away_score: int
    start_time: datetime
    seq: int = 0
    group: str | None = None
    stage: str | None = None


@dataclass(frozen=True, slots=True)
class Row:
    position: int
    team: Team
    played: int
    won: int
    drawn: int
    lost: int
    goals_for: int
    goals_against: int
    points: int
    form: tuple[str, ...]
    provisional: bool

    @property
    def goal_difference(self) -> int:
        return self.goals_for - self.goals_against

    def to_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "team": {"id": self.team.id, "name": self.team.name},
            "played": self.played,
            "won": self.won,
            "drawn": self.drawn,
            "lost": self.lost,
            "goalsFor": self.goals_for,
            "goalsAgainst": self.goals_against,
            "goalDifference": self.goal_difference,
            "points": self.points,
            "form": "".join(self.form),
            "provisional": self.provisional,
        }


@dataclass(frozen=True, slots=True)
class Table:
    group: str | None
    rows: tuple[Row, ...]

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "rows": [row.to_json() for row in self.rows]}


@dataclass(slots=True)
class _Tally:
    team: Team
    played: int = 0
    won: int = 0
    drawn: int = 0
    lost: int = 0
    goals_for: int = 0
    goals_against: int = 0
    points: int = 0
    provisional: bool = False
    results: list[tuple[datetime, int, str]] = field(default_factory=list)

    def add(self, scored: int, conceded: int, rules: Rules, when: datetime, match: int) -> None:
        self.played += 1
        self.goals_for += scored
        self.goals_against += conceded
        if scored > conceded:
            self.won += 1
            self.points += rules.win
            letter = "W"
        elif scored == conceded:
            self.drawn += 1
            self.points += rules.draw
            letter = "D"
        else:
            self.lost += 1
            self.points += rules.loss
            letter = "L"
        self.results.append((when, match, letter))


_KNOCKOUT = re.compile(
    r"final|third_place|round_of_|last_\d|play_?off|knockout|qualif|preliminary|"
    r"^\d+(st|nd|rd|th)_round$|^round_\d+$"
)


def is_knockout(stage: str | None) -> bool:
    """Whether a stage key (``providers.parsing.stage_key``) names a knockout
    phase, whose matches are in no table: ``final``, ``semi_finals``,
    ``quarter_finals``, ``third_place``, ``3rd_place_final``, ``round_of_16``,
    ``last_16``, ``playoffs``, ``knockout_round_play_offs``, ``qualification``,
    ``preliminary_round``, ``2nd_round``, ``round_1`` (the names football-data,
    API-Football and ESPN use). None (unknown), ``group_stage``,
    ``league_stage``, ``regular_season`` and anything else are not."""
    return stage is not None and _KNOCKOUT.search(stage) is not None


def counts(status: MatchStatus, *, live: bool) -> bool:
    """Whether a match in ``status`` counts in the table."""
    return status is MatchStatus.FINISHED or (live and status in IN_PLAY_STATUSES)


def sort_key(row: Row | _Tally) -> tuple[int, int, int, str, int]:
    """The table order: points, goal difference, goals for (descending), name, id."""
    return (
        -row.points,
        -(row.goals_for - row.goals_against),
        -row.goals_for,
        row.team.name.casefold(),
        row.team.id,
    )


def season_of(start: datetime, start_month: int = 7) -> int:
    """The season (the year it starts in) of a match kicking off at ``start`` (UTC)."""
    utc = start.astimezone(UTC) if start.tzinfo else start
    return utc.year if utc.month >= start_month else utc.year - 1


def season_bounds(season: int, start_month: int = 7) -> tuple[datetime, datetime]:
    """[start, end) of a season in UTC."""
    begin = datetime(season, start_month, 1, tzinfo=UTC)
    return begin, datetime(season + 1, start_month, 1, tzinfo=UTC)


def _table(group: str | None, results: Iterable[Result], rules: Rules, live: bool) -> Table:
    tallies: dict[int, _Tally] = {}
    for result in results:
        home = tallies.setdefault(result.home.id, _Tally(result.home))
        away = tallies.setdefault(result.away.id, _Tally(result.away))
        if not counts(result.status, live=live):
            continue
        when, match = result.start_time, result.match_id
        home.add(result.home_score, result.away_score, rules, when, match)
        away.add(result.away_score, result.home_score, rules, when, match)
        if result.status is not MatchStatus.FINISHED:
            home.provisional = away.provisional = True
    ordered = sorted(tallies.values(), key=sort_key)
    rows = tuple(
        Row(
            position=index,
            team=t.team,
            played=t.played,
            won=t.won,
            drawn=t.drawn,
            lost=t.lost,
            goals_for=t.goals_for,
            goals_against=t.goals_against,
            points=t.points,
            form=tuple(letter for _, _, letter in sorted(t.results)[-FORM_LENGTH:]),
            provisional=t.provisional,
        )
        for index, t in enumerate(ordered, start=1)
    )
    return Table(group, rows)


def compute(
    results: Sequence[Result], rules: Rules | None = None, *, live: bool = True
) -> list[Table]:
    """The tables of one competition and season: one per group, or one."""
    rules = rules or Rules()
    results = [r for r in results if not is_knockout(r.stage)]
    groups = sorted({r.group for r in results if r.group is not None})
    if not groups:
        return [_table(None, results, rules, live)]
    return [_table(g, (r for r in results if r.group == g), rules, live) for g in groups]


def rules_changed(competition_id: int) -> bytes:
    """The message on ``Keys.standings_channel`` saying a competition's rules changed."""
    return json.dumps({"competitionId": competition_id}).encode()


def changed_competition(message: bytes) -> int:
    """The competition a ``rules_changed`` message names (ValueError: not one)."""
    try:
        competition = json.loads(message)["competitionId"]
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not a rules-changed message: {message[:80]!r}") from exc
    if not isinstance(competition, int) or isinstance(competition, bool):
        raise ValueError(f"not a rules-changed message: {message[:80]!r}")
    return competition


def version(results: Iterable[Result]) -> int:
    """The tables' version: the sum of their matches' seqs. It grows with every
    change of any of them and is the same on every node that read the same rows."""
    return sum(r.seq for r in results)


def default_season(seasons: Sequence[int], now: datetime, start_month: int = 7) -> int:
    """The season shown when none is asked for: the current one if it has matches,
    else the latest before it, else the earliest after it (none: the current one)."""
    current = season_of(now, start_month)
    if not seasons or current in seasons:
        return current
    before = [s for s in seasons if s <= current]
    return max(before) if before else min(seasons)


def document(
    competition: dict[str, Any],
    season: int,
    seasons: Sequence[int],
    rules: Rules,
    results: Sequence[Result],
    *,
    live: bool,
) -> dict[str, Any]:
    """The standings as served (``GET /api/competitions/{id}/standings``'s ``data``
    and a ``standings:update`` frame's ``data``)."""
    return {
        "competition": competition,
        "season": season,
        "seasons": list(seasons),
        "live": live,
        "seq": version(results),
        "rules": {"win": rules.win, "draw": rules.draw, "loss": rules.loss},
        "provisional": live
        and any(
            counts(r.status, live=True) and r.status is not MatchStatus.FINISHED for r in results
        ),
        "tables": [table.to_json() for table in compute(results, rules, live=live)],
    }


@dataclass(frozen=True, slots=True)
class TheirRow:
    """A provider's standings row, its team mapped to ours (``team_id`` None: unknown)."""

    team_id: int | None
    team_name: str
    played: int
    won: int
    drawn: int
    lost: int
    goals_for: int
    goals_against: int
    points: int


#: The columns compared (position is not: providers break ties their own way).
COMPARED = ("played", "won", "drawn", "lost", "goals_for", "goals_against", "points")


def compare(ours: Sequence[Table], theirs: Sequence[TheirRow]) -> list[dict[str, Any]]:
    """Where a provider's table disagrees with ours: one entry per team and column
    (``{"team", "field", "ours", "theirs"}``), and a team of theirs we do not know
    or that has no row in ours (``field: "team"``). Empty: they agree."""
    rows = {row.team.id: row for table in ours for row in table.rows}
    found: list[dict[str, Any]] = []
    for their in theirs:
        mine = rows.get(their.team_id) if their.team_id is not None else None
        if mine is None:
            found.append({"team": their.team_name, "field": "team", "ours": None,
                          "theirs": their.team_name})  # fmt: skip
            continue
        for name in COMPARED:
            a, b = getattr(mine, name), getattr(their, name)
            if a != b:
                camel = name.split("_")[0] + "".join(p.title() for p in name.split("_")[1:])
                found.append({"team": mine.team.name, "field": camel, "ours": a, "theirs": b})
    return found
