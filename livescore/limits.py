"""Bounds on what a write may store, so every stored change can be published.

One change that cannot be encoded used to stop the relay for every match
(issue 10): a commentary ``metadata`` nested 252 levels deep passed the API,
then broke orjson's 255-level limit once wrapped in the change message. These
bounds are checked where input arrives (API bodies, CLI options, the write
path itself), each with an error naming the limit. Plain functions over plain
data; nothing here does I/O.
"""

from __future__ import annotations

from typing import Any

#: Nesting levels allowed in free-form JSON such as commentary ``metadata``
#: (an object holding a scalar is depth 1).
MAX_JSON_DEPTH = 16
#: Encoded size of commentary ``metadata``, in bytes.
MAX_METADATA_BYTES = 16 * 1024
#: Characters in a commentary message.
MAX_MESSAGE_CHARS = 2000
#: Characters in an override's ``--reason``.
MAX_REASON_CHARS = 500
#: Characters in a commentary event kind as a client sent it (``eventType``, kept
#: as ``originalType`` when it is not one of ours).
MAX_EVENT_KIND_CHARS = 64
#: Tags on one commentary event, and characters in one tag.
MAX_TAGS = 20
MAX_TAG_CHARS = 50
#: Characters in a name: teams, competitions, actors, who made an override.
MAX_NAME_CHARS = 200
#: Encoded size of one change message (the relay's frame), in bytes.
MAX_CHANGE_BYTES = 64 * 1024
#: Bytes of a webhook receiver's answer that are read (the rest is left unread:
#: only the status counts, and a short prefix is kept for ``webhooks deliveries``).
MAX_WEBHOOK_RESPONSE_BYTES = 64 * 1024


class LimitExceeded(ValueError):
    """A value is over one of the limits above; the message names it."""


def json_depth(value: Any) -> int:
    """Nesting depth of a JSON value (scalars 0, ``{}``/``[]`` 1); iterative, so
    a hostile value cannot exhaust the interpreter's stack."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            deepest = max(deepest, depth)
            continue
        deepest = max(deepest, depth + 1)
        if depth + 1 > MAX_JSON_DEPTH * 4:  # far past any limit: stop walking
            return depth + 1
        stack.extend((child, depth + 1) for child in children)
    return deepest


def check_json_depth(value: Any, what: str, *, limit: int = MAX_JSON_DEPTH) -> None:
    depth = json_depth(value)
    if depth > limit:
        raise LimitExceeded(
            f"{what} is nested {depth} levels deep; at most {limit} levels are accepted"
        )


def check_text(value: str, what: str, *, limit: int) -> None:
    if len(value) > limit:
        raise LimitExceeded(f"{what} is {len(value)} characters long; at most {limit} allowed")
