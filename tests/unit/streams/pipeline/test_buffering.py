"""A flush's chunks: the buffered messages cut at one model call's bounds, in order."""

from datetime import UTC, datetime

from schemas import ChatMessage
from streams.pipeline.buffering import chunks


def _messages(*sizes: int) -> list[ChatMessage]:
    return [
        ChatMessage(
            message_id=f"m{i}",
            user_id="alice",
            role="user",
            content="x" * size,
            sent_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        for i, size in enumerate(sizes)
    ]


def _ids(parts: list[list[ChatMessage]]) -> list[list[str]]:
    return [[m.message_id for m in part] for part in parts]


def test_chunks_keep_order_and_respect_the_message_bound() -> None:
    assert _ids(list(chunks(_messages(1, 1, 1, 1, 1), 2, 1000))) == [
        ["m0", "m1"],
        ["m2", "m3"],
        ["m4"],
    ]


def test_chunks_respect_the_character_bound_and_a_long_message_goes_alone() -> None:
    assert _ids(list(chunks(_messages(40, 40, 40, 500, 10), 10, 100))) == [
        ["m0", "m1"],
        ["m2"],
        ["m3"],
        ["m4"],
    ]


def test_no_messages_no_chunks() -> None:
    assert list(chunks([], 5, 100)) == []
