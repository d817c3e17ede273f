"""The replay's progress line: the rate never reads 0 once changes were applied."""

from __future__ import annotations

import time
from typing import Any, cast

import pytest

from pipeline.replay import ReplayProgress, format_rate


@pytest.mark.parametrize(
    ("rate", "text"),
    [(0.0, "0"), (0.004, "0.004"), (0.24, "0.24"), (3.456, "3.5"), (9.4, "9.4"), (71.6, "72")],
)
def test_format_rate(rate: float, text: str) -> None:
    assert format_rate(rate) == text


def test_a_slow_paced_replay_does_not_print_zero_changes_per_second() -> None:
    progress = ReplayProgress(total=10, responses=4, started=time.monotonic() - 600)
    progress.report.changes = cast(Any, [object()] * 120)  # 0.2 changes/s
    line = progress.line()
    assert "120 changes applied" in line
    assert " 0 changes/s" not in line
    rate = float(line.split(", ")[-1].split()[0])
    assert 0.19 <= rate <= 0.21
