"""The Confluent Schema Registry wire format around a JSON value (``PROFILE_STREAM_INPUT_FRAMING``).

A producer using a Schema Registry serializer (Confluent's ``KafkaJsonSchemaSerializer``, its
Go, .NET and Python counterparts) writes a magic byte 0 and the schema's id as 4 bytes, big
endian, before the JSON. UTF-8 JSON never starts with a zero byte, so the frame is told apart
from a plain value by its first byte alone. The worker does not ask the registry about the id:
the JSON after the frame is checked against the contract as any other value is.
"""

from typing import Literal

from streams.errors import InvalidEvent

__all__ = ["FRAME_BYTES", "Framing", "frame", "schema_id", "unframe"]

Framing = Literal["none", "confluent", "auto"]

#: The magic byte and the 4-byte schema id.
FRAME_BYTES = 5
_MAGIC = 0
_VARIABLE = "PROFILE_STREAM_INPUT_FRAMING"


def schema_id(value: bytes) -> int | None:
    """The schema id of a framed value, or None when ``value`` does not start with a frame."""
    if len(value) < FRAME_BYTES or value[0] != _MAGIC:
        return None
    return int.from_bytes(value[1:FRAME_BYTES], "big")


def frame(value: bytes, schema: int) -> bytes:
    """``value`` as a Schema Registry serializer writes it with schema id ``schema``."""
    return bytes([_MAGIC]) + schema.to_bytes(4, "big") + value


def unframe(value: bytes, framing: Framing, what: str) -> bytes:
    """The JSON of ``value``: without its frame when ``framing`` accepts one.

    Raises:
        InvalidEvent: ``not_json`` for a framed value that ``none`` refuses, naming the setting;
            ``invalid_message`` for a plain value that ``confluent`` refuses.
    """
    found = schema_id(value)
    if found is None:
        if framing == "confluent":
            raise InvalidEvent(
                "invalid_message",
                f"{what} has no Schema Registry frame (magic byte 0 and a 4-byte schema id), "
                f"which {_VARIABLE}=confluent requires; set {_VARIABLE}=auto to accept "
                "plain JSON too",
            )
        return value
    if framing == "none":
        raise InvalidEvent(
            "not_json",
            f"{what} starts with a Confluent Schema Registry frame (magic byte 0, schema id "
            f"{found}), not JSON; set {_VARIABLE}=auto (or confluent) to accept it",
        )
    return value[FRAME_BYTES:]
