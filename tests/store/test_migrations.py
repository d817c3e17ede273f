"""Migrations are numbered, forward-only and idempotent."""

from __future__ import annotations

from pathlib import Path

import pytest

from livescore.errors import MigrationError
from store.db import Conn
from store.migrate import Migration, applied_versions, load_migrations, migrate


def test_shipped_migrations_are_numbered_without_gaps() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))


async def test_second_migrate_run_applies_nothing(conn: Conn) -> None:
    # the session fixture already migrated this database
    assert await migrate(conn) == []
    assert await applied_versions(conn) == [m.version for m in load_migrations()]


async def test_edited_migration_is_refused(conn: Conn) -> None:
    shipped = load_migrations()
    edited = [*shipped[:-1], Migration(shipped[-1].version, shipped[-1].name, "SELECT 1;")]
    with pytest.raises(MigrationError, match="forward-only"):
        await migrate(conn, edited)


async def test_new_migration_is_applied_once_and_recorded(conn: Conn) -> None:
    extra = Migration(len(load_migrations()) + 1, "probe", "CREATE TABLE probe_t (x int);")
    try:
        assert [m.name for m in await migrate(conn, [*load_migrations(), extra])] == ["probe"]
        assert await migrate(conn, [*load_migrations(), extra]) == []
    finally:
        await conn.execute("DROP TABLE IF EXISTS probe_t")
        await conn.execute("DELETE FROM schema_migrations WHERE version = %s", (extra.version,))


async def test_failed_migration_rolls_back_and_is_not_recorded(conn: Conn) -> None:
    bad = Migration(len(load_migrations()) + 1, "broken", "CREATE TABLE half_t (x int); SELEC;")
    with pytest.raises(MigrationError, match="broken failed"):
        await migrate(conn, [*load_migrations(), bad])
    cur = await conn.execute("SELECT to_regclass('half_t') IS NULL AS absent")
    row = await cur.fetchone()
    assert row is not None and row["absent"]
    assert bad.version not in await applied_versions(conn)


def test_misnamed_migration_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("SELECT 1;")
    (tmp_path / "2-bad.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        load_migrations(tmp_path)
