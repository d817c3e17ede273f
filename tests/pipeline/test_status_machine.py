"""The status state machine, against an independently written grid."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livescore.errors import PipelineError
from livescore.model import TERMINAL_STATUSES, MatchStatus
from pipeline.status_machine import (
    NATURAL_ORDER,
    TRANSITIONS,
    IllegalTransition,
    can_move,
    check_move,
    legal_moves,
)

S = MatchStatus

# Rows: from; columns: to. "x" legal, "." illegal. Same-status moves are legal no-ops.
GRID = """
      SCH LIV HT  ET  PEN FIN PPD SUS CAN ABD
SCH   x   x   x   x   x   x   x   x   x   x
LIV   .   x   x   x   x   x   .   x   .   x
HT    .   x   x   x   x   x   .   x   .   x
ET    .   .   .   x   x   x   .   x   .   x
PEN   .   .   .   .   x   x   .   x   .   x
FIN   .   .   .   .   .   x   .   .   .   .
PPD   x   x   x   x   x   x   x   x   x   x
SUS   .   x   x   x   x   x   x   x   .   x
CAN   .   .   .   .   .   .   .   .   x   .
ABD   .   .   .   .   .   .   .   .   .   x
"""
COLUMNS = GRID.strip().splitlines()[0].split()
ABBREV = dict(
    zip(
        COLUMNS,
        [
            S.SCHEDULED,
            S.LIVE,
            S.HALFTIME,
            S.EXTRA_TIME,
            S.PENALTIES,
            S.FINISHED,
            S.POSTPONED,
            S.SUSPENDED,
            S.CANCELLED,
            S.ABANDONED,
        ],
        strict=True,
    )
)


def _grid() -> list[tuple[MatchStatus, MatchStatus, bool]]:
    rows = [line.split() for line in GRID.strip().splitlines()[1:]]
    return [
        (ABBREV[row[0]], ABBREV[col], mark == "x")
        for row in rows
        for col, mark in zip(COLUMNS, row[1:], strict=True)
    ]


def test_grid_covers_every_pair() -> None:
    assert len(_grid()) == len(MatchStatus) ** 2


@pytest.mark.parametrize(("old", "new", "legal"), _grid(), ids=lambda v: str(v))
def test_legal_moves_match_the_grid(old: MatchStatus, new: MatchStatus, legal: bool) -> None:
    assert can_move(old, new) is legal
    assert (new in legal_moves(old)) is legal


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (S.FINISHED, S.LIVE),  # the classic: a feed flapping after full time
        (S.LIVE, S.SCHEDULED),
        (S.EXTRA_TIME, S.LIVE),
        (S.EXTRA_TIME, S.HALFTIME),  # the extra-time break is still extra_time
        (S.PENALTIES, S.EXTRA_TIME),
        (S.LIVE, S.POSTPONED),  # a started match is suspended or abandoned, not postponed
        (S.SUSPENDED, S.CANCELLED),  # it started: abandoned, not cancelled
        (S.CANCELLED, S.SCHEDULED),
        (S.ABANDONED, S.LIVE),
    ],
)
def test_named_illegal_moves(old: MatchStatus, new: MatchStatus) -> None:
    assert not can_move(old, new)
    with pytest.raises(IllegalTransition) as info:
        check_move(old, new)
    assert isinstance(info.value, PipelineError)
    assert (info.value.old, info.value.new) == (old, new)
    assert f"{old} -> {new}" in str(info.value)


def test_terminal_message_says_how_to_correct() -> None:
    with pytest.raises(IllegalTransition, match="livescore override status MATCH live"):
        check_move(S.FINISHED, S.LIVE)


def test_non_terminal_message_lists_the_legal_moves() -> None:
    with pytest.raises(IllegalTransition, match="may move to: abandoned, finished, penalties"):
        check_move(S.EXTRA_TIME, S.LIVE)


def test_check_move_accepts_legal_moves() -> None:
    check_move(S.SCHEDULED, S.FINISHED)  # a skipped poll
    check_move(S.HALFTIME, S.LIVE)  # second half


def test_terminal_statuses_have_no_moves() -> None:
    for status in TERMINAL_STATUSES:
        assert TRANSITIONS[status] == frozenset()
        assert legal_moves(status) == {status}


def test_forward_along_the_natural_order_only() -> None:
    for i, old in enumerate(NATURAL_ORDER):
        for j, new in enumerate(NATURAL_ORDER):
            expected = j >= i or (old, new) == (S.HALFTIME, S.LIVE)
            assert can_move(old, new) is expected, (old, new)


def test_table_never_lists_a_self_move() -> None:
    assert all(status not in moves for status, moves in TRANSITIONS.items())
    assert set(TRANSITIONS) == set(MatchStatus)


@given(st.sampled_from(MatchStatus))
def test_same_status_is_a_legal_no_op(status: MatchStatus) -> None:
    assert can_move(status, status)
    check_move(status, status)


@given(st.lists(st.sampled_from(MatchStatus), max_size=30))
def test_a_walk_of_legal_moves_never_leaves_a_terminal_status(
    proposals: list[MatchStatus],
) -> None:
    current = S.SCHEDULED
    for proposed in proposals:
        if can_move(current, proposed):
            assert current not in TERMINAL_STATUSES or proposed == current
            current = proposed
