"""Where a re-routed or forwarded copy of a chat message first came from. Pure.

Admission re-publishes a message read on the wrong partition (a re-route) and hands a chat
message to other kinds' topics (a forward). Both are sent at admission, ahead of the commit, so
after a crash the same input is sent again, as a copy with a new offset. Each copy carries the
input's topic, partition and offset in the header :data:`ORIGIN_HEADER`; the lane that applies
copies remembers the last original offset it applied per original partition, next to its own
offsets, and skips a second copy of one already applied (as the user lane skips a redelivered
offset), however many other messages came in between.

A copy of a copy (a re-routed message forwarded to a kind) names the copy it was made from,
not the first original: the kind's copies from one partition then arrive in that partition's
offset order, which the "last applied offset" check needs (a first origin reached through a
slower re-route could arrive after later offsets of its partition and be skipped unapplied).
"""

from typing import Any

from streams.core.records import rerouted_key

__all__ = ["ORIGIN_HEADER", "origin_headers", "origin_of", "without_origin"]

#: Header of a re-routed or forwarded copy: ``topic:partition:offset`` of the original, ASCII.
ORIGIN_HEADER = "profile-stream-origin"


def _pairs(headers: Any) -> list[tuple[str, bytes]]:
    pairs = headers.items() if isinstance(headers, dict) else (headers or ())
    return [(name, value) for name, value in pairs]


def _parse(value: bytes) -> tuple[str, int, int] | None:
    try:
        topic, partition, offset = value.decode("ascii").rsplit(":", 2)
        return topic, int(partition), int(offset)
    except (UnicodeDecodeError, ValueError):
        return None  # not ours, or mangled: the copy is treated as a message of its own


def origin_of(headers: Any) -> tuple[str, int] | None:
    """The ``applied`` key and offset of the original of a copy; None for an original."""
    for name, value in _pairs(headers):
        if name == ORIGIN_HEADER and (origin := _parse(value)) is not None:
            topic, partition, offset = origin
            return rerouted_key(topic, partition), offset
    return None


def origin_headers(topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    """The headers of a copy of the input at ``topic``/``partition``/``offset``."""
    return [(ORIGIN_HEADER, f"{topic}:{partition}:{offset}".encode("ascii"))]


def without_origin(headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """``headers`` without the origin: a dead letter replayed is a new input, not a copy."""
    return [(name, value) for name, value in headers if name != ORIGIN_HEADER]
