"""The one bridge between bytes on Kafka and the pydantic contracts (pydantic's own JSON).

Decoding never raises anything but :class:`InvalidEvent`, whose code and reason go to the
dead-letter topic as they are.
"""

import base64
import hashlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from schemas import (
    ChatMessage,
    DeadLetter,
    DeadLetterReason,
    ProfileCommand,
    ProfileEvent,
    ProfileRecord,
    RecordHeader,
)
from streams.core import stored
from streams.core.framing import Framing, schema_id, unframe
from streams.errors import InvalidEvent

__all__ = [
    "COMMAND_HEADER",
    "dead_letter_record",
    "is_command",
    "decode_command",
    "decode_event",
    "decode_message",
    "decode_record",
    "encode",
    "summarize_errors",
]

_M = TypeVar("_M", bound=BaseModel)

#: Marks an operator command on the input topic; chat messages carry no such header.
COMMAND_HEADER = ("profile-stream-type", b"command")


def is_command(headers: Any) -> bool:
    """Whether a record's headers (Faust gives a list of pairs or a mapping) mark a command."""
    return any(pair == COMMAND_HEADER for pair in _header_pairs(headers))


def _header_pairs(headers: Any) -> Iterator[tuple[str, bytes]]:
    pairs = headers.items() if isinstance(headers, dict) else (headers or ())
    return ((name, value) for name, value in pairs)


def encode(model: BaseModel) -> bytes:
    """A contract as compact JSON bytes, with its public field names.

    Straight from pydantic's serializer to bytes: the same bytes as ``orjson.dumps`` of
    ``model_dump(mode="json")`` (tests/unit/streams/core/test_codecs.py), without building the
    dicts in between, at 1/8 of the CPU for a small record and 2/3 for a 32 KB one.
    """
    return type(model).__pydantic_serializer__.to_json(model, by_alias=True)


def summarize_errors(exc: ValidationError, limit: int = 3) -> str:
    """Pydantic's errors as one short line, ``field: problem; ...``, without echoing input."""
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
        for err in exc.errors(include_input=False)[:limit]
    ]
    more = exc.error_count() - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def _decode(model: type[_M], value: bytes | None, what: str) -> _M:
    if value is None:
        raise InvalidEvent("invalid_message", f"{what} has no value (a tombstone?)")
    try:
        return model.model_validate_json(value)
    except ValidationError as exc:
        if exc.errors()[0]["type"] != "json_invalid":
            raise InvalidEvent("invalid_message", f"{what}: {summarize_errors(exc)}") from None
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent("not_utf8", f"{what} is not UTF-8 ({exc.reason})") from None
    raise InvalidEvent("not_json", f"{what} is not valid JSON")


def decode_message(
    value: bytes | None, *, max_content_chars: int, framing: Framing = "none"
) -> ChatMessage:
    """A chat message from the input topic, or :class:`InvalidEvent` saying what is wrong.

    ``framing`` says whether a Schema Registry frame before the JSON is refused, required or
    stripped when present (:mod:`streams.core.framing`).
    """
    what = "chat message"
    if value is not None:
        found = schema_id(value)
        value = unframe(value, framing, what)
        if found is not None:
            what = f"chat message (after its Schema Registry frame, schema id {found})"
    message = _decode(ChatMessage, value, what)
    if len(message.content) > max_content_chars:
        raise InvalidEvent(
            "content_too_long",
            f"content has {len(message.content)} characters, over the limit of "
            f"{max_content_chars} (PROFILE_STREAM_MAX_CONTENT_CHARS); split the message",
            user_id=message.user_id,
        )
    return message


def decode_command(value: bytes | None) -> ProfileCommand:
    """An operator command (a record of the input topic marked by a header)."""
    return _decode(ProfileCommand, value, "profile command")


def decode_event(value: bytes) -> ProfileEvent:
    """A profile event, read tolerantly: fields a newer release added (as this one added the
    evidence's topic, partition and offset) are ignored, so subscribers need not upgrade first.

    Raises:
        ValidationError: not a profile event (not JSON, a field missing or mistyped).
    """
    try:
        return ProfileEvent.model_validate_json(value)
    except ValidationError as exc:
        if stored.unknown_fields(exc) is None:
            raise
    return ProfileEvent.model_validate_json(value, extra="ignore")


def decode_record(value: bytes) -> ProfileRecord:
    """A stored profile record, read tolerantly: fields written by a newer release are ignored
    (and logged once by name), see :mod:`streams.core.stored`."""
    return stored.decode_record(value)


def dead_letter_record(
    *,
    code: DeadLetterReason,
    reason: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    failed_at: datetime,
    user_id: str | None = None,
    message_id: str | None = None,
    attempts: int = 0,
    command: bool = False,
    headers: Any = None,
    max_bytes: int | None = None,
) -> bytes:
    """The dead-letter record for an input, with its raw bytes and headers so it can be
    re-published as it was.

    A letter over ``max_bytes`` (base64 makes the value a third bigger) keeps the first bytes
    of the value that fit, with the whole value's size and sha256, and is marked ``truncated``
    (its headers are left out too when even the rest does not fit): it can no longer be
    replayed, but it says what came, from where, and why it was refused.
    """
    letter = DeadLetter(
        reason_code=code,
        reason=reason,
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        key_b64=_b64(key) if key is not None else None,
        value_b64=_b64(value or b""),
        user_id=user_id,
        message_id=message_id,
        failed_at=failed_at,
        attempts=attempts,
        command=command,
        headers=[RecordHeader(name=name, value_b64=_b64(v)) for name, v in _header_pairs(headers)],
    )
    whole = encode(letter)
    if max_bytes is None or len(whole) <= max_bytes:
        return whole
    return _truncated(letter, value or b"", max_bytes)


def _b64(raw: bytes | None) -> str:
    return base64.b64encode(raw or b"").decode()


def _truncated(letter: DeadLetter, value: bytes, max_bytes: int) -> bytes:
    """``letter`` with as much of ``value`` as keeps it within ``max_bytes``."""
    empty = letter.model_copy(
        update={
            "value_b64": "",
            "truncated": True,
            "original_size": len(value),
            "original_sha256": hashlib.sha256(value).hexdigest(),
        }
    )
    room = max_bytes - len(encode(empty))
    if room < 0:
        empty = empty.model_copy(update={"headers": []})
        room = max_bytes - len(encode(empty))
    # Base64 needs 4 characters for 3 bytes; JSON adds nothing to them.
    kept = value[: max(room, 0) // 4 * 3]
    return encode(empty.model_copy(update={"value_b64": _b64(kept)}))
