"""Read-your-writes on the owner: waits end when the user's record changes, refresh flushes the
buffer with one model call (none when empty), and the number of waiting reads is bounded."""

import asyncio
from typing import Any

from streams.core.flushing import FlushPolicy
from streams.core.freshness import Waited
from streams.pipeline.job import Job, TopicPartition
from streams.pipeline.read_your_writes import ReadYourWrites, Waiting
from streams.pipeline.scheduler import KeyedScheduler, SchedulerLimits
from tests.unit.streams.pipeline.fakes import INPUT, Event, Pipeline, Record, chat

TP: TopicPartition = (INPUT, 0)


class Worker:
    """A pipeline buffering for 60 s of quiet (the default), run by a real scheduler, with the
    agent's hand-on step and the broker's end offset played by the test."""

    def __init__(self, limit: int = 8, daily_tokens: int = 0) -> None:
        policy = FlushPolicy(idle_s=60.0, max_age_s=600.0, daily_tokens=daily_tokens)
        self.pipeline = Pipeline(flushing=policy)
        self.scheduler = KeyedScheduler(
            self.pipeline.updater.apply, self._fatal, SchedulerLimits(window_s=0.0)
        )
        self.end = 0  # the input partition's end offset, as the broker would answer
        self.fresh = ReadYourWrites(
            self.pipeline.table,
            self.scheduler,
            INPUT,
            1,
            end_offset=self._end_offset,
            event_for=lambda tp: Event(Record(None, None, partition=tp[1], topic=tp[0])),
            waiting=Waiting(limit),
        )
        self.pipeline.publisher.on_stored = self.fresh.stored

    @staticmethod
    def _fatal(exc: BaseException) -> None:
        raise AssertionError(f"a batch failed: {exc!r}")

    async def _end_offset(self, tp: TopicPartition) -> int:
        return self.end

    def publish(self, record: Record) -> None:
        """The record is in Kafka: the broker's end offset moves past it."""
        self.end = max(self.end, record.offset + 1)

    async def hand_on(self, record: Record) -> None:
        """What the agent does with a record it read: admit, submit, tell read-your-writes."""
        admitted = await self.pipeline.admit(record)
        job = Job.of(Event(record), admitted, now=record.timestamp)
        await self.scheduler.submit(job)
        self.fresh.passed(job.tp, job.offset)

    async def buffered(self, count: int) -> None:
        """Return once alice's buffer holds ``count`` messages (woken by the record's writes)."""

        def holds() -> bool:
            raw = self.pipeline.table.get(b"alice")
            return raw is not None and len(self.pipeline.stored().buffer) == count

        assert await self.fresh.waiting.until(b"alice", holds, 1.0) is Waited.FRESH


async def test_a_buffered_message_is_not_reflected_and_the_wait_ends_at_its_timeout() -> None:
    worker = Worker()
    message = chat("m1", "name=Alice", offset=0)
    worker.publish(message)
    await worker.hand_on(message)
    await worker.buffered(1)  # buffered, waiting for 60 s of quiet
    started = asyncio.get_running_loop().time()
    assert await worker.fresh.reflected("alice", "m1", 0.05) is Waited.TIMED_OUT
    assert asyncio.get_running_loop().time() - started < 1
    assert worker.pipeline.model.calls == []  # a wait never flushes


async def test_a_wait_ends_when_the_flush_of_its_message_is_stored() -> None:
    worker = Worker()
    message = chat("m1", "name=Alice", offset=0)
    await worker.hand_on(message)
    await worker.buffered(1)
    waiting = asyncio.create_task(worker.fresh.reflected("alice", "m1", 5.0))
    await asyncio.sleep(0)
    assert not waiting.done()
    worker.pipeline.now += 61  # quiet long enough: the timer flushes
    await worker.pipeline.tick()
    assert await asyncio.wait_for(waiting, 1.0) is Waited.FRESH
    assert worker.pipeline.stored().profile["name"] == "Alice"


