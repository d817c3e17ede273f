"""Every adapter says a match's stage and group where its feed does, in one
shape ("group_stage", "Group B"), and None where it does not (issue 16: one
table per group). Recorded samples first, then the quirks of each feed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pipeline.observation_codec import fingerprint, from_json, to_json
from providers.base import FeedConfig, Purpose
from providers.parsing import group_label, stage_key
from providers.registry import ADAPTERS
from tests.providers.conftest import Parse, recorded_response, response_for

Payload = Callable[[str, str], Any]


def _by_id(kind: str, name: str, purpose: Purpose = "today") -> dict[str, Any]:
    adapter = ADAPTERS[kind](FeedConfig(name=kind, kind=kind))
    response = recorded_response(kind, name)
    if purpose != "today":
        response = response_for(kind, response.json(), purpose=purpose)
    return {o.provider_match_id: o for o in adapter.parse(response)}


@pytest.mark.parametrize(
    ("kind", "sample", "purpose", "match_id", "stage", "group"),
    [
        # football-data: stage and group named outright (group null outside one)
        ("football-data", "footballdata-v4-matches-today.recorded.json", "today", "415963",
         "regular_season", None),
        ("football-data", "match-444001-shootout.json", "match", "444001", "last_16", None),
        # ESPN: the group in altGameNote, the phase in the event's season slug
        ("espn", "espn-soccer-scoreboard-finished-with-details.json", "today", "760416",
         "group_stage", "Group B"),
        ("espn", "espn-soccer-scoreboard-finished-with-details.json", "today", "760417",
         "group_stage", "Group D"),
        # API-Football: league.round is the phase and the matchday, never the group
        ("api-football", "apifootball-v3-fixtures-live.json", "today", "1214075",
         "group_stage", None),
        ("api-football", "apifootball-v3-fixtures-live.json", "today", "1181341",
         "regular_season", None),
        ("api-football", "apifootball-v3-fixtures-live.json", "today", "1202873",
         "apertura", None),
        ("api-football", "apifootball-v3-fixtures-live.json", "today", "1310721",
         "2nd_round", None),
        ("api-football", "fixture-cl-penalties.json", "match", "1149519", "round_of_16", None),
        # TheSportsDB: strGroup "" outside a group; the v2 live rows have no such field
        ("thesportsdb", "eventsday-2026-10-05-soccer.json", "today", "2267181", None, None),
        ("thesportsdb", "thesportsdb-v2-livescore-soccer.json", "today", "2608413", None, None),
    ],
)  # fmt: skip
def test_recorded_samples_carry_the_stage_and_group_their_feed_names(
    kind: str, sample: str, purpose: Purpose, match_id: str, stage: str | None, group: str | None
) -> None:
    obs = _by_id(kind, sample, purpose)[match_id]
    assert (obs.stage, obs.group) == (stage, group)


def _fd_group(body: Any) -> Any:
    body["matches"][0]["stage"], body["matches"][0]["group"] = "GROUP_STAGE", "GROUP_H"
    return body


def _espn_note_only(body: Any) -> Any:
    contest = body["events"][0]["competitions"][0]
    del contest["altGameNote"]
    contest["notes"] = [{"type": "event", "headline": "Group F"}]
    return body


def _espn_league_season(body: Any) -> Any:
    body["events"][0]["season"]["slug"] = "2024-25-english-premier-league"
    body["events"][0]["competitions"][0]["altGameNote"] = "Premier League"
    return body


def _tsdb_group(value: object) -> Callable[[Any], Any]:
    def edit(body: Any) -> Any:
        body["events"][0]["strGroup"] = value
        return body

    return edit


@pytest.mark.parametrize(
    ("kind", "sample", "edit", "stage", "group"),
    [
        ("football-data", "footballdata-v4-matches-today.recorded.json", _fd_group,
         "group_stage", "Group H"),
        ("espn", "espn-soccer-scoreboard-finished-with-details.json", _espn_note_only,
         "group_stage", "Group F"),
        ("espn", "espn-soccer-scoreboard-finished-with-details.json", _espn_league_season,
         None, None),
        ("thesportsdb", "eventsday-2026-10-05-soccer.json", _tsdb_group("B"), None, "Group B"),
        ("thesportsdb", "eventsday-2026-10-05-soccer.json", _tsdb_group("Group C"), None,
         "Group C"),
        ("thesportsdb", "eventsday-2026-10-05-soccer.json", _tsdb_group(3), None, "Group 3"),
        ("thesportsdb", "eventsday-2026-10-05-soccer.json", _tsdb_group(None), None, None),
    ],
)  # fmt: skip
def test_provider_quirks_give_one_shape_of_stage_and_group(
    payload: Payload,
    parse: Parse,
    kind: str,
    sample: str,
    edit: Callable[[Any], Any],
    stage: str | None,
    group: str | None,
) -> None:
    first = parse(kind, edit(payload(kind, sample)))[0]
    assert (first.stage, first.group) == (stage, group)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("GROUP_STAGE", "group_stage"),
        ("Group Stage - 3", "group_stage"),
        ("group-stage", "group_stage"),
        ("Regular Season - 35", "regular_season"),
        ("Round of 16", "round_of_16"),
        ("LAST_16", "last_16"),
        ("Quarter-finals", "quarter_finals"),
        ("", None),
        (None, None),
    ],
)
def test_stage_key_joins_words_and_drops_the_matchday(text: str | None, key: str | None) -> None:
    assert stage_key(text) == key


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("GROUP_A", "Group A"),
        ("FIFA World Cup, Group B", "Group B"),
        ("group c", "Group C"),
        ("B", "Group B"),
        ("Group 12", "Group 12"),
        ("Group of Death", None),
        ("Premier League", None),
        ("", None),
        (None, None),
    ],
)
def test_group_label_names_every_spelling_of_a_group_alike(
    text: str | None, label: str | None
) -> None:
    assert group_label(text) == label


def test_stage_and_group_survive_the_observation_codec_and_leave_old_fingerprints_alone() -> None:
    by_id = _by_id("espn", "espn-soccer-scoreboard-finished-with-details.json")
    grouped = by_id["760416"]
    assert from_json(to_json(grouped)) == grouped
    plain = _by_id("thesportsdb", "thesportsdb-v2-livescore-soccer.json")["2608413"]
    data = to_json(plain)
    # an observation naming neither hashes as it did before migration 0011
    assert "stage" not in data and "group" not in data
    assert fingerprint(data) == fingerprint(to_json(from_json(data)))
