"""The forget watermark decided purely: by offset on the forget's partition, else by time with
the skew margin going to the forget; marks only move on; old tombstones stand in for a mark."""

from datetime import UTC, datetime

from schemas import ForgetMark, ProfileRecord
from streams.core.codecs import decode_record, encode
from streams.core.forget_mark import (
    FIRST_SEEN_HEADER,
    FirstSeen,
    before_forget,
    first_seen_in,
    mark_of,
    moved_on,
    with_first_seen,
)

AT = datetime(2026, 11, 25, 12, tzinfo=UTC)
MS = int(AT.timestamp() * 1000)
MARK = ForgetMark(offsets={"chat-messages:3": 100}, at_ms=MS)
MARGIN = 300_000


def seen(source: str, offset: int, at_ms: int = MS) -> FirstSeen:
    return FirstSeen(source, offset, at_ms)


def test_on_the_forgets_partition_the_offset_decides_whatever_the_clocks_say() -> None:
    assert before_forget(MARK, seen("chat-messages:3", 99, MS + 10**9), margin_ms=MARGIN)
    assert not before_forget(MARK, seen("chat-messages:3", 101, MS - 10**9), margin_ms=MARGIN)


def test_elsewhere_the_time_decides_and_the_margin_goes_to_the_forget() -> None:
    other = "chat-messages:4"
    assert before_forget(MARK, seen(other, 10**6, MS - 1), margin_ms=MARGIN)
    assert before_forget(MARK, seen(other, 0, MS + MARGIN), margin_ms=MARGIN)
    assert not before_forget(MARK, seen(other, 0, MS + MARGIN + 1), margin_ms=MARGIN)
    assert not before_forget(None, seen(other, 0, 0), margin_ms=MARGIN)


def test_a_later_forget_reaches_further_never_less_far() -> None:
    second = moved_on(MARK, "chat-messages:3", 150, MS + 5)
    assert second == ForgetMark(offsets={"chat-messages:3": 150}, at_ms=MS + 5)
    # a forget read on another partition (the partition count changed) keeps the first one
    third = moved_on(second, "chat-messages:9", 2, MS - 5)
    assert third.offsets == {"chat-messages:3": 150, "chat-messages:9": 2}
    assert third.at_ms == MS + 5
    assert moved_on(None, "chat-messages:3", 7, MS) == ForgetMark(
        offsets={"chat-messages:3": 7}, at_ms=MS
    )


def test_a_tombstone_of_format_7_stands_in_for_a_mark_with_its_source_offsets() -> None:
    old = ProfileRecord(
        format=2,
        user_id="ann",
        schema_id="UserProfile/v1",
        version=4,
        applied={"chat-messages:3": 100, "origin:chat-messages:1": 9, "commands:signed_ms": 5},
        forgotten_at=AT,
    )
    assert mark_of(old) == MARK
    # without offsets (a release that deleted the key) nothing is known: no mark
    assert mark_of(old.model_copy(update={"applied": {}})) is None
    assert mark_of(old.model_copy(update={"forgotten_at": None})) is None


def test_a_record_with_a_mark_reads_back_the_same_and_an_older_record_reads_without() -> None:
    record = ProfileRecord(user_id="ann", schema_id="UserProfile/v1", forget_mark=MARK, format=8)
    assert decode_record(encode(record)) == record
    assert decode_record(b'{"user_id":"ann","schema_id":"s"}').forget_mark is None


def test_the_first_seen_header_round_trips_and_a_bad_one_is_ignored() -> None:
    first = FirstSeen.of("chat-messages", 3, 42, MS / 1000)
    assert first_seen_in([first.header()]) == first
    assert first_seen_in({FIRST_SEEN_HEADER: first.header()[1]}) == first
    for bad in (b"chat-messages:3:42", b"x:y:z:w", b"\xff", b""):
        assert first_seen_in([(FIRST_SEEN_HEADER, bad)]) is None
    assert first_seen_in([first.header(), first.header()]) is None  # which one?
    assert first_seen_in(None) is None


def test_a_replay_keeps_the_first_seen_its_record_had() -> None:
    original = FirstSeen("chat-messages:1", 7, MS).header()
    letter = FirstSeen("chat-messages:3", 42, MS + 9)
    assert with_first_seen([("traceparent", b"t"), original], letter) == [
        ("traceparent", b"t"),
        original,
    ]
    assert with_first_seen([], letter) == [letter.header()]
