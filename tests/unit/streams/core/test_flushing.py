"""The flush triggers: when a user's buffered messages go to the model."""

from datetime import UTC, date, datetime

import pytest

from schemas import BufferedMessage, ChatMessage, ModelUsage, ProfileUsage
from streams.core.flushing import (
    FlushPolicy,
    FlushReason,
    due_at,
    next_day,
    over_budget,
    reason_after,
    reason_before,
    splits_conversation,
)

POLICY = FlushPolicy(idle_s=30, max_age_s=300, max_messages=4, max_chars=100)
T = 1_000_000.0


def entry(
    at: float, content: str = "hi", conversation: str = "c1", end: bool = False
) -> BufferedMessage:
    message = ChatMessage(
        message_id=f"m{at}",
        user_id="alice",
        conversation_id=conversation,
        role="user",
        content=content,
        sent_at=datetime.fromtimestamp(at, UTC),
        end_of_conversation=end,
    )
    return BufferedMessage(message=message, source="chat:0", offset=int(at), received=at)


def test_an_empty_buffer_is_never_due() -> None:
    assert due_at((), POLICY) is None and reason_after((), POLICY, T) is None


def test_a_buffer_waits_while_the_user_keeps_writing() -> None:
    buffer = (entry(T), entry(T + 10), entry(T + 20))
    assert reason_after(buffer, POLICY, now=T + 49) is None
    assert due_at(buffer, POLICY) == T + 20 + 30


def test_an_idle_buffer_is_flushed() -> None:
    buffer = (entry(T), entry(T + 10))
    assert reason_after(buffer, POLICY, now=T + 40) is FlushReason.IDLE


def test_a_buffer_of_a_user_who_never_pauses_is_flushed_by_age() -> None:
    buffer = tuple(entry(T + 25 * i) for i in range(3))  # a message every 25 s
    long_policy = FlushPolicy(idle_s=30, max_age_s=60, max_messages=100, max_chars=10_000)
    assert due_at(buffer, long_policy) == T + 60  # the age comes before the idle (T+80)
    assert reason_after(buffer, long_policy, now=T + 61) is FlushReason.MAX_AGE


@pytest.mark.parametrize(
    "buffer",
    [
        tuple(entry(T + i) for i in range(4)),  # max_messages
        (entry(T, "x" * 60), entry(T + 1, "y" * 40)),  # max_chars
    ],
)
def test_a_full_buffer_is_flushed_at_once(buffer: tuple[BufferedMessage, ...]) -> None:
    assert reason_after(buffer, POLICY, now=T) is FlushReason.SIZE


def test_the_end_of_a_conversation_flushes_at_once() -> None:
    buffer = (entry(T), entry(T + 1, end=True))
    assert reason_after(buffer, POLICY, now=T + 1) is FlushReason.END_OF_CONVERSATION


def test_a_message_of_another_conversation_splits_the_buffer() -> None:
    buffer = (entry(T, conversation="c1"),)
    assert splits_conversation(buffer, entry(T + 1, conversation="c2").message)
    assert not splits_conversation(buffer, entry(T + 1, conversation="c1").message)
    assert not splits_conversation((), entry(T, conversation="c2").message)


def test_idle_zero_flushes_every_batch_as_it_comes() -> None:
    now_policy = FlushPolicy(idle_s=0, max_age_s=300)
    assert reason_after((entry(T),), now_policy, now=T) is FlushReason.IDLE


def _usage(day: str, tokens: int) -> ProfileUsage:
    spent = ModelUsage(calls=1, prompt_tokens=tokens, completion_tokens=0)
    return ProfileUsage(total=spent, day=date.fromisoformat(day), today=spent)


def test_the_budget_counts_todays_tokens_by_the_workers_clock() -> None:
    budget = FlushPolicy(daily_tokens=1000)
    noon = datetime(2026, 12, 2, 12, tzinfo=UTC).timestamp()
    assert over_budget(_usage("2026-12-02", 1000), budget, noon)
    assert not over_budget(_usage("2026-12-02", 999), budget, noon)
    assert not over_budget(_usage("2026-12-01", 5000), budget, noon)  # yesterday's spending
    assert not over_budget(_usage("2026-12-02", 5000), FlushPolicy(), noon)  # no budget
    assert not over_budget(None, budget, noon)


def test_a_spent_budget_is_new_at_the_next_utc_midnight() -> None:
    late = datetime(2026, 12, 2, 23, 59, 30, tzinfo=UTC).timestamp()
    assert next_day(late) == datetime(2026, 12, 3, tzinfo=UTC).timestamp()


def test_idle_and_age_wait_for_a_message_of_the_user_already_read() -> None:
    idle = [entry(T)]
    old = [entry(T - 400), entry(T - 1)]
    assert reason_after(idle, POLICY, T + 31) == FlushReason.IDLE
    assert reason_after(old, POLICY, T) == FlushReason.MAX_AGE
    assert reason_after(idle, POLICY, T + 31, waiting=True) is None
    assert reason_after(old, POLICY, T, waiting=True) is None
    # What the messages themselves say still holds.
    full = [entry(T + i) for i in range(4)]
    assert reason_after(full, POLICY, T, waiting=True) == FlushReason.SIZE
    assert reason_after([entry(T, end=True)], POLICY, T, waiting=True) == (
        FlushReason.END_OF_CONVERSATION
    )


@pytest.mark.parametrize(
    ("buffer", "content", "conversation", "expected"),
    [
        ([], "hi", "c1", None),
        ([entry(T)], "hi", "c1", None),
        ([entry(T)], "hi", "c2", FlushReason.NEW_CONVERSATION),
        ([entry(T, end=True)], "hi", "c1", FlushReason.END_OF_CONVERSATION),
        ([entry(T + i) for i in range(4)], "hi", "c1", FlushReason.SIZE),
        ([entry(T, "x" * 60)], "y" * 40, "c1", None),  # 100 characters: one call's worth
        ([entry(T, "x" * 60)], "y" * 41, "c1", FlushReason.SIZE),  # would pass it
    ],
)
def test_a_buffer_is_flushed_before_a_message_that_would_not_fit_its_call(
    buffer: list[BufferedMessage], content: str, conversation: str, expected: FlushReason | None
) -> None:
    message = entry(T + 10, content, conversation).message
    assert reason_before(buffer, message, POLICY) == expected
