"""Bytes in, contracts out: every bad input becomes an InvalidEvent with a code and a reason."""

import base64
import hashlib
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from schemas import DeadLetter, PatchOperation, Provenance
from streams.core.codecs import (
    dead_letter_record,
    decode_command,
    decode_event,
    decode_message,
    decode_record,
    encode,
    is_command,
)
from streams.core.framing import frame
from streams.core.merge import merge
from streams.core.profile_schema import ProfileSchema
from streams.core.records import deleted_event, new_record, next_version
from streams.errors import InvalidEvent
from tests.unit.helpers import T0, buffered_message

SECRET = "my card is 4111-1111-1111-1111"
GOOD = {
    "message_id": "m1",
    "user_id": "u1",
    "role": "user",
    "content": SECRET,
    "sent_at": "2026-01-01T12:00:00Z",
}


def _error(value: bytes | None, max_content_chars: int = 8_000) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as info:
        decode_message(value, max_content_chars=max_content_chars)
    return info.value


def _with(**change: object) -> bytes:
    return orjson.dumps(GOOD | change)


def test_a_good_message_decodes() -> None:
    message = decode_message(_with(), max_content_chars=8_000)
    assert (message.user_id, message.content) == ("u1", SECRET)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (b"\xff\xfe{not utf8", "not_utf8"),
        (_with().replace(b"card", b"c\xe9rd"), "not_utf8"),
        (SECRET.encode(), "not_json"),
        (_with()[:-5], "not_json"),
        (b"", "not_json"),
        (b"[1, 2]", "invalid_message"),
        (b"null", "invalid_message"),
        (None, "invalid_message"),
        (_with(role="robot"), "invalid_message"),
        (_with(sent_at="yesterday"), "invalid_message"),
        (_with(content=SECRET + "\x00"), "invalid_message"),
        (_with(user_id="u" * 10_000), "invalid_message"),
        (_with(content=SECRET * 1_000), "content_too_long"),
    ],
)
def test_each_bad_input_has_its_code_and_never_echoes_content(
    value: bytes | None, code: str
) -> None:
    error = _error(value)
    assert error.code == code
    assert "4111" not in error.reason and "uuuuuuuu" not in error.reason


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"user_id": "u" * 10_000}, "user_id"),
        ({"content": "a\x00b"}, "content"),
        ({"sent_at": "2026-01-01T12:00:00"}, "sent_at"),
        ({"message_id": None}, "message_id"),
    ],
)
def test_the_reason_for_an_invalid_message_names_the_field(
    change: dict[str, object], field: str
) -> None:
    error = _error(_with(**change))
    assert error.reason.startswith(f"chat message: {field}: ")


def test_too_long_content_says_the_limit_and_keeps_the_user() -> None:
    error = _error(_with(content="x" * 101), max_content_chars=100)
    assert error.user_id == "u1"
    assert "101" in error.reason and "PROFILE_STREAM_MAX_CONTENT_CHARS" in error.reason
    assert decode_message(_with(content="x" * 100), max_content_chars=100).content == "x" * 100


def test_many_problems_are_summarized_on_one_line() -> None:
    error = _error(b"{}")
    assert error.reason.count(": Field required") == 3 and "(+2 more)" in error.reason
    assert "\n" not in error.reason


def test_a_bad_command_is_an_invalid_event() -> None:
    with pytest.raises(InvalidEvent) as info:
        decode_command(b'{"type": "forget"}')
    assert info.value.code == "invalid_message"
    command = {
        "command_id": "c1",
        "type": "forget",
        "user_id": "u1",
        "requested_at": "2026-01-01T12:00:00Z",
    }
    assert decode_command(orjson.dumps(command)).user_id == "u1"


