"""A record says how fresh it is, and whether it reflects a message."""

from datetime import UTC, datetime

from schemas import BufferedMessage, ChatMessage, ProfileRecord
from streams.core.freshness import freshness_of, reflecting, reflects

SENT = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def entry(message_id: str) -> BufferedMessage:
    message = ChatMessage(
        message_id=message_id,
        user_id="alice",
        conversation_id="c1",
        role="user",
        content="hi",
        sent_at=SENT,
    )
    return BufferedMessage(message=message, source="chat-messages:0", offset=0, received=0.0)


def test_a_buffered_message_is_known_but_not_reflected() -> None:
    record = ProfileRecord(
        user_id="alice",
        schema_id="UserProfile/v1",
        recent_message_ids=("m1",),
        buffer=(entry("m1"),),
    )
    assert not reflects(record, "m1")
    assert freshness_of(record).buffered_messages == 1
    assert freshness_of(record).last_message_id is None


def test_a_flushed_message_is_reflected_and_named_as_the_last() -> None:
    buffered = ProfileRecord(
        user_id="alice",
        schema_id="UserProfile/v1",
        recent_message_ids=("m1", "m2"),
        buffer=(entry("m1"), entry("m2")),
    )
    flushed = reflecting(buffered.model_copy(update={"buffer": ()}), buffered)
    assert reflects(flushed, "m1") and reflects(flushed, "m2")
    freshness = freshness_of(flushed)
    assert (freshness.buffered_messages, freshness.last_message_id) == (0, "m2")
    assert freshness.last_message_at == SENT
    assert flushed.format == 6


def test_an_unknown_message_or_no_record_is_not_reflected() -> None:
    record = ProfileRecord(user_id="alice", schema_id="UserProfile/v1", recent_message_ids=("m1",))
    assert not reflects(record, "m9")
    assert not reflects(None, "m1")
