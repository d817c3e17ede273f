"""Webhook endpoints and their deliveries (every webhook SQL statement).

A delivery is one message for one endpoint: a change (``match_id``, ``seq``)
or a ``webhooks test`` message. Pending deliveries of one endpoint and match
go out in seq order: only the lowest pending seq (the match's *head*) is ever
due, so a failing delivery holds the later ones of its match for its endpoint,
never another match's or another endpoint's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from livescore.errors import Conflict, InvalidChange, NotFound
from livescore.webhooks import Endpoint
from store.db import Conn

_ENDPOINT_COLUMNS = (
    "id, name, url, events, match_ids, competition_ids, secret_env, enabled, disabled_reason"
)

_DELIVERY_COLUMNS = (
    "d.id, d.endpoint_id, e.name AS endpoint, d.message_id, d.type, d.match_id, d.seq, "
    "d.state, d.attempts, d.next_attempt_at, d.last_attempt_at, d.last_status, d.last_error, "
    "d.delivered_at, d.dead_at, d.created_at"
)


def _endpoint(row: dict[str, Any]) -> Endpoint:
    return Endpoint(
        id=int(row["id"]),
        name=row["name"],
        url=row["url"],
        events=tuple(row["events"]),
        match_ids=tuple(int(i) for i in row["match_ids"]),
        competition_ids=tuple(int(i) for i in row["competition_ids"]),
        secret_env=row["secret_env"],
        enabled=bool(row["enabled"]),
        disabled_reason=row["disabled_reason"],
    )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery as stored; ``body`` and ``age_s`` only when read to be sent."""

    id: int
    endpoint_id: int
    endpoint: str
    message_id: str
    type: str
    match_id: int | None
    seq: int | None
    state: str
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    dead_at: datetime | None
    created_at: datetime
    body: bytes | None = None
    #: seconds since the delivery's schedule began (creation or redelivery)
    age_s: float = 0.0


@dataclass(frozen=True, slots=True)
class NewDelivery:
    endpoint_id: int
    message_id: str
    type: str
    match_id: int
    seq: int
    body: bytes


@dataclass(frozen=True, slots=True)
class EndpointCounts:
    endpoint: Endpoint
    pending: int
    delivered: int
    dead: int


# -- endpoints --------------------------------------------------------------------------


async def add_endpoint(conn: Conn, endpoint: Endpoint) -> Endpoint:
    try:
        await conn.execute(
            "INSERT INTO webhook_endpoints "
            "(name, url, events, match_ids, competition_ids, secret_env, enabled) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                endpoint.name, endpoint.url, list(endpoint.events), list(endpoint.match_ids),
                list(endpoint.competition_ids), endpoint.secret_env, endpoint.enabled,
            ),
        )  # fmt: skip
    except psycopg.errors.UniqueViolation as exc:
        raise Conflict(
            f"a webhook named {endpoint.name!r} exists; pick another name "
            "(or `livescore webhooks remove` it first)"
        ) from exc
    except psycopg.errors.CheckViolation as exc:
        raise InvalidChange(
            f"webhook {endpoint.name!r} is invalid: {exc.diag.message_primary}"
        ) from exc
    return await get_endpoint(conn, endpoint.name)


