"""Entity resolution: which canonical match (and teams, competition) a
provider's observation is about.

1. By provider id: the crosswalk maps (provider, provider id) to one
   canonical id. Known ids resolve without further thought.
2. Else by names + kickoff window + competition: team names are compared by
   name key against every spelling a team was seen under (aliases: names,
   short names, other providers' names), the competition likewise (and by
   country when two share a name). A canonical match whose kickoff is within
   ``KICKOFF_WINDOW`` of the observation's, with at least one side's team
   among the candidates and the same competition (when both are known), and
   not already linked to another id of the same provider, is the same match;
   the provider's spellings are learnt as aliases of its teams.
3. Nothing found: the teams, competition and match are created.
4. More than one candidate anywhere: ``Ambiguous`` is returned, nothing is
   guessed or created; the observation is recorded as rejected with the
   candidates, for an operator to sort out.

The slow path runs under a transaction-scoped advisory lock so two workers
never create the same match twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from livescore.model import CompetitionRef, MatchObservation, TeamRef
from livescore.names import compatible
from store import crosswalk, reference
from store.db import Conn
from store.matches import NewMatch, create_match

KICKOFF_WINDOW = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A canonical match that may be the observed one, with its teams' alias keys."""

    match_id: int
    home_team_id: int
    away_team_id: int
    home_keys: tuple[str, ...]
    away_keys: tuple[str, ...]


def _side_fits(team_id: int, team_keys: tuple[str, ...], ids: list[int], keys: list[str]) -> str:
    """'strong' when the team is a known candidate, 'fuzzy' when only its names
    are compatible, '' when neither."""
    if team_id in ids:
        return "strong"
    if any(compatible(a, b) for a in keys for b in team_keys):
        return "fuzzy"
    return ""


def pick_candidates(
    candidates: list[Candidate],
    *,
    home_ids: list[int],
    away_ids: list[int],
    home_keys: list[str],
    away_keys: list[str],
) -> list[Candidate]:
    """The candidates that are the observed match (pure).

    A team plays one match at a time, so a candidate whose home or away team
    is the observation's known team is the match ("USA" ~ "United States"
    through Paraguay). Without a known team, both sides' names must be
    compatible ("Brighton" ~ "Brighton & Hove Albion"). When several fit,
    those with more known sides win; a tie is ambiguous.
    """
    scored: list[tuple[int, Candidate]] = []
    for cand in candidates:
        home = _side_fits(cand.home_team_id, cand.home_keys, home_ids, home_keys)
        away = _side_fits(cand.away_team_id, cand.away_keys, away_ids, away_keys)
        if "strong" in (home, away) or (home and away):
            scored.append(((home == "strong") + (away == "strong"), cand))
    if not scored:
        return []
    best = max(score for score, _ in scored)
    return [cand for score, cand in scored if score == best]


@dataclass(frozen=True, slots=True)
class Resolved:
    match_id: int
    created: bool


@dataclass(frozen=True, slots=True)
class Ambiguous:
    reason: str


