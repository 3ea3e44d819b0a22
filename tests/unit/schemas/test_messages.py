"""Incoming contracts: what a producer may send us, and what is refused."""

from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError

from schemas import ChatMessage, PatchOperation, ProfileCommand, ProfilePatch

GOOD = {
    "message_id": "m1",
    "user_id": "u1",
    "role": "user",
    "content": "I'm Alice",
    "sent_at": "2026-01-01T12:00:00Z",
}


def test_a_valid_message_parses_from_json_with_defaults() -> None:
    message = ChatMessage.model_validate_json(orjson.dumps(GOOD))
    assert message.sent_at == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert message.conversation_id == ""
    assert message.metadata == {}


def test_unknown_fields_from_a_newer_producer_are_ignored() -> None:
    message = ChatMessage.model_validate(GOOD | {"priority": "high"})
    assert "priority" not in message.model_dump()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sent_at", "2026-01-01T12:00:00"),  # naive time: ambiguous, refused
        ("content", ""),
        ("content", "   \n\t"),
        ("content", "a\x00b"),
        ("role", "tool"),
        ("user_id", ""),
        ("user_id", "x" * 257),
        ("user_id", " u1"),
        ("user_id", "u1\n"),
        ("message_id", "m\x07"),
        ("conversation_id", "c" * 257),
    ],
)
def test_invalid_message_fields_are_refused_and_named(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as info:
        ChatMessage.model_validate(GOOD | {field: value})
    assert [err["loc"][0] for err in info.value.errors()] == [field]


@pytest.mark.parametrize("missing", ["message_id", "user_id", "role", "content", "sent_at"])
def test_required_message_fields(missing: str) -> None:
    with pytest.raises(ValidationError):
        ChatMessage.model_validate({k: v for k, v in GOOD.items() if k != missing})


def test_a_long_message_is_never_cut_by_the_contract() -> None:
    content = "word " * 5_000
    assert ChatMessage.model_validate(GOOD | {"content": content}).content == content


def test_messages_are_frozen() -> None:
    message = ChatMessage.model_validate(GOOD)
    with pytest.raises(ValidationError):
        message.content = "changed"  # type: ignore[misc]


def test_a_correct_command_carries_operations_and_locks() -> None:
    command = ProfileCommand.model_validate(
        {
            "command_id": "c1",
            "type": "correct",
            "user_id": "u1",
            "operations": [{"field": "name", "op": "set", "value": "Alicia"}],
            "lock": ["name"],
            "requested_at": "2026-01-01T12:00:00Z",
        }
    )
    assert command.operations[0].value == "Alicia"
    assert command.lock == ("name",)


@pytest.mark.parametrize("change", [{"type": "delete"}, {"reason": "gdpr"}, {"user_id": ""}])
def test_a_malformed_command_is_refused(change: dict[str, str]) -> None:
    base = {
        "command_id": "c1",
        "type": "forget",
        "user_id": "u1",
        "requested_at": "2026-01-01T12:00:00Z",
    }
    assert ProfileCommand.model_validate(base).type == "forget"
    with pytest.raises(ValidationError):
        ProfileCommand.model_validate(base | change)


@pytest.mark.parametrize(
    "op",
    [
        {"field": "name", "op": "replace", "value": "A"},
        {"field": "", "op": "set", "value": "A"},
        {"field": "name", "op": "set", "value": {"first": "A"}},
        {"field": "name", "op": "set", "value": "A", "quote": "q" * 501},
        {"field": "name", "op": "set", "value": "A", "confidence": 0.9},
    ],
)
def test_a_malformed_operation_is_refused(op: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        PatchOperation.model_validate(op)


def test_an_empty_patch_means_nothing_changed() -> None:
    assert ProfilePatch.model_validate({}).operations == []
