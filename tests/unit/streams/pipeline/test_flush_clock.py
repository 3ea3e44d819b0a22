"""The flush clock: which buffered subjects are due, across rebalances and restarts."""

from schemas import BufferedMessage, ProfileRecord
from streams.core.codecs import encode
from streams.core.flushing import FlushPolicy
from streams.pipeline.buffer_store import entry_key
from streams.pipeline.flush_clock import FlushClock, buffers_in
from tests.unit.helpers import buffered_message

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
    return buffered_message(user, f"chat:{partition}", received, n)


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
    found = list(buffers_in(table.items(), [], {A}, POLICY))
    assert found == [(b"alice", A, 1030.0)]
    clock = FlushClock()
    assert clock.rebuild(found) == 1 and clock.take_due(1030.0) == [(b"alice", A)]


def test_buffers_in_the_buffer_table_are_due_by_their_oldest_and_newest_entries() -> None:
    entries = {
        entry_key(b"dave", seq): encode(_entry("dave", 0, 1000.0 + 100 * seq, seq))
        for seq in range(12)  # keys sort "10" before "2": order comes from the numbers
    }
    entries[entry_key(b"erin", 0)] = encode(_entry("erin", 1, 1000.0))
    found = list(buffers_in([], entries.items(), {A}, POLICY))
    # Idle from the newest (2100 + 30) is later than the age of the oldest (1000 + 300).
    assert found == [(b"dave", A, 1300.0)]


def test_one_undecodable_buffer_is_skipped_and_the_others_still_found() -> None:
    entries = {
        entry_key(b"aaron", 0): b"{not json",
        entry_key(b"zoe", 0): encode(_entry("zoe", 0, 1000.0)),
    }
    table = {b"abe": b'{"buffer":[oops', b"zed": _record("zed", 0, 1000.0)}
    skipped: list[bytes] = []
    found = list(buffers_in(table.items(), entries.items(), {A}, POLICY, skipped))
    assert sorted(key for key, _, _ in found) == [b"zed", b"zoe"]
    assert sorted(skipped) == [entry_key(b"aaron", 0), b"abe"]


def test_a_buffer_naming_no_partition_is_skipped_and_the_others_still_found() -> None:
    """Decodable but damaged (or written by another release): its source has no partition
    number. Reading it must not end the rebuild for the buffers after it (review F5)."""
    entries = {
        entry_key(b"aaron", 0): b'{"source":"chat","received":1000.0}',
        entry_key(b"zoe", 0): encode(_entry("zoe", 0, 1000.0)),
    }
    damaged = buffered_message("abe", "chat", 1000.0)
    table = {
        b"abe": encode(ProfileRecord(user_id="abe", schema_id="UserProfile/v1", buffer=(damaged,))),
        b"zed": _record("zed", 0, 1000.0),
    }
    skipped: list[bytes] = []
    found = list(buffers_in(table.items(), entries.items(), {A}, POLICY, skipped))
    assert sorted(key for key, _, _ in found) == [b"zed", b"zoe"]
    assert sorted(skipped) == [entry_key(b"aaron", 0), b"abe"]


def test_a_tick_takes_the_earliest_due_first_and_at_most_its_limit() -> None:
    clock = FlushClock()
    for n in range(10):
        clock.set(f"u{n}".encode(), A, 100.0 - n)
    assert clock.take_due(95.5, limit=3) == [(b"u9", A), (b"u8", A), (b"u7", A)]
    assert clock.take_due(95.5) == [(b"u6", A), (b"u5", A)]  # left due, not lost
    assert len(clock) == 5


def test_a_subject_set_again_is_due_at_its_new_time_only() -> None:
    clock = FlushClock()
    clock.set(b"alice", A, 100.0)
    clock.set(b"alice", A, 200.0)  # a new message: idle from later
    assert clock.take_due(150.0) == []
    clock.drop({A})
    clock.set(b"alice", B, 300.0)
    assert clock.take_due(250.0) == [] and clock.take_due(300.0) == [(b"alice", B)]
    assert len(clock) == 0


def test_stale_heap_entries_do_not_pile_up() -> None:
    clock = FlushClock()
    for n in range(5_000):
        clock.set(b"alice", A, float(n))  # one subject, many re-arms
    assert len(clock) == 1 and len(clock._heap) <= 1_100