async def resolve(conn: Conn, obs: MatchObservation) -> Resolved | Ambiguous:
    """Find or create the canonical match of ``obs`` (call inside a transaction)."""
    known = await crosswalk.lookup(conn, "match", obs.provider, obs.provider_match_id)
    if known is not None:
        return Resolved(known, created=False)
    await crosswalk.lock_resolution(conn)
    known = await crosswalk.lookup(conn, "match", obs.provider, obs.provider_match_id)
    if known is not None:
        return Resolved(known, created=False)

    competition_id: int | None = None
    if obs.competition is not None:
        found = await _competition(conn, obs.provider, obs.sport, obs.competition)
        if isinstance(found, Ambiguous):
            return found
        competition_id = found
    home = await _team_candidates(conn, obs.provider, obs.sport, obs.home)
    away = await _team_candidates(conn, obs.provider, obs.sport, obs.away)
    rows = await crosswalk.candidate_matches(
        conn,
        provider=obs.provider,
        start_time=obs.start_time,
        window=KICKOFF_WINDOW,
        competition_id=competition_id,
    )
    candidates = pick_candidates(
        [
            Candidate(
                r["id"],
                r["home_team_id"],
                r["away_team_id"],
                tuple(r["home_keys"]),
                tuple(r["away_keys"]),
            )
            for r in rows
        ],
        home_ids=home,
        away_ids=away,
        home_keys=reference.alias_keys(obs.home.name, obs.home.short_name),
        away_keys=reference.alias_keys(obs.away.name, obs.away.short_name),
    )
    if len(candidates) > 1:
        return Ambiguous(
            f"{obs.home.name} v {obs.away.name} at {obs.start_time.isoformat()} could be "
            f"matches {', '.join(str(c.match_id) for c in candidates)}; pick one with "
            f"`livescore link match {obs.provider} {obs.provider_match_id} MATCH_ID`"
        )
    if candidates:
        chosen = candidates[0]
        await _learn(conn, obs.provider, obs.sport, obs.home, chosen.home_team_id)
        await _learn(conn, obs.provider, obs.sport, obs.away, chosen.away_team_id)
        await crosswalk.link(conn, "match", obs.provider, obs.provider_match_id, chosen.match_id)
        return Resolved(chosen.match_id, created=False)

    home_id = await _one_or_create(conn, obs.provider, obs.sport, obs.home, home)
    away_id = await _one_or_create(conn, obs.provider, obs.sport, obs.away, away)
    for side, ident in (("home", home_id), ("away", away_id)):
        if isinstance(ident, Ambiguous):
            return Ambiguous(f"{side} team: {ident.reason}")
    assert isinstance(home_id, int) and isinstance(away_id, int)
    if home_id == away_id:
        return Ambiguous(f"{obs.home.name} and {obs.away.name} resolve to one team ({home_id})")
    match = await create_match(
        conn,
        NewMatch(
            home_team_id=home_id,
            away_team_id=away_id,
            start_time=obs.start_time,
            sport=obs.sport,
            competition_id=competition_id,
            # reference data as the creating feed says it (no change-log row: the
            # match is new); a more trusted feed's differing one comes by rule 10
            stage=obs.stage,
            group=obs.group,
        ),
    )
    await crosswalk.link(conn, "match", obs.provider, obs.provider_match_id, match["id"])
    return Resolved(match["id"], created=True)


async def _competition(
    conn: Conn, provider: str, sport: str, ref: CompetitionRef
) -> int | Ambiguous:
    known = await crosswalk.lookup(conn, "competition", provider, ref.provider_id)
    if known is not None:
        return known
    ids = await reference.find_ids(conn, "competition", sport, reference.alias_keys(ref.name))
    if len(ids) > 1 and ref.country:
        ids = await reference.in_country(conn, ids, ref.country) or ids
    if len(ids) > 1:
        return Ambiguous(
            f"competition {ref.name!r} could be {', '.join(map(str, ids))}; pick one with "
            f"`livescore link competition {provider} {ref.provider_id} COMPETITION_ID`"
        )
    if ids:
        ident = ids[0]
        await reference.add_aliases(conn, "competition", sport, ident, ref.name)
    else:
        ident = await reference.create(conn, "competition", ref.name, sport, country=ref.country)
    return await crosswalk.link(conn, "competition", provider, ref.provider_id, ident, ref.name)


async def _team_candidates(conn: Conn, provider: str, sport: str, team: TeamRef) -> list[int]:
    known = await crosswalk.lookup(conn, "team", provider, team.provider_id)
    if known is not None:
        return [known]
    return await reference.find_ids(
        conn, "team", sport, reference.alias_keys(team.name, team.short_name)
    )


async def _learn(conn: Conn, provider: str, sport: str, team: TeamRef, team_id: int) -> None:
    """Remember that this provider's team is canonical team ``team_id``."""
    await reference.add_aliases(conn, "team", sport, team_id, team.name, team.short_name)
    await crosswalk.link(conn, "team", provider, team.provider_id, team_id, team.name)


async def _one_or_create(
    conn: Conn, provider: str, sport: str, team: TeamRef, candidates: list[int]
) -> int | Ambiguous:
    if len(candidates) > 1:
        return Ambiguous(
            f"{team.name!r} could be teams {', '.join(map(str, candidates))}; pick one with "
            f"`livescore link team {provider} {team.provider_id} TEAM_ID`"
        )
    if candidates:
        team_id = candidates[0]
    else:
        team_id = await reference.create(
            conn, "team", team.name, sport, short_name=team.short_name, tla=team.tla
        )
    await _learn(conn, provider, sport, team, team_id)
    return team_id
