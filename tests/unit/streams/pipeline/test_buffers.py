"""Buffered flushes: messages wait durably in the buffer table, one call per conversation."""

from datetime import timedelta

from streams.core.codecs import decode_record
from streams.core.flushing import FlushPolicy
from tests.unit.helpers import T0

from .fakes import Pipeline, chat, command

POLICY = FlushPolicy(idle_s=30, max_age_s=300, max_messages=20, max_chars=12_000)
S = T0.timestamp()


def _at(seconds: float) -> dict[str, object]:
    return {"sent_at": T0 + timedelta(seconds=seconds)}


async def test_a_conversation_is_extracted_in_one_call_once_idle() -> None:
    pipeline = Pipeline(flushing=POLICY)
    pipeline.now = S + 9  # the worker reads the records once they are written
    await pipeline.feed(
        chat("m1", "hi", offset=0, **_at(0)),
        chat("m2", "name=Alice", offset=1, **_at(5)),
        chat("m3", "bye", offset=2, **_at(9)),
    )
    assert pipeline.model.calls == [] and pipeline.output.sent == []
    record = pipeline.stored()
    assert [b.message.message_id for b in record.buffer] == ["m1", "m2", "m3"]
    assert record.applied == {"chat-messages:0": 2}  # accepted: their offsets may be committed
    pipeline.now = S + 9 + 29
    await pipeline.tick()
    assert pipeline.model.calls == []  # not idle yet
    pipeline.now = S + 9 + 30
    await pipeline.tick()
    assert pipeline.model.calls == [["m1", "m2", "m3"]]
    (event,) = pipeline.output.values
    assert event["source_message_ids"] == ["m1", "m2", "m3"] and event["version"] == 1
    assert event["updated_at"] == "2026-01-01T12:00:09Z"  # the newest message's time
    assert pipeline.stored().buffer == () and pipeline.stored().profile["name"] == "Alice"


async def test_a_redelivered_buffered_message_is_not_buffered_twice() -> None:
    pipeline = Pipeline(flushing=POLICY)
    first = chat("m1", "name=Alice", offset=0)
    await pipeline.feed(first, first)
    assert len(pipeline.stored().buffer) == 1
    pipeline.now = S + 30
    await pipeline.tick()
    await pipeline.feed(first)  # after the flush: still known
    assert pipeline.model.calls == [["m1"]]


async def test_a_new_conversation_flushes_the_previous_one_first() -> None:
    pipeline = Pipeline(flushing=POLICY)
    await pipeline.feed(
        chat("m1", "name=Al", offset=0, conversation_id="c1"),
        chat("m2", "name=Alice", offset=1, conversation_id="c2"),
    )
    assert pipeline.model.calls == [["m1"]]
    assert [b.message.message_id for b in pipeline.stored().buffer] == ["m2"]


async def test_the_end_of_a_conversation_flushes_at_once() -> None:
    pipeline = Pipeline(flushing=POLICY)
    await pipeline.feed(
        chat("m1", "hi", offset=0),
        chat("m2", "name=Alice", offset=1, end_of_conversation=True),
    )
    assert pipeline.model.calls == [["m1", "m2"]] and pipeline.stored().buffer == ()


async def test_a_full_buffer_is_flushed_at_once() -> None:
    pipeline = Pipeline(flushing=FlushPolicy(idle_s=30, max_age_s=300, max_messages=3))
    await pipeline.feed(*(chat(f"m{i}", "hi", offset=i) for i in range(4)))
    assert pipeline.model.calls == [["m0", "m1", "m2"]]
    assert [b.message.message_id for b in pipeline.stored().buffer] == ["m3"]


async def test_a_flush_command_extracts_now_and_a_correction_follows_the_buffer() -> None:
    pipeline = Pipeline(flushing=POLICY)
    await pipeline.feed(chat("m1", "name=Al", offset=0), command("f1", "flush", offset=1))
    assert pipeline.model.calls == [["m1"]]
    await pipeline.feed(chat("m2", "name=Alice", offset=2))
    correction = {"field": "name", "op": "set", "value": "Bea"}
    await pipeline.feed(command("c1", "correct", offset=3, operations=[correction]))
    # The message before the correction was extracted first: the correction wins.
    assert pipeline.model.calls == [["m1"], ["m2"]]
    assert [e["profile"]["name"] for e in pipeline.output.values] == ["Al", "Alice", "Bea"]


async def test_a_forget_drops_the_buffer_without_asking_the_model() -> None:
    pipeline = Pipeline(flushing=POLICY)
    await pipeline.feed(chat("m0", "name=Alice", offset=0), command("f0", "flush", offset=1))
    await pipeline.feed(chat("m1", "I live in Paris", offset=2), command("c1", "forget", offset=3))
    assert pipeline.model.calls == [["m0"]]
    record = pipeline.stored()
    assert record.buffer == () and record.forgotten_at is not None
    assert pipeline.clock.take_due(S + 10_000) == []  # nothing left to flush