async def test_refresh_extracts_every_message_published_before_it_in_one_call() -> None:
    worker = Worker()
    first, second = chat("m1", "hello", offset=0), chat("m2", "name=Alice", offset=1)
    worker.publish(first)
    await worker.hand_on(first)
    worker.publish(second)  # in Kafka, not yet read by the agent when the refresh starts
    refresh = asyncio.create_task(worker.fresh.refresh("alice", 5.0))
    await asyncio.sleep(0)
    assert not refresh.done()  # it waits for the agent to hand on m2
    await worker.hand_on(second)
    assert await asyncio.wait_for(refresh, 1.0) is Waited.FRESH
    record = worker.pipeline.stored()
    assert worker.pipeline.model.calls == [["m1", "m2"]]
    assert record.profile["name"] == "Alice" and record.buffer == ()
    assert record.last_message is not None and record.last_message.message_id == "m2"


async def test_refresh_with_nothing_buffered_makes_no_model_call_and_no_write() -> None:
    worker = Worker()
    message = chat("m1", "name=Alice", offset=0)
    worker.publish(message)
    await worker.hand_on(message)
    assert await worker.fresh.refresh("alice", 5.0) is Waited.FRESH
    stored = dict(worker.pipeline.table)
    assert await worker.fresh.refresh("alice", 5.0) is Waited.FRESH
    assert worker.pipeline.model.calls == [["m1"]]  # the first refresh's; none for the second
    assert worker.pipeline.table == stored


async def test_refresh_times_out_while_the_agent_is_behind() -> None:
    worker = Worker()
    worker.publish(chat("m1", "name=Alice", offset=0))  # never handed on
    assert await worker.fresh.refresh("alice", 0.05) is Waited.TIMED_OUT
    assert worker.pipeline.model.calls == []


async def test_refresh_on_a_partition_no_longer_owned_says_so() -> None:
    worker = Worker()
    worker.scheduler.ownership.assign({TP})
    token = worker.scheduler.ownership.token(TP)
    worker.scheduler.ownership.revoke({TP})
    assert not worker.scheduler.ownership.owns(token)
    assert await worker.fresh.refresh("alice", 1.0) is Waited.NOT_OWNER


async def test_records_before_the_committed_offset_count_as_handed_on() -> None:
    worker = Worker()
    worker.end = 5  # five records applied by an earlier owner, committed
    worker.fresh.start_of = lambda tp: 5
    assert await worker.fresh.refresh("alice", 1.0) is Waited.FRESH


async def test_waiting_reads_are_bounded_and_one_more_is_busy_at_once() -> None:
    waiting = Waiting(limit=2)
    never: Any = lambda: False  # noqa: E731 - a condition nothing makes true
    held = [asyncio.create_task(waiting.until(b"k", never, 5.0)) for _ in range(2)]
    await asyncio.sleep(0)
    assert len(waiting) == 2
    assert await waiting.until(b"k", never, 5.0) is Waited.BUSY
    assert await waiting.until(b"k", lambda: True, 5.0) is Waited.FRESH  # fresh: no wait
    for task in held:
        task.cancel()
    await asyncio.gather(*held, return_exceptions=True)
    assert len(waiting) == 0


async def test_a_notify_of_another_key_does_not_end_a_wait() -> None:
    waiting = Waiting(limit=4)
    looks: list[bytes] = []

    def ready() -> bool:
        looks.append(b"look")
        return False

    task = asyncio.create_task(waiting.until(b"alice", ready, 0.2))
    await asyncio.sleep(0)
    started = len(looks)  # before the wait, and as it begins
    waiting.notify(b"bob")
    waiting.notify(b"alice")
    assert await task is Waited.TIMED_OUT
    # One look for alice's wake, one at the timeout; none for bob's, none in between: waits
    # are woken, not polled.
    assert len(looks) == started + 2


async def test_a_zero_timeout_answers_at_once() -> None:
    worker = Worker()
    assert await worker.fresh.reflected("alice", "m1", 0.0) is Waited.TIMED_OUT


async def test_refresh_keeps_to_the_users_daily_token_budget() -> None:
    worker = Worker(daily_tokens=10)  # one call (15 tokens) spends it
    first, second = chat("m1", "name=Alice", offset=0), chat("m2", "name=Al", offset=1)
    worker.publish(first)
    await worker.hand_on(first)
    assert await worker.fresh.refresh("alice", 5.0) is Waited.FRESH
    worker.publish(second)
    await worker.hand_on(second)
    assert await worker.fresh.refresh("alice", 5.0) is Waited.FRESH  # answered, not flushed
    record = worker.pipeline.stored()
    assert worker.pipeline.model.calls == [["m1"]]
    assert [entry.message.message_id for entry in record.buffer] == ["m2"]
    assert record.profile["name"] == "Alice"
