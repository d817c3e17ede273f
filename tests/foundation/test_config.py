"""Configuration is read in one place; a bad setting is a one-line error naming it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from livescore.config import SETTINGS, load_settings
from livescore.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_without_any_variable() -> None:
    settings = load_settings({})
    assert settings.database_url is None and settings.redis_url is None
    assert settings.embedded
    assert settings.port == 8000
    assert settings.redis_prefix == "livescore"
    assert settings.rate_limit.count == 600 and settings.rate_limit.seconds == 60


def test_database_url_may_be_a_libpq_key_value_string() -> None:
    settings = load_settings({"DATABASE_URL": "host=/run/postgresql dbname=livescore"})
    assert settings.database_url == "host=/run/postgresql dbname=livescore"


def test_service_urls_turn_the_embedded_default_off() -> None:
    settings = load_settings(
        {"DATABASE_URL": "postgresql://u@h/db", "REDIS_URL": "redis://h:6379/0"}
    )
    assert not settings.embedded


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"LIVESCORE_REDIS_PREFIX": "has space"}, "LIVESCORE_REDIS_PREFIX"),
        ({"LIVESCORE_LOG_LEVEL": "LOUD"}, "LIVESCORE_LOG_LEVEL"),
        ({"LIVESCORE_RATE_LIMIT": "lots"}, "LIVESCORE_RATE_LIMIT"),
        ({"LIVESCORE_STALE_AFTER": "1"}, "LIVESCORE_STALE_AFTER"),
    ],
)
def test_bad_setting_names_the_variable_in_one_line(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    message = str(info.value)
    assert names in message and "\n" not in message


def test_readme_settings_table_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z_]+)`", readme, re.M))
    assert {s.env for s in SETTINGS} <= documented
