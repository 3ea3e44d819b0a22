"""Where a re-routed or forwarded copy of a chat message first came from. Pure.

Admission re-publishes a message read on the wrong partition (a re-route) and hands a chat
message to other kinds' topics (a forward). Both are sent at admission, ahead of the commit, so
after a crash the same input is sent again, as a copy with a new offset. Each copy carries the
input's topic, partition and offset in the header :data:`ORIGIN_HEADER`; the lane that applies
copies remembers the last original offset it applied per original partition, next to its own
offsets, and skips a second copy of one already applied (as the user lane skips a redelivered
offset), however many other messages came in between.

Trust. Anyone who may produce chat messages could set that header, and one forged origin with a
huge offset would make the lane skip every later copy from that partition, unapplied and
unnoticed. So a worker seals the origin it writes: the header :data:`SEAL_HEADER` holds an
HMAC-SHA256, under the first of ``PROFILE_STREAM_COMMAND_KEYS``, of the deployment
(``PROFILE_STREAM_COMMAND_AUDIENCE``), the origin, and the copy's key and value. An origin whose
seal does not verify under one of the keys (absent, forged, moved to another message, or a
worker without keys) is ignored: the record is then a message of its own, which the recent
message ids still catch when it is sent twice. Only workers hold the keys; a producer can copy
a sealed header only together with the very message it was made for, which is then a copy of
that original indeed.

A copy of a copy (a re-routed message forwarded to a kind) names the copy it was made from,
not the first original: the kind's copies from one partition then arrive in that partition's
offset order, which the "last applied offset" check needs (a first origin reached through a
slower re-route could arrive after later offsets of its partition and be skipped unapplied).
"""

import hmac
from typing import Any

from streams.core.records import rerouted_key
from streams.core.signing import CommandSigning, sealed

__all__ = ["ORIGIN_HEADER", "SEAL_HEADER", "origin_headers", "origin_of", "without_origin"]

#: Header of a re-routed or forwarded copy: ``topic:partition:offset`` of the original, ASCII.
ORIGIN_HEADER = "profile-stream-origin"
#: The worker's seal over the origin, the copy's key and value (hex HMAC-SHA256), ASCII.
SEAL_HEADER = "profile-stream-origin-seal"

_DOMAIN = b"profile-stream copy origin v1\n"


def _pairs(headers: Any) -> list[tuple[str, bytes]]:
    pairs = headers.items() if isinstance(headers, dict) else (headers or ())
    return [(name, value) for name, value in pairs]


def _only(headers: Any, name: str) -> bytes | None:
    found = [value for n, value in _pairs(headers) if n == name]
    return found[0] if len(found) == 1 and isinstance(found[0], bytes) else None


def _parse(value: bytes) -> tuple[str, int, int] | None:
    try:
        topic, partition, offset = value.decode("ascii").rsplit(":", 2)
        return topic, int(partition), int(offset)
    except (UnicodeDecodeError, ValueError):
        return None  # not ours, or mangled: the copy is treated as a message of its own


def _seals(
    signing: CommandSigning, origin: bytes, key: bytes | None, value: bytes | None
) -> list[bytes]:
    parts = (signing.audience.encode(), origin, key, value)
    return [sealed(secret, _DOMAIN, parts).encode("ascii") for secret in signing.keys]


def origin_of(
    headers: Any, key: bytes | None, value: bytes | None, signing: CommandSigning
) -> tuple[str, int] | None:
    """The ``applied`` key and offset of the original of a copy; None for an original, and for
    a record whose origin no worker of this deployment sealed."""
    origin, seal = _only(headers, ORIGIN_HEADER), _only(headers, SEAL_HEADER)
    if origin is None or seal is None:
        return None
    valid = [hmac.compare_digest(seal, s) for s in _seals(signing, origin, key, value)]
    parsed = _parse(origin) if any(valid) else None
    if parsed is None:
        return None
    topic, partition, offset = parsed
    return rerouted_key(topic, partition), offset


def origin_headers(
    topic: str,
    partition: int,
    offset: int,
    *,
    key: bytes | None,
    value: bytes | None,
    signing: CommandSigning,
) -> list[tuple[str, bytes]]:
    """The headers of a copy (``key``, ``value``) of the input at ``topic``/``partition``/
    ``offset``: the origin, sealed with the first key (unsealed without keys: then ignored)."""
    origin = f"{topic}:{partition}:{offset}".encode("ascii")
    if not signing.keys:
        return [(ORIGIN_HEADER, origin)]
    return [(ORIGIN_HEADER, origin), (SEAL_HEADER, _seals(signing, origin, key, value)[0])]


def without_origin(headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """``headers`` without the origin: a dead letter replayed is a new input, not a copy."""
    return [(name, value) for name, value in headers if name not in (ORIGIN_HEADER, SEAL_HEADER)]