def test_a_dead_letter_keeps_raw_bytes_and_fields_for_replay() -> None:
    raw = b"\xff\x00 not even utf8 \x80"
    out = dead_letter_record(
        code="not_utf8",
        reason="chat message is not UTF-8",
        topic="chat-messages",
        partition=5,
        offset=1234,
        key=b"u1",
        value=raw,
        failed_at=T0,
        user_id="u1",
        message_id="m1",
        attempts=3,
    )
    letter = DeadLetter.model_validate_json(out)
    assert base64.b64decode(letter.value_b64) == raw
    assert base64.b64decode(letter.key_b64 or "") == b"u1"
    assert (letter.reason_code, letter.source_topic, letter.source_partition) == (
        "not_utf8",
        "chat-messages",
        5,
    )
    assert (letter.source_offset, letter.user_id, letter.message_id, letter.attempts) == (
        1234,
        "u1",
        "m1",
        3,
    )
    assert letter.failed_at == T0


@pytest.mark.parametrize(
    "headers",
    [
        [("traceparent", b"00-abc"), ("profile-stream-type", b"command")],
        {"traceparent": b"00-abc", "profile-stream-type": b"command"},
    ],
)
def test_a_dead_letter_keeps_the_records_headers(headers: Any) -> None:
    out = dead_letter_record(
        code="invalid_command",
        reason="r",
        topic="t",
        partition=0,
        offset=0,
        key=b"u1",
        value=b"{}",
        failed_at=T0,
        command=is_command(headers),
        headers=headers,
    )
    letter = DeadLetter.model_validate_json(out)
    assert [(h.name, base64.b64decode(h.value_b64)) for h in letter.headers] == [
        ("traceparent", b"00-abc"),
        ("profile-stream-type", b"command"),
    ]
    assert letter.command


def test_a_dead_letter_for_a_tombstone_without_key() -> None:
    out = orjson.loads(
        dead_letter_record(
            code="invalid_message",
            reason="r",
            topic="t",
            partition=0,
            offset=0,
            key=None,
            value=None,
            failed_at=T0,
        )
    )
    assert out["key_b64"] is None and out["value_b64"] == ""


def _letter(value: bytes, max_bytes: int | None, headers: Any = ()) -> bytes:
    return dead_letter_record(
        code="not_json",
        reason="chat message is not valid JSON",
        topic="chat-messages",
        partition=2,
        offset=41,
        key=b"u1",
        value=value,
        failed_at=T0,
        headers=headers,
        max_bytes=max_bytes,
    )


def test_a_dead_letter_within_the_bound_is_whole_and_not_marked() -> None:
    raw = b"{" + b"x" * 10_000
    out = _letter(raw, max_bytes=len(_letter(raw, None)))
    letter = DeadLetter.model_validate_json(out)
    assert base64.b64decode(letter.value_b64) == raw
    assert (letter.truncated, letter.original_size, letter.original_sha256) == (False, None, None)


