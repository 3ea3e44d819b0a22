"""The Schema Registry frame: told apart from JSON by its first byte, stripped only when the
setting accepts it, and otherwise refused with a reason that names the setting."""

import orjson
import pytest

from streams.core.framing import FRAME_BYTES, frame, schema_id, unframe
from streams.errors import InvalidEvent

JSON = orjson.dumps({"message_id": "m1", "user_id": "u1"})
FRAMED = b"\x00\x00\x00\x01\x2a" + JSON  # schema id 298


def test_the_frame_is_the_magic_byte_and_a_big_endian_schema_id() -> None:
    assert frame(JSON, 298) == FRAMED
    assert schema_id(FRAMED) == 298
    assert schema_id(frame(JSON, 2**32 - 1)) == 2**32 - 1
    assert len(FRAMED) - len(JSON) == FRAME_BYTES


@pytest.mark.parametrize(
    "value",
    [JSON, b" {}", b"", b"\x00\x00\x01", b"\x01\x00\x00\x00\x07{}", "é".encode()],
    ids=["json", "leading-space", "empty", "too-short", "other-magic", "utf8"],
)
def test_a_value_without_the_frame_has_no_schema_id(value: bytes) -> None:
    assert schema_id(value) is None


@pytest.mark.parametrize("framing", ["confluent", "auto"])
def test_an_accepting_setting_strips_the_frame(framing: str) -> None:
    assert unframe(FRAMED, framing, "chat message") == JSON  # type: ignore[arg-type]


@pytest.mark.parametrize("framing", ["none", "auto"])
def test_plain_json_passes_unless_the_frame_is_required(framing: str) -> None:
    assert unframe(JSON, framing, "chat message") == JSON  # type: ignore[arg-type]


def test_by_default_a_framed_value_is_refused_naming_the_setting_and_the_schema() -> None:
    with pytest.raises(InvalidEvent) as info:
        unframe(FRAMED, "none", "chat message")
    assert info.value.code == "not_json"
    reason = info.value.reason
    assert "Schema Registry frame" in reason and "schema id 298" in reason
    assert "PROFILE_STREAM_INPUT_FRAMING=auto" in reason
    assert "u1" not in reason  # never the content


def test_a_required_frame_that_is_missing_is_refused_naming_the_setting() -> None:
    with pytest.raises(InvalidEvent) as info:
        unframe(JSON, "confluent", "chat message")
    assert info.value.code == "invalid_message"
    assert "PROFILE_STREAM_INPUT_FRAMING=confluent requires" in info.value.reason
    assert "PROFILE_STREAM_INPUT_FRAMING=auto" in info.value.reason
