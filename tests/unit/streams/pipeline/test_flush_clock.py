"""The flush clock: which buffered subjects are due, across rebalances and restarts."""

from datetime import UTC, datetime

from schemas import BufferedMessage, ChatMessage, ProfileRecord
from streams.core.codecs import encode
from streams.core.flushing import FlushPolicy
from streams.pipeline.buffer_store import entry_key
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


def _entry(user: str, partition: int, received: float, n: int = 1) -> BufferedMessage:
    message = ChatMessage(
        message_id=f"{user}-{n}",
        user_id=user,
        role="user",
        content="hello",
        sent_at=datetime.fromtimestamp(received, UTC),
    )
    return BufferedMessage(message=message, source=f"chat:{partition}", offset=n, received=received)


def _record(user: str, partition: int, received: float | None) -> bytes:
    """A record of the single-record release (format 4): its buffer inside."""
    buffer = () if received is None else (_entry(user, partition, received),)
    return encode(ProfileRecord(user_id=user, schema_id="UserProfile/v1", buffer=buffer))


POLICY = FlushPolicy(idle_s=30, max_age_s=300)


def test_buffers_are_read_back_from_the_table_for_the_partitions_assigned() -> None:
    table = {
        b"alice": _record("alice", 0, 1000.0),
        b"bob": _record("bob", 1, 1000.0),
        b"carol": _record("carol", 0, None),  # nothing buffered
    }
    found = list(buffers_in(table, {}, {A}, POLICY))
    assert found == [(b"alice", A, 1030.0)]
    clock = FlushClock()
    assert clock.rebuild(found) == 1 and clock.take_due(1030.0) == [(b"alice", A)]


def test_buffers_in_the_buffer_table_are_due_by_their_oldest_and_newest_entries() -> None:
    entries = {
        entry_key(b"dave", seq): encode(_entry("dave", 0, 1000.0 + 100 * seq, seq))
        for seq in range(12)  # keys sort "10" before "2": order comes from the numbers
    }
    entries[entry_key(b"erin", 0)] = encode(_entry("erin", 1, 1000.0))
    found = list(buffers_in({}, entries, {A}, POLICY))
    # Idle from the newest (2100 + 30) is later than the age of the oldest (1000 + 300).
    assert found == [(b"dave", A, 1300.0)]


def test_one_undecodable_buffer_is_skipped_and_the_others_still_found() -> None:
    entries = {
        entry_key(b"aaron", 0): b"{not json",
        entry_key(b"zoe", 0): encode(_entry("zoe", 0, 1000.0)),
    }
    table = {b"abe": b'{"buffer":[oops', b"zed": _record("zed", 0, 1000.0)}
    skipped: list[bytes] = []
    found = list(buffers_in(table, entries, {A}, POLICY, skipped))
    assert sorted(key for key, _, _ in found) == [b"zed", b"zoe"]
    assert sorted(skipped) == [entry_key(b"aaron", 0), b"abe"]
