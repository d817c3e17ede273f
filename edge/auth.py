"""Write access: ``Authorization: Bearer <api key>`` (keys from ``livescore apikey create``).

No header, or one that is not ``Bearer <token>``: 401 with WWW-Authenticate
(the client did not authenticate). A well-formed key that is unknown or
revoked: 403 (it authenticated, as nobody allowed). Each says what to do.
An accepted key then spends a token of its own rate limit.
"""

from __future__ import annotations

from sanic import Request

from edge.errors import Forbidden, RateLimited, Unauthorized
from edge.state import state
from store.apikeys import ApiKey, find_key

_CHALLENGE = 'Bearer realm="livescore"'


async def require_api_key(request: Request) -> ApiKey:
    header = request.headers.get("authorization")
    if header is None or not header.strip():
        raise Unauthorized(
            "this route needs an API key: send 'Authorization: Bearer <key>' "
            "(an operator makes keys with `livescore apikey create NAME`)",
            code="missing_api_key",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token or len(token) > 512:
        raise Unauthorized(
            "malformed Authorization header; send 'Authorization: Bearer <key>'",
            code="malformed_authorization",
            headers={"WWW-Authenticate": _CHALLENGE + ', error="invalid_request"'},
        )
    edge = state(request)
    async with edge.db() as conn:
        key = await find_key(conn, token)
    if key is None:
        raise Forbidden(
            "this API key is not known here; check it, or ask an operator for a key",
            code="unknown_api_key",
        )
    if key.revoked:
        raise Forbidden(
            f"API key {key.name!r} ({key.prefix}...) was revoked; ask an operator for a new key",
            code="revoked_api_key",
        )
    decision = await edge.limiter.check("key", str(key.id))
    if not decision.allowed:
        raise RateLimited(
            f"rate limit of API key {key.name!r} reached; retry in {decision.retry_after}s",
            headers={"Retry-After": str(decision.retry_after)},
            details={"scope": "key", "retryAfter": decision.retry_after},
        )
    return key
