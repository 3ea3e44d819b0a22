"""Fencing on revoke, and the read-ahead's bounds: the real apply and publish code over the
pipeline fakes, run by the keyed scheduler as a worker runs them."""

import asyncio
from collections.abc import Sequence
from typing import Any

from schemas import ChatMessage
from streams.extract.base import Extraction
from streams.metrics import FENCED_BATCHES
from streams.pipeline.job import Job
from streams.pipeline.ownership import Fenced, Ownership, Token, check_owned, hold
from streams.pipeline.scheduler import KeyedScheduler, SchedulerLimits

from .fakes import Event, Pipeline, Record, chat

FAST = SchedulerLimits(window_s=0, catch_up_window_s=0, max_batch=1)


class Gate:
    """A model that answers only once ``open`` is set (a call at a slow model)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.open = asyncio.Event()
        self.called = asyncio.Event()
        self._extract = pipeline.model.extract
        pipeline.model.extract = self.extract  # type: ignore[method-assign]

    async def extract(
        self, profile: Any, messages: Sequence[ChatMessage], *a: Any, **k: Any
    ) -> Extraction:
        self.called.set()
        await self.open.wait()
        return await self._extract(profile, messages, *a, **k)


async def _job(pipeline: Pipeline, sched: KeyedScheduler, record: Record) -> tuple[Job, Event]:
    event = Event(record)
    token = sched.ownership.token((record.topic, record.partition))
    return Job.of(event, await pipeline.admit(record), now=record.timestamp, token=token), event


def _scheduler(pipeline: Pipeline, fatal: list[BaseException], **limits: Any) -> KeyedScheduler:
    settings = SchedulerLimits(**{**FAST.__dict__, **limits})
    return KeyedScheduler(pipeline.updater.apply, fatal.append, settings)


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_batch_at_the_model_past_the_grace_is_cancelled_and_writes_nothing() -> None:
    pipeline, fatal = Pipeline(), []
    gate = Gate(pipeline)
    sched = _scheduler(pipeline, fatal)
    jobs = [await _job(pipeline, sched, chat(f"m{i}", f"name=A{i}", offset=i)) for i in range(3)]
    for job, _ in jobs:
        await sched.submit(job)
    await gate.called.wait()  # m0 at the model, m1 and m2 waiting

    report = await sched.revoke({("chat-messages", 0)}, grace_s=0.05)
    gate.open.set()  # the model answers after all: too late
    await _settle()

    assert (report.cancelled, report.finished, report.dropped) == (1, 0, 3)
    assert pipeline.table == {} and pipeline.output.sent == []
    assert [event.acks for _, event in jobs] == [0, 0, 0]
    assert sched.pending == 0 and sched.pending_bytes == 0 and fatal == []


async def test_a_batch_that_finishes_within_the_grace_publishes_but_is_not_acknowledged() -> None:
    pipeline, fatal = Pipeline(), []
    gate = Gate(pipeline)
    sched = _scheduler(pipeline, fatal)
    (job, event), (later, later_event) = [
        await _job(pipeline, sched, chat(f"m{i}", f"name=A{i}", offset=i)) for i in range(2)
    ]
    await sched.submit(job)
    await sched.submit(later)
    await gate.called.wait()

    revoking = asyncio.create_task(sched.revoke({("chat-messages", 0)}, grace_s=5))
    await _settle()
    gate.open.set()
    report = await revoking

    # Still the owner during the grace: its version is the next owner's starting point, and
    # the redelivered m0 is skipped there as applied; m1 never started.
    assert (report.finished, report.cancelled, report.dropped) == (1, 0, 2)
    assert [e["version"] for e in pipeline.output.values] == [1]
    assert pipeline.stored().version == 1 and pipeline.model.calls == [["m0"]]
    assert (event.acks, later_event.acks) == (0, 0)


async def test_waiting_jobs_of_a_revoked_partition_are_dropped_others_go_on_in_order() -> None:
    acked: list[tuple[int, int]] = []
    ran: list[tuple[bytes, int]] = []
    stuck = asyncio.Event()

    class Acked:
        def __init__(self, tp: tuple[str, int], offset: int) -> None:
            self.tp, self.offset = tp, offset

        message = None

        def ack(self) -> None:
            acked.append((self.tp[1], self.offset))

    async def run(key: bytes, jobs: list[Job], release: object = None) -> None:
        ran.append((key, jobs[0].offset))
        if jobs[0].tp[1] == 0:
            await stuck.wait()  # partition 0's batch is at the model
        await asyncio.sleep(0.001)

    sched = KeyedScheduler(run, print, FAST)

    def job(key: str, partition: int, offset: int) -> Job:
        tp = ("t", partition)
        return Job(key.encode(), tp, offset, Acked(tp, offset), token=sched.ownership.token(tp))

    for offset in range(4):
        await sched.submit(job("a", 0, offset))
        await sched.submit(job(f"b{offset % 2}", 1, offset))
    await _settle()
    report = await sched.revoke({("t", 0)}, grace_s=0.01)
    while sched.pending:  # noqa: ASYNC110 - polling is enough here
        await asyncio.sleep(0.001)

    assert report.dropped == 4 and report.cancelled == 1
    assert [o for p, o in acked if p == 1] == [0, 1, 2, 3]
    assert [o for p, o in acked if p == 0] == []
    assert [o for k, o in ran if k == b"a"] == [0]  # a1..a3 never started


async def test_a_job_read_before_a_revoke_is_dropped_and_a_new_ownership_starts_fresh() -> None:
    pipeline, fatal = Pipeline(), []
    sched = _scheduler(pipeline, fatal)
    stale, stale_event = await _job(pipeline, sched, chat("m0", "name=Old", offset=0))
    await sched.revoke({("chat-messages", 0)}, grace_s=0)
    assert sched.assign({("chat-messages", 0)}) == 0
    await sched.submit(stale)  # read under the old ownership: dropped, not run, not acked
    fresh, fresh_event = await _job(pipeline, sched, chat("m0", "name=New", offset=0))
    await sched.submit(fresh)
    while sched.pending:  # noqa: ASYNC110 - polling is enough here
        await asyncio.sleep(0.001)
    assert (stale_event.acks, fresh_event.acks) == (0, 1)
    assert pipeline.stored().profile["name"] == "New" and fatal == []


async def test_a_stale_token_at_the_store_aborts_the_batch_without_an_ack() -> None:
    pipeline, fatal = Pipeline(), []
    gate = Gate(pipeline)
    sched = _scheduler(pipeline, fatal)
    job, event = await _job(pipeline, sched, chat("m0", "name=Ann", offset=0))
    before = FENCED_BATCHES._value.get()
    await sched.submit(job)
    await gate.called.wait()
    sched.ownership.revoke({("chat-messages", 0)})  # lost while at the model
    gate.open.set()
    while sched.pending and not event.acks:  # noqa: ASYNC110
        await asyncio.sleep(0.001)
        if FENCED_BATCHES._value.get() > before:
            break
    assert FENCED_BATCHES._value.get() == before + 1
    assert pipeline.table == {} and pipeline.output.sent == [] and event.acks == 0
    assert fatal == []


async def test_a_stale_token_at_the_emit_aborts_after_the_changelog_wait() -> None:
    pipeline, fatal = Pipeline(), []
    sched = _scheduler(pipeline, fatal)
    job, event = await _job(pipeline, sched, chat("m0", "name=Ann", offset=0))

    async def changelog_acked(key: bytes) -> None:
        sched.ownership.revoke({("chat-messages", 0)})  # revoked while waiting for Kafka

    pipeline.publisher.changelog_acked = changelog_acked
    before = FENCED_BATCHES._value.get()
    await sched.submit(job)
    while FENCED_BATCHES._value.get() == before:  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    # The pending record is the next owner's to finish (same id, same bytes); nothing emitted.
    assert pipeline.stored().pending_event is not None
    assert pipeline.output.sent == [] and event.acks == 0 and fatal == []


def test_check_owned_outside_a_batch_passes_and_a_stale_lease_raises() -> None:
    check_owned("a store")  # no lease: tests and tools that publish directly
    ownership = Ownership()
    token = ownership.token(("t", 3))
    assert ownership.owns(token) and ownership.owns(None)
    ownership.revoke({("t", 3)})
    assert not ownership.owns(token)
    ownership.assign({("t", 3)})
    assert not ownership.owns(token)  # a new ownership: the old token never validates again
    assert ownership.owns(ownership.token(("t", 3)))
    assert ownership.token(("t", 3)) != Token(("t", 3), 0)

    async def in_a_batch() -> None:
        hold(ownership, token)
        check_owned("a store")

    try:
        asyncio.run(in_a_batch())
    except Fenced as fenced:
        assert "('t', 3)" in str(fenced)
    else:
        raise AssertionError("a stale lease did not raise Fenced")


async def test_the_byte_bound_holds_admission_until_room_is_made() -> None:
    gate, ran, acked = asyncio.Event(), [], []

    async def run(key: bytes, jobs: list[Job], release: object = None) -> None:
        ran.append(key)
        await gate.wait()

    sched = KeyedScheduler(run, print, SchedulerLimits(window_s=0, max_pending_bytes=100))

    class Acked:
        message = None

        def __init__(self, offset: int) -> None:
            self.offset = offset

        def ack(self) -> None:
            acked.append(self.offset)

    def job(key: str, offset: int, size: int) -> Job:
        return Job(key.encode(), ("t", 0), offset, Acked(offset), size=size)

    await sched.submit(job("a", 0, 60))
    blocked = asyncio.create_task(sched.submit(job("b", 1, 60)))
    await _settle()
    assert not blocked.done() and sched.pending_bytes == 60  # 120 bytes would pass the bound
    gate.set()
    await asyncio.wait_for(blocked, 1)
    assert acked[:1] == [0]
    huge = asyncio.create_task(sched.submit(job("c", 2, 500)))  # over the bound alone
    await asyncio.wait_for(huge, 1)  # ... still taken once nothing else is held
    while sched.pending:  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    assert acked == [0, 1, 2]


async def test_batches_are_bounded_by_characters_of_content_not_bytes_of_records() -> None:
    batches: list[list[int]] = []

    async def run(key: bytes, jobs: list[Job], release: object = None) -> None:
        batches.append([j.offset for j in jobs])

    limits = SchedulerLimits(window_s=0.05, catch_up_window_s=0, max_batch_chars=100)
    sched = KeyedScheduler(run, print, limits)

    class Quiet:
        message = None

        def ack(self) -> None:
            return None

    for offset in range(4):  # records of 10 kB (metadata), 60 characters of content
        await sched.submit(Job(b"a", ("t", 0), offset, Quiet(), size=10_000, chars=60))
    while sched.pending:  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    assert batches == [[0], [1], [2], [3]]