async def test_a_failed_flush_dead_letters_each_buffered_message() -> None:
    pipeline = Pipeline(flushing=POLICY)
    await pipeline.feed(chat("m1", "hi", offset=0), chat("m2", "name=Alice", offset=1))
    pipeline.model.fail = RuntimeError("the extractor has a bug")
    pipeline.now = S + 60
    await pipeline.tick()
    assert [(d["message_id"], d["source_offset"]) for d in pipeline.dlq.values] == [
        ("m1", 0),
        ("m2", 1),
    ]
    assert pipeline.stored().buffer == ()
    pipeline.now = S + 120
    await pipeline.tick()  # the buffer is gone: no second attempt, no second letter
    assert len(pipeline.dlq.values) == 2


async def test_a_user_over_the_daily_budget_keeps_buffering_until_the_next_day() -> None:
    # The scripted model reports 10 prompt tokens per message and 5 per answer.
    budget = FlushPolicy(idle_s=30, max_age_s=300, daily_tokens=30, max_buffered=3)
    pipeline = Pipeline(flushing=budget)
    await pipeline.feed(chat("m1", "name=Al", offset=0), chat("m2", "hi", offset=1))
    pipeline.now = S + 60
    await pipeline.tick()
    assert pipeline.model.calls == [["m1", "m2"]]  # 25 tokens spent today: under 30
    await pipeline.feed(*(chat(f"n{i}", "hi", offset=2 + i, **_at(61 + i)) for i in range(2)))
    pipeline.now = S + 120
    await pipeline.tick()
    assert pipeline.model.calls == [["m1", "m2"], ["n0", "n1"]]  # 50 tokens now: over
    await pipeline.feed(*(chat(f"o{i}", "hi", offset=4 + i, **_at(121 + i)) for i in range(4)))
    pipeline.now = S + 600
    await pipeline.tick()
    assert len(pipeline.model.calls) == 2  # deferred, not dropped
    assert [b.message.message_id for b in pipeline.stored().buffer] == ["o0", "o1", "o2"]
    (refused,) = pipeline.dlq.values  # the buffer is full: the 4th waits in the dead letters
    assert (refused["reason_code"], refused["message_id"]) == ("over_budget", "o3")
    assert "PROFILE_STREAM_USER_DAILY_TOKENS" in refused["reason"]
    assert pipeline.clock.take_due(S + 3600) == []  # nothing to look at before the next day
    pipeline.now = S + 86_400  # the next UTC day: the budget is new
    await pipeline.tick()
    assert pipeline.model.calls[-1] == ["o0", "o1", "o2"] and pipeline.stored().buffer == ()


async def test_messages_sent_on_an_earlier_day_are_charged_to_the_budget_of_today() -> None:
    """The budget is checked on the worker's day; charging the messages' day (a client clock
    behind, a backlog from yesterday) would let every call through."""
    pipeline = Pipeline(flushing=FlushPolicy(idle_s=0.0, daily_tokens=10))
    yesterday = T0 - timedelta(days=1)
    for i in range(5):
        await pipeline.feed(
            chat(f"m{i}", f"name=N{i}", offset=i, sent_at=yesterday, timestamp=pipeline.now)
        )
    assert pipeline.model.calls == [["m0"]]  # 15 tokens today: the rest wait for tomorrow
    usage = pipeline.stored().usage
    assert usage is not None and usage.day == T0.date()
    assert [b.message.message_id for b in pipeline.stored().buffer] == ["m1", "m2", "m3", "m4"]


class _Counted(dict[bytes, bytes]):
    """A table that counts the bytes written to it (what its changelog would carry)."""

    written = 0
    biggest = 0

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.written += len(key) + len(value)
        self.biggest = max(self.biggest, len(key) + len(value))
        super().__setitem__(key, value)


async def test_buffering_a_message_writes_about_its_size_not_the_profile() -> None:
    pipeline = Pipeline(flushing=POLICY, revisions_per_field=10)
    for n in range(6):  # a profile with history: six versions of the name
        pipeline.now = S + 100 * n
        await pipeline.feed(chat(f"v{n}", f"name=Alice {n}", offset=n, **_at(100 * n)))
        pipeline.now += 60
        await pipeline.tick()
    assert pipeline.stored().version == 6
    records, entries = _counted(pipeline)
    messages = [chat(f"m{n}", "x" * 200, offset=10 + n, **_at(700 + n)) for n in range(5)]
    for message in messages:
        pipeline.now = message.timestamp
        await pipeline.feed(message)
    assert len(pipeline.stored().buffer) == 5
    assert records.written == 0  # the profile record is not rewritten per message
    per_message = entries.written / len(messages)
    assert per_message <= 3 * len(messages[0].value or b"")


def _counted(pipeline: Pipeline) -> tuple[_Counted, _Counted]:
    """The pipeline's profile and buffer tables, counting what is written to them."""
    records, entries = _Counted(pipeline.table), _Counted(pipeline.buffer_table)
    pipeline.table = pipeline.publisher.table = pipeline.updater.table = records
    pipeline.buffer_table = pipeline.buffers.table = entries
    return records, entries


