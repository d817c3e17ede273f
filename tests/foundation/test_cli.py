"""The CLI: help everywhere, one-line errors, exit codes 0/1/2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cli import main

ROOT = Path(__file__).resolve().parents[2]


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += all_commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("path", all_commands(main), ids=lambda p: " ".join(p) or "livescore")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_unknown_command_is_a_usage_error() -> None:
    assert CliRunner().invoke(main, ["db", "nope"]).exit_code == 2


def test_bad_setting_is_one_line_without_traceback() -> None:
    env = {**os.environ, "REDIS_URL": "http://wrong", "DATABASE_URL": "postgresql://x@h/db"}
    result = subprocess.run(
        [sys.executable, "-m", "cli", "db", "migrate"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: REDIS_URL='http://wrong' is not a redis/rediss/unix URL; "
        "set it like redis://host:port/... or unset it for the embedded server"
    ]
