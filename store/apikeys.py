"""API keys for writers: made by the CLI, stored hashed, checked by the edge.

A key is ``lsk_`` + 43 url-safe characters, shown once at creation. Only its
SHA-256 (hex) and a short display prefix are stored, so a leaked database
does not leak usable keys. Keys are never deleted, only revoked, so the
name stays taken and an audit can still say which key wrote what.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import psycopg

from livescore import clock
from livescore.errors import Conflict, InvalidChange, NotFound
from store.db import Conn

KEY_PREFIX = "lsk_"
#: Characters of the plain key kept in clear, to tell keys apart in listings.
DISPLAY_CHARS = 10
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key: its record and the plain key, which is never available again."""

    key: ApiKey
    plain: str


def hash_key(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def _row_key(row: dict[str, object]) -> ApiKey:
    created, revoked = row["created_at"], row["revoked_at"]
    assert isinstance(created, datetime)
    assert revoked is None or isinstance(revoked, datetime)
    return ApiKey(
        id=int(row["id"]),  # type: ignore[call-overload]
        name=str(row["name"]),
        prefix=str(row["prefix"]),
        created_at=created,
        revoked_at=revoked,
    )


async def create_key(conn: Conn, name: str) -> CreatedKey:
    """Make a key called ``name``; raises ``Conflict`` if the name is taken."""
    if not _NAME.fullmatch(name):
        raise InvalidChange(
            f"API key name {name!r} must be 1-64 letters, digits or _.- "
            "and start with a letter or digit"
        )
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    try:
        cur = await conn.execute(
            """INSERT INTO api_keys (name, key_hash, prefix) VALUES (%s, %s, %s)
               RETURNING id, name, prefix, created_at, revoked_at""",
            (name, hash_key(plain), plain[:DISPLAY_CHARS]),
        )
    except psycopg.errors.UniqueViolation as exc:
        raise Conflict(
            f"an API key named {name!r} already exists (revoked keys keep their name); "
            "choose another name"
        ) from exc
    row = await cur.fetchone()
    assert row is not None
    return CreatedKey(_row_key(row), plain)


async def revoke_key(conn: Conn, name: str) -> ApiKey:
    """Revoke the key called ``name`` (revoking twice keeps the first time)."""
    cur = await conn.execute(
        """UPDATE api_keys SET revoked_at = COALESCE(revoked_at, %s) WHERE name = %s
           RETURNING id, name, prefix, created_at, revoked_at""",
        (clock.now(), name),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound("API key", name)
    return _row_key(row)


async def find_key(conn: Conn, plain: str) -> ApiKey | None:
    """The key whose plain text is ``plain`` (revoked or not); None if unknown."""
    cur = await conn.execute(
        "SELECT id, name, prefix, created_at, revoked_at FROM api_keys WHERE key_hash = %s",
        (hash_key(plain),),
    )
    row = await cur.fetchone()
    return _row_key(row) if row is not None else None


async def list_keys(conn: Conn) -> list[ApiKey]:
    cur = await conn.execute(
        "SELECT id, name, prefix, created_at, revoked_at FROM api_keys ORDER BY name"
    )
    return [_row_key(row) for row in await cur.fetchall()]
