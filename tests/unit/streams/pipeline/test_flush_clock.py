"""The flush clock: which buffered subjects are due, across rebalances and restarts."""

from datetime import UTC, datetime

from schemas import BufferedMessage, ChatMessage, ProfileRecord
from streams.core.codecs import encode
from streams.core.flushing import FlushPolicy
from streams.pipeline.flush_clock import FlushClock, buffers_in

A, B = ("chat", 0), ("chat", 1)


def test_due_subjects_are_taken_once() -> None:
    clock = FlushClock()
    clock.set(b"alice", A, 100.0)
    clock.set(b"bob", B, 200.0)
    assert clock.take_due(99.0) == []
    assert clock.take_due(150.0) == [(b"alice", A)]
    assert clock.take_due(150.0) == []  # its flush job sets it again if need be
    assert len(clock) == 1


def test_an_emptied_buffer_leaves_the_clock() -> None:
    clock = FlushClock()
    clock.set(b"alice", A, 100.0)
    clock.set(b"alice", A, None)
    assert clock.take_due(1e12) == []


def test_partitions_leaving_take_their_subjects_with_them() -> None:
    clock = FlushClock()
    clock.set(b"alice", A, 100.0)
    clock.set(b"bob", B, 100.0)
    clock.drop({A})
    assert clock.take_due(1e12) == [(b"bob", B)]


def _record(user: str, partition: int, received: float | None) -> bytes:
    buffer = ()
    if received is not None:
        message = ChatMessage(
            message_id=f"{user}-1",
            user_id=user,
            role="user",
            content="hello",
            sent_at=datetime.fromtimestamp(received, UTC),
        )
        buffer = (
            BufferedMessage(
                message=message, source=f"chat:{partition}", offset=3, received=received
            ),
        )
    return encode(ProfileRecord(user_id=user, schema_id="UserProfile/v1", buffer=buffer))


def test_buffers_are_read_back_from_the_table_for_the_partitions_assigned() -> None:
    table = {
        b"alice": _record("alice", 0, 1000.0),
        b"bob": _record("bob", 1, 1000.0),
        b"carol": _record("carol", 0, None),  # nothing buffered
    }
    policy = FlushPolicy(idle_s=30, max_age_s=300)
    found = list(buffers_in(table, {A}, policy))
    assert found == [(b"alice", A, 1030.0)]
    clock = FlushClock()
    assert clock.rebuild(found) == 1 and clock.take_due(1030.0) == [(b"alice", A)]