async def test_a_buffer_over_one_changelog_writes_size_is_never_written_in_one() -> None:
    """Review F3, proof p06: messages that fit one write each but not together, and a user
    over budget holding 200 of the longest messages (3.2 MB), make no write over Faust's
    producer_max_request_size (the producer would crash at every redelivery)."""
    limit = 1_000_000
    pipeline = Pipeline(flushing=POLICY)
    pipeline.now = S
    tables = list(_counted(pipeline))
    blob = {"blob": "x" * 600_000}
    await pipeline.feed(*(chat(f"m{i}", "hi", offset=i, metadata=blob, **_at(i)) for i in (0, 1)))
    assert len(pipeline.stored().buffer) == 2
    pipeline.now += 3600
    await pipeline.tick()
    assert pipeline.model.calls == [["m0", "m1"]]

    spent = Pipeline(flushing=FlushPolicy(idle_s=60, daily_tokens=1, max_buffered=200))
    spent.now = S
    tables.extend(_counted(spent))
    await spent.feed(chat("a", "x" * 8_000, offset=0, end_of_conversation=True))
    await spent.feed(*(chat(f"b{i}", "é" * 8_000, offset=i, **_at(i)) for i in range(1, 201)))
    assert len(spent.stored().buffer) == 200 and spent.dlq.sent == []
    assert max(table.biggest for table in tables) < limit


async def test_a_second_forget_drops_the_buffer_a_tombstone_holds() -> None:
    pipeline = Pipeline(flushing=POLICY)
    pipeline.now = S
    await pipeline.feed(chat("m1", "name=Alice", offset=0), command("f1", "forget", offset=1))
    await pipeline.feed(chat("m2", "name=Alicia", offset=2), command("f2", "forget", offset=3))
    assert pipeline.stored().buffer == () and pipeline.buffer_table == {}
    pipeline.now += 3600
    await pipeline.tick()
    assert pipeline.model.calls == []
    assert [e["type"] for e in pipeline.output.values] == ["deleted", "deleted"]
    assert pipeline.stored().forgotten_at is not None and pipeline.stored().profile == {}


async def test_a_record_stamped_in_the_future_is_flushed_when_idle_by_the_worker_clock() -> None:
    pipeline = Pipeline(flushing=POLICY)
    pipeline.now = S
    year = 365 * 86400.0
    await pipeline.feed(chat("m1", "name=Alice", offset=0, timestamp=S + year))
    pipeline.now = S + POLICY.idle_s
    await pipeline.tick()
    assert pipeline.model.calls == [["m1"]]


async def test_a_message_stamped_a_year_ahead_does_not_outrank_the_users_later_messages() -> None:
    # Its sent_at and its record timestamp agree (a producer whose clock is ahead), so admission
    # takes it; its values must still give way to what the user says once the skew allowed
    # (PROFILE_STREAM_MAX_FUTURE_SKEW_S, 300 s) is past (review F4).
    pipeline = Pipeline()
    year = timedelta(days=365)
    await pipeline.feed(chat("m1", "name=Alice", offset=0, sent_at=T0 + year))
    pipeline.now += 600
    await pipeline.feed(chat("m2", "name=Bob", offset=1, sent_at=T0 + timedelta(seconds=600)))
    stored = pipeline.stored()
    assert (stored.profile["name"], stored.version) == ("Bob", 2)
    assert pipeline.dlq.values == []


async def test_a_message_too_large_for_one_changelog_write_is_dead_lettered_not_buffered() -> None:
    pipeline = Pipeline(flushing=POLICY)
    pipeline.now = S
    huge = {"blob": "x" * 999_000}  # with the message's fields, over 1,000,000 bytes less framing
    await pipeline.feed(
        chat("m1", "hi", offset=0),
        chat("m2", "name=Alice", offset=1, metadata=huge),
        chat("m3", "bye", offset=2),
    )
    ((letter_id, reason),) = [(d["message_id"], d["reason_code"]) for d in pipeline.dlq.values]
    assert (letter_id, reason) == ("m2", "invalid_message")
    assert [b.message.message_id for b in pipeline.stored().buffer] == ["m1", "m3"]
    assert all(len(v) < 1_000_000 for v in pipeline.buffer_table.values())


async def test_a_new_users_record_never_claims_a_buffered_message_its_entry_may_not_hold() -> None:
    # The record and the entry go to two changelogs: were the record durable and the entry
    # not (a crash), a redelivered message must be buffered again, not skipped as applied.
    pipeline = Pipeline(flushing=POLICY)
    pipeline.now = S
    message = chat("m1", "name=Alice", offset=0)
    await pipeline.feed(message)
    assert "m1" not in decode_record(pipeline.table[b"alice"]).recent_message_ids
    pipeline.buffer_table.clear()  # the entry's write lost, the record's kept
    await pipeline.feed(message)  # redelivered: its offset was never committed
    assert [b.message.message_id for b in pipeline.stored().buffer] == ["m1"]
