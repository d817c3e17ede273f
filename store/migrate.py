"""Numbered, forward-only SQL migrations.

Files ``store/migrations/NNNN_name.sql`` run in number order, each in its own
transaction, and are recorded in ``schema_migrations`` with a checksum. A
second run changes nothing; a recorded file whose text changed is refused
(forward-only: write a new migration instead). An advisory lock serializes
concurrent migrators.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from livescore.errors import MigrationError
from store.db import Conn

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_ID = 0x4C495645  # "LIVE"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """Every migration file, in version order; refuses gaps and odd names."""
    root = directory or Path(str(resources.files("store") / "migrations"))
    found: list[Migration] = []
    for path in sorted(root.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path.read_text()))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"migration {migration.version:04d}_{migration.name} is out of sequence; "
                f"expected {expected:04d}"
            )
    return found


async def migrate(conn: Conn, migrations: list[Migration] | None = None) -> list[Migration]:
    """Apply every pending migration; return those applied (empty: nothing to do)."""
    migrations = load_migrations() if migrations is None else migrations
    applied: list[Migration] = []
    await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        cur = await conn.execute("SELECT version, name, checksum FROM schema_migrations")
        done = {row["version"]: row for row in await cur.fetchall()}
        for migration in migrations:
            recorded = done.get(migration.version)
            if recorded is not None:
                if recorded["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} changed after it "
                        "was applied; migrations are forward-only: add a new file instead"
                    )
                continue
            try:
                async with conn.transaction():
                    await conn.execute(migration.sql.encode())
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) "
                        "VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
            except Exception as exc:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} failed: {exc}"
                ) from exc
            applied.append(migration)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return applied


async def applied_versions(conn: Conn) -> list[int]:
    cur = await conn.execute(
        "SELECT version FROM schema_migrations ORDER BY version"
        if await _has_table(conn)
        else "SELECT NULL::int AS version WHERE false"
    )
    return [row["version"] for row in await cur.fetchall()]


async def _has_table(conn: Conn) -> bool:
    cur = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AS present")
    row = await cur.fetchone()
    return bool(row and row["present"])
