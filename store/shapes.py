"""Rows -> the public JSON shapes of matches and events (camelCase, as in
CONTRACT.md), and rows -> canonical ``MatchState``. Shared by the REST
API, WebSocket snapshots and change-log payloads so they never disagree."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from livescore.matchclock import clock_document
from livescore.model import Breakdown, Clock, MatchState, MatchStatus, OverrideInfo, Period

#: SELECT list + joins that every match read uses (alias m for matches).
MATCH_SELECT = """
SELECT m.*,
       c.name AS competition_name,
       ht.name AS home_name, ht.short_name AS home_short, ht.tla AS home_tla,
       at.name AS away_name, at.short_name AS away_short, at.tla AS away_tla,
       o.status AS ov_status, o.home_score AS ov_home, o.away_score AS ov_away,
       o.who AS ov_who, o.reason AS ov_reason, o.since AS ov_since
  FROM matches m
  JOIN teams ht ON ht.id = m.home_team_id
  JOIN teams at ON at.id = m.away_team_id
  LEFT JOIN competitions c ON c.id = m.competition_id
  LEFT JOIN overrides o ON o.match_id = m.id
"""

EVENT_SELECT = """
SELECT e.*, t.name AS team_name
  FROM events e
  LEFT JOIN teams t ON t.id = e.team_id
"""


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def clock_json(row: dict[str, Any]) -> dict[str, Any]:
    """The public clock: as reported, plus what a client ticks it with."""
    return clock_document(clock_of(row), row.get("clock_started_at"))


def clock_of(row: dict[str, Any]) -> Clock:
    period = row["clock_period"]
    return Clock(row["clock_minute"], row["clock_added"], Period(period) if period else None)


def breakdown_json(raw: dict[str, Any] | None) -> dict[str, Any]:
    return Breakdown.from_json(raw).to_json()


def override_from_row(row: dict[str, Any]) -> OverrideInfo | None:
    if row.get("ov_who") is None:
        return None
    return OverrideInfo(
        who=row["ov_who"],
        reason=row["ov_reason"],
        since=row["ov_since"],
        status=MatchStatus(row["ov_status"]) if row["ov_status"] else None,
        home_score=row["ov_home"],
        away_score=row["ov_away"],
    )


def match_json(row: dict[str, Any]) -> dict[str, Any]:
    """The public match object (GET /api/matches/{id}, WebSocket snapshots)."""
    override = override_from_row(row)
    competition = (
        {"id": row["competition_id"], "name": row["competition_name"]}
        if row["competition_id"] is not None
        else None
    )
    return {
        "id": row["id"],
        "sport": row["sport"],
        "competition": competition,
        "homeTeam": {
            "id": row["home_team_id"],
            "name": row["home_name"],
            "shortName": row["home_short"],
            "tla": row["home_tla"],
        },
        "awayTeam": {
            "id": row["away_team_id"],
            "name": row["away_name"],
            "shortName": row["away_short"],
            "tla": row["away_tla"],
        },
        "startTime": iso(row["start_time"]),
        "endTime": iso(row["end_time"]),
        "status": row["status"],
        "homeScore": row["home_score"],
        "awayScore": row["away_score"],
        "breakdown": breakdown_json(row["breakdown"]),
        "clock": clock_json(row),
        "stats": row["stats"],
        "seq": row["seq"],
        "stale": row["stale"],
        "updatedAt": iso(row["updated_at"]),
        "override": override.to_json() if override else None,
        # the competition phase and group (migration 0011), None when no feed said
        "stage": row.get("stage"),
        "group": row.get("group_name"),
    }


def event_json(row: dict[str, Any]) -> dict[str, Any]:
    """The public commentary event object."""
    team = {"id": row["team_id"], "name": row.get("team_name")} if row["team_id"] else None
    return {
        "id": row["id"],
        "matchId": row["match_id"],
        "seq": row["seq"],
        "minute": row["minute"],
        "addedTime": row["added_time"],
        "type": row["type"],
        "side": row["side"],
        "team": team,
        "actor": row["actor"],
        "message": row["message"],
        "metadata": row["metadata"],
        "retracted": row["retracted"],
        "source": row["source"],
        "createdAt": iso(row["created_at"]),
        # what the original Live Score API's bodies carry (migration 0008)
        "period": row.get("period"),
        "sequence": row.get("sequence"),
        "tags": list(row.get("tags") or ()),
        "originalType": row.get("original_type"),
    }


def state_from_row(row: dict[str, Any]) -> MatchState:
    """The canonical state of a match row (as read with MATCH_SELECT)."""
    return MatchState(
        id=row["id"],
        status=MatchStatus(row["status"]),
        home_score=row["home_score"],
        away_score=row["away_score"],
        start_time=row["start_time"],
        seq=row["seq"],
        breakdown=Breakdown.from_json(row["breakdown"]),
        clock=clock_of(row),
        stats=row["stats"],
        override=override_from_row(row),
        score_source=row["score_source"],
        status_source=row["status_source"],
        clock_started_at=row.get("clock_started_at"),
        stage=row.get("stage"),
        group=row.get("group_name"),
    )