@pytest.mark.parametrize("size", [800_000, 900_000, 1_000_000])
def test_a_dead_letter_over_the_bound_keeps_the_first_bytes_a_hash_and_the_size(
    size: int,
) -> None:
    raw = bytes(range(256)) * (size // 256) + b"!" * (size % 256)
    bound = 1_000_000 - 8 * 1024
    out = _letter(raw, bound, headers=[("traceparent", b"00-abc")])
    assert bound - 4 <= len(out) <= bound  # the most of the value that fits, whole base64 groups
    letter = DeadLetter.model_validate_json(out)
    kept = base64.b64decode(letter.value_b64)
    assert raw.startswith(kept) and len(kept) > 700_000
    assert letter.truncated and letter.original_size == size
    assert letter.original_sha256 == hashlib.sha256(raw).hexdigest()
    assert [h.name for h in letter.headers] == ["traceparent"]
    assert (letter.reason_code, letter.source_partition, letter.source_offset) == (
        "not_json",
        2,
        41,
    )


def test_headers_too_big_for_the_bound_are_left_out_of_a_truncated_letter() -> None:
    out = _letter(b"{" * 5_000, 2_000, headers=[("big", b"h" * 3_000)])
    letter = DeadLetter.model_validate_json(out)
    assert len(out) <= 2_000 and letter.truncated and letter.headers == []
    assert b"{" * 100 in base64.b64decode(letter.value_b64)


def test_records_round_trip_through_encode() -> None:
    record = new_record("u1", "UserProfile/v1").model_copy(
        update={"applied": {"chat-messages:0": 7}}
    )
    assert decode_record(encode(record)) == record


def test_encode_writes_the_bytes_the_release_before_wrote(schema: ProfileSchema) -> None:
    # Stored records and re-emitted events must keep their bytes across the upgrade: the
    # release before encoded with orjson over ``model_dump(mode="json")``.
    ops = [
        PatchOperation(
            field="name", op="set", value='Zoë \u2028"Al\\ice"', message_id="m1", quote="q"
        ),
        PatchOperation(
            field="languages", op="add", value="日本語", message_id="m1", quote="日本語"
        ),
    ]
    merged = merge({}, {}, (), ops, schema, evidence={"m1": T0})
    record, event = next_version(
        new_record("u1", schema.schema_id), merged, offsets={"t:0": 7}, message_ids=["m1"], at=T0
    )
    entry = buffered_message("u1", "t:0", 1765029321.123456)
    for model in (record, event, entry, record.model_copy(update={"pending_event": event})):
        assert model is not None
        assert encode(model) == orjson.dumps(model.model_dump(mode="json", by_alias=True))


def test_a_command_without_a_time_zone_cannot_break_a_merge(schema: ProfileSchema) -> None:
    # Chat messages refuse naive times; a command with one must be refused too, or merge cleanly
    # against provenance that came from (time-zone aware) chat messages.
    raw = orjson.dumps(
        {
            "command_id": "c1",
            "type": "correct",
            "user_id": "u1",
            "operations": [{"field": "name", "op": "set", "value": "Alicia"}],
            "requested_at": "2026-01-01T13:00:00",
        }
    )
    try:
        command = decode_command(raw)
    except InvalidEvent as error:
        assert error.code == "invalid_message" and "requested_at" in error.reason
        return
    ops = [o.model_copy(update={"message_id": "c1"}) for o in command.operations]
    provenance = {"name": Provenance(message_id="m1", at=T0)}
    evidence = {"c1": command.requested_at}
    result = merge({"name": "Alice"}, provenance, (), ops, schema, evidence=evidence, by="operator")
    assert result.profile["name"] == "Alicia"


def test_a_framed_message_decodes_as_the_json_after_the_frame_when_accepted() -> None:
    for framing in ("auto", "confluent"):
        message = decode_message(frame(_with(), 7), max_content_chars=8_000, framing=framing)
        assert message == decode_message(_with(), max_content_chars=8_000)


def test_a_framed_message_is_refused_by_default_with_the_setting_to_change() -> None:
    error = _error(frame(_with(), 7))
    assert error.code == "not_json"
    assert "PROFILE_STREAM_INPUT_FRAMING" in error.reason and SECRET not in error.reason


@pytest.mark.parametrize(
    ("payload", "code"),
    [(b"{not json", "not_json"), (_with(content=""), "invalid_message")],
)
def test_what_follows_an_accepted_frame_is_checked_like_any_value(
    payload: bytes, code: str
) -> None:
    with pytest.raises(InvalidEvent) as info:
        decode_message(frame(payload, 7), max_content_chars=8_000, framing="auto")
    assert info.value.code == code
    assert "after its Schema Registry frame, schema id 7" in info.value.reason


def test_an_event_with_fields_of_a_newer_release_is_read_for_what_is_known() -> None:
    event = deleted_event(new_record("u1", "UserProfile/v1"), "c1", T0)
    body = orjson.loads(encode(event)) | {"trace": "t-1"}
    assert decode_event(orjson.dumps(body)) == event
    del body["version"]
    with pytest.raises(ValidationError):
        decode_event(orjson.dumps(body))
