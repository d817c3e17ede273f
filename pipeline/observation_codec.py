"""MatchObservation <-> JSON, for the observations table, plus its fingerprint.

The fingerprint is a hash of what the observation *says* (not when it was
fetched): polling the same data twice gives the same fingerprint, and the
observations table's unique key turns the second one into a no-op.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson

from livescore.model import (
    Breakdown,
    Clock,
    CompetitionRef,
    EventObservation,
    EventType,
    MatchObservation,
    MatchStatus,
    TeamRef,
)


def _team(team: TeamRef) -> dict[str, Any]:
    return {
        "id": team.provider_id,
        "name": team.name,
        "shortName": team.short_name,
        "tla": team.tla,
    }


def _event(event: EventObservation) -> dict[str, Any]:
    return {
        "key": event.key,
        "type": event.type.value,
        "minute": event.minute,
        "addedTime": event.added_time,
        "side": event.side,
        "actor": event.actor,
        "message": event.message,
        "metadata": event.metadata,
        "retracted": event.retracted,
        "shootout": event.shootout,
    }


def to_json(obs: MatchObservation) -> dict[str, Any]:
    comp = obs.competition
    data = {
        "provider": obs.provider,
        "providerMatchId": obs.provider_match_id,
        "sport": obs.sport,
        "competition": (
            {"id": comp.provider_id, "name": comp.name, "country": comp.country} if comp else None
        ),
        "home": _team(obs.home),
        "away": _team(obs.away),
        "startTime": obs.start_time.isoformat(),
        "status": obs.status.value,
        "providerStatus": obs.provider_status,
        "homeScore": obs.home_score,
        "awayScore": obs.away_score,
        "breakdown": obs.breakdown.to_json(),
        "clock": obs.clock.to_json(),
        "events": [_event(e) for e in obs.events],
        "eventsComplete": obs.events_complete,
        "stats": obs.stats,
        "providerUpdatedAt": (
            obs.provider_updated_at.isoformat() if obs.provider_updated_at else None
        ),
    }
    # only when said: an observation without them keeps the fingerprint it always had
    if obs.stage is not None:
        data["stage"] = obs.stage
    if obs.group is not None:
        data["group"] = obs.group
    return data


def from_json(data: dict[str, Any]) -> MatchObservation:
    comp = data.get("competition")
    updated = data.get("providerUpdatedAt")
    return MatchObservation(
        provider=data["provider"],
        provider_match_id=data["providerMatchId"],
        sport=data["sport"],
        competition=(
            CompetitionRef(comp["id"], comp["name"], comp.get("country")) if comp else None
        ),
        home=TeamRef(
            data["home"]["id"], data["home"]["name"], data["home"]["shortName"], data["home"]["tla"]
        ),
        away=TeamRef(
            data["away"]["id"], data["away"]["name"], data["away"]["shortName"], data["away"]["tla"]
        ),
        start_time=datetime.fromisoformat(data["startTime"]),
        status=MatchStatus(data["status"]),
        provider_status=data["providerStatus"],
        home_score=data["homeScore"],
        away_score=data["awayScore"],
        breakdown=Breakdown.from_json(data["breakdown"]),
        clock=Clock.from_json(data["clock"]),
        events=tuple(
            EventObservation(
                key=e["key"],
                type=EventType(e["type"]),
                minute=e["minute"],
                added_time=e["addedTime"],
                side=e["side"],
                actor=e["actor"],
                message=e["message"],
                metadata=e["metadata"],
                retracted=e["retracted"],
                shootout=e["shootout"],
            )
            for e in data["events"]
        ),
        events_complete=data["eventsComplete"],
        stats=data["stats"],
        provider_updated_at=datetime.fromisoformat(updated) if updated else None,
        stage=data.get("stage"),
        group=data.get("group"),
    )


def fingerprint(data: dict[str, Any]) -> str:
    """Hash of an observation's JSON (keys sorted, so equal data hashes equal)."""
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