async def get_endpoint(conn: Conn, name: str) -> Endpoint:
    cur = await conn.execute(
        f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE name = %s", (name,)
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound("webhook", name)
    return _endpoint(row)


async def get_endpoint_by_id(conn: Conn, endpoint_id: int) -> Endpoint | None:
    cur = await conn.execute(
        f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = %s", (endpoint_id,)
    )
    row = await cur.fetchone()
    return _endpoint(row) if row is not None else None


async def enabled_endpoints(conn: Conn) -> list[Endpoint]:
    cur = await conn.execute(
        f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE enabled ORDER BY id"
    )
    return [_endpoint(row) for row in await cur.fetchall()]


async def list_endpoints(conn: Conn) -> list[EndpointCounts]:
    cur = await conn.execute(
        f"""SELECT {", ".join("e." + c for c in _ENDPOINT_COLUMNS.split(", "))},
                   count(d.id) FILTER (WHERE d.state = 'pending') AS pending,
                   count(d.id) FILTER (WHERE d.state = 'delivered') AS delivered,
                   count(d.id) FILTER (WHERE d.state = 'dead') AS dead
              FROM webhook_endpoints e LEFT JOIN webhook_deliveries d ON d.endpoint_id = e.id
             GROUP BY e.id ORDER BY e.name"""
    )
    return [
        EndpointCounts(_endpoint(row), int(row["pending"]), int(row["delivered"]), int(row["dead"]))
        for row in await cur.fetchall()
    ]


async def set_enabled(
    conn: Conn, name: str, enabled: bool, *, reason: str | None = None
) -> Endpoint:
    cur = await conn.execute(
        "UPDATE webhook_endpoints SET enabled = %s, disabled_reason = %s, updated_at = now() "
        "WHERE name = %s RETURNING name",
        (enabled, None if enabled else reason, name),
    )
    if await cur.fetchone() is None:
        raise NotFound("webhook", name)
    return await get_endpoint(conn, name)


async def remove_endpoint(conn: Conn, name: str) -> int:
    """Delete endpoint ``name`` and its deliveries; how many deliveries went with it."""
    cur = await conn.execute(
        "WITH gone AS (DELETE FROM webhook_endpoints WHERE name = %s RETURNING id) "
        "SELECT (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = gone.id) AS n "
        "FROM gone",
        (name,),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound("webhook", name)
    return int(row["n"])


# -- creating deliveries ----------------------------------------------------------------


async def competitions_of(conn: Conn, match_ids: list[int]) -> dict[int, int | None]:
    cur = await conn.execute(
        "SELECT id, competition_id FROM matches WHERE id = ANY(%s)", (match_ids,)
    )
    return {int(row["id"]): row["competition_id"] for row in await cur.fetchall()}


async def insert_deliveries(conn: Conn, rows: list[NewDelivery]) -> int:
    """Add pending deliveries (a change already delivered to an endpoint is not
    added twice); how many were added. Endpoints removed meanwhile are skipped."""
    if not rows:
        return 0
    cur = await conn.execute(
        """INSERT INTO webhook_deliveries (endpoint_id, message_id, type, match_id, seq, body)
           SELECT x.endpoint_id, x.message_id, x.type, x.match_id, x.seq, x.body
             FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bigint[], %s::bigint[],
                         %s::bytea[]) AS x(endpoint_id, message_id, type, match_id, seq, body)
             JOIN webhook_endpoints e ON e.id = x.endpoint_id
            ORDER BY x.match_id, x.seq, x.endpoint_id
           ON CONFLICT (endpoint_id, message_id) DO NOTHING""",
        (
            [r.endpoint_id for r in rows], [r.message_id for r in rows], [r.type for r in rows],
            [r.match_id for r in rows], [r.seq for r in rows], [r.body for r in rows],
        ),
    )  # fmt: skip
    return cur.rowcount


async def add_test_delivery(conn: Conn, endpoint_id: int, message_id: str, body: bytes) -> int:
    cur = await conn.execute(
        "INSERT INTO webhook_deliveries (endpoint_id, message_id, type, body) "
        "VALUES (%s, %s, 'webhook:test', %s) RETURNING id",
        (endpoint_id, message_id, body),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["id"])


# -- sending ----------------------------------------------------------------------------

#: Each pending delivery that heads its endpoint and match (a test message heads
#: itself), with the group's key.
_HEADS = """
    SELECT DISTINCT ON (d.endpoint_id, coalesce(d.match_id, -d.id)) d.*
      FROM webhook_deliveries d
     WHERE d.state = 'pending' {where}
     ORDER BY d.endpoint_id, coalesce(d.match_id, -d.id), d.seq, d.id
"""


async def endpoints_due(conn: Conn) -> list[int]:
    """Enabled endpoints with at least one delivery due now."""
    cur = await conn.execute(
        f"""SELECT DISTINCT h.endpoint_id FROM ({_HEADS.format(where="")}) h
              JOIN webhook_endpoints e ON e.id = h.endpoint_id AND e.enabled
             WHERE h.next_attempt_at <= now()
             ORDER BY h.endpoint_id"""
    )
    return [int(row["endpoint_id"]) for row in await cur.fetchall()]


async def due_heads(conn: Conn, endpoint_id: int, *, limit: int) -> list[Delivery]:
    """Up to ``limit`` deliveries of an enabled endpoint due now, at most one per
    match (its lowest pending seq), oldest first, with their bodies."""
    cur = await conn.execute(
        f"""SELECT {_DELIVERY_COLUMNS}, d.body,
                   extract(epoch FROM now() - d.scheduled_from)::float8 AS age_s
              FROM ({_HEADS.format(where="AND d.endpoint_id = %s")}) d
              JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.enabled
             WHERE d.next_attempt_at <= now()
             ORDER BY d.next_attempt_at, d.id
             LIMIT %s""",
        (endpoint_id, limit),
    )
    return [_delivery(row) for row in await cur.fetchall()]


def _delivery(row: dict[str, Any]) -> Delivery:
    return Delivery(
        id=int(row["id"]),
        endpoint_id=int(row["endpoint_id"]),
        endpoint=row["endpoint"],
        message_id=row["message_id"],
        type=row["type"],
        match_id=row["match_id"],
        seq=row["seq"],
        state=row["state"],
        attempts=int(row["attempts"]),
        next_attempt_at=row["next_attempt_at"],
        last_attempt_at=row["last_attempt_at"],
        last_status=row["last_status"],
        last_error=row["last_error"],
        delivered_at=row["delivered_at"],
        dead_at=row["dead_at"],
        created_at=row["created_at"],
        body=bytes(row["body"]) if row.get("body") is not None else None,
        age_s=float(row.get("age_s") or 0.0),
    )


async def record_delivered(conn: Conn, delivery_id: int, status: int, detail: str) -> None:
    await conn.execute(
        """UPDATE webhook_deliveries
              SET state = 'delivered', attempts = attempts + 1, last_attempt_at = now(),
                  delivered_at = now(), last_status = %s, last_error = %s
            WHERE id = %s AND state = 'pending'""",
        (status, detail[:500] or None, delivery_id),
    )


async def record_failed(
    conn: Conn, delivery_id: int, status: int | None, error: str, retry_at_s: float | None
) -> None:
    """One failed attempt: due again ``retry_at_s`` seconds into its schedule, or
    dead-lettered (``None``)."""
    await conn.execute(
        """UPDATE webhook_deliveries
              SET attempts = attempts + 1, last_attempt_at = now(), last_status = %s,
                  last_error = %s,
                  state = CASE WHEN %s::float8 IS NULL THEN 'dead' ELSE 'pending' END,
                  dead_at = CASE WHEN %s::float8 IS NULL THEN now() END,
                  next_attempt_at = CASE WHEN %s::float8 IS NULL THEN next_attempt_at
                      ELSE greatest(now(), scheduled_from + make_interval(secs => %s::float8))
                  END
            WHERE id = %s AND state = 'pending'""",
        (status, error[:500], retry_at_s, retry_at_s, retry_at_s, retry_at_s, delivery_id),
    )


async def record_gone(conn: Conn, delivery_id: int, endpoint_id: int, reason: str) -> None:
    """The receiver answered 410 Gone: the attempt counts, the delivery stays pending
    (sent again once the endpoint is enabled) and the endpoint is disabled."""
    await conn.execute(
        """UPDATE webhook_deliveries
              SET attempts = attempts + 1, last_attempt_at = now(), last_status = 410,
                  last_error = %s
            WHERE id = %s AND state = 'pending'""",
        (reason[:500], delivery_id),
    )
    await conn.execute(
        "UPDATE webhook_endpoints SET enabled = false, disabled_reason = %s, updated_at = now() "
        "WHERE id = %s AND enabled",
        (reason[:500], endpoint_id),
    )


# -- operators --------------------------------------------------------------------------


async def list_deliveries(
    conn: Conn, name: str, *, failed_only: bool = False, limit: int = 50
) -> list[Delivery]:
    """The endpoint's deliveries, newest first (``failed_only``: dead-lettered ones)."""
    endpoint = await get_endpoint(conn, name)
    cur = await conn.execute(
        f"""SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries d
              JOIN webhook_endpoints e ON e.id = d.endpoint_id
             WHERE d.endpoint_id = %s AND (NOT %s OR d.state = 'dead')
             ORDER BY d.id DESC LIMIT %s""",
        (endpoint.id, failed_only, limit),
    )
    return [_delivery(row) for row in await cur.fetchall()]


async def get_delivery(conn: Conn, delivery_id: int) -> Delivery:
    cur = await conn.execute(
        f"""SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries d
              JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.id = %s""",
        (delivery_id,),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound("delivery", delivery_id)
    return _delivery(row)


async def redeliver(conn: Conn, delivery_id: int) -> Delivery:
    """Send a delivered or dead-lettered delivery again, same webhook-id and body,
    with a fresh retry schedule. A pending one is refused (it is on its way)."""
    current = await get_delivery(conn, delivery_id)
    if current.state == "pending":
        raise Conflict(
            f"delivery {delivery_id} is still pending (attempt {current.attempts + 1} due "
            f"{current.next_attempt_at.isoformat()}); it needs no redelivery"
        )
    await conn.execute(
        """UPDATE webhook_deliveries
              SET state = 'pending', attempts = 0, scheduled_from = now(),
                  next_attempt_at = now(), delivered_at = NULL, dead_at = NULL
            WHERE id = %s""",
        (delivery_id,),
    )
    return await get_delivery(conn, delivery_id)


async def prune(conn: Conn, *, delivered_days: int, dead_days: int) -> int:
    """Forget delivered deliveries after ``delivered_days`` and dead-lettered ones
    after ``dead_days``; how many were deleted."""
    cur = await conn.execute(
        """DELETE FROM webhook_deliveries
            WHERE (state = 'delivered' AND delivered_at < now() - make_interval(days => %s))
               OR (state = 'dead' AND dead_at < now() - make_interval(days => %s))""",
        (delivered_days, dead_days),
    )
    return cur.rowcount
