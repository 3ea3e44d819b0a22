"""Model calls do not depend on luck: each buffered message goes to the model in one call, and
a user's flushes are the same however the scheduler cut its messages into batches, whether the
model was quick or slow, and whether the timer's job came before a message or after it.

The real scheduler and apply run over the pipeline fakes; the worker's clock is the test's
(``Pipeline.now``) and a slow model moves it from inside its call: nothing sleeps.
"""

import asyncio
import math
from datetime import timedelta

import pytest

from schemas import ChatMessage
from streams.core.flushing import FlushPolicy
from streams.core.records import new_record
from streams.metrics import REGISTRY
from streams.pipeline.flush import ChunkedExtraction
from streams.pipeline.job import Job
from streams.pipeline.ownership import Fenced, Ownership, hold
from streams.pipeline.scheduler import KeyedScheduler, SchedulerLimits
from tests.unit.helpers import T0

from .fakes import Event, Pipeline, Record, chat

S = T0.timestamp()
POLICY = FlushPolicy(idle_s=30, max_age_s=300, max_messages=20, max_chars=12_000)
#: No coalescing wait: a batch is what is queued when the key's turn comes, at most 3 jobs.
CUT_IN_THREES = SchedulerLimits(window_s=0, catch_up_window_s=0, max_batch=3)


def calls_counted(reason: str, outcome: str) -> float:
    labels = {"reason": reason, "outcome": outcome}
    return REGISTRY.get_sample_value("profile_stream_model_calls_total", labels) or 0.0


def slow_model(pipeline: Pipeline, seconds: float) -> None:
    """Each model call takes ``seconds`` of the worker's clock (a CPU model, a queue)."""

    def took() -> None:
        pipeline.now += seconds

    pipeline.model.on_call = took


class Scheduled:
    """The worker's scheduler in front of ``pipeline``'s apply, wired as ``streams.app`` does."""

    def __init__(self, pipeline: Pipeline, limits: SchedulerLimits = CUT_IN_THREES) -> None:
        self.pipeline = pipeline
        self.fatal: list[BaseException] = []
        self.scheduler = KeyedScheduler(pipeline.updater.apply, self.fatal.append, limits)
        pipeline.updater.waiting = self.scheduler.waiting
        self._left = 0
        self._done = asyncio.Event()

    async def submit(self, *records: Record) -> None:
        """Submit ``records`` as the agent does, one after another, before any batch runs."""
        for record in records:
            job = Job.of(Event(record), await self.pipeline.admit(record), now=self.pipeline.now)
            await self.scheduler.submit(self._tracked(job))

    def timer(self) -> None:
        """What the flush timer does at ``now``: a flush job for each subject due."""
        for key, tp in self.pipeline.clock.take_due(self.pipeline.now):
            stand_in = Event(Record(None, None, partition=tp[1], topic=tp[0]))
            assert self.scheduler.submit_timer(self._tracked(Job.flush(key, tp, stand_in, None)))

    async def settled(self) -> None:
        """Wait until every job submitted is done."""
        await self._done.wait()
        assert self.fatal == []

    def _tracked(self, job: Job) -> Job:
        self._left += 1
        self._done.clear()

        def done() -> None:
            self._left -= 1
            if self._left == 0:
                self._done.set()

        job.on_done = done
        return job


def conversation(prefix: str, n: int, start: int, conversation_id: str) -> list[Record]:
    """``n`` messages of one conversation, all written at ``S`` (a backlog read at once)."""
    return [
        chat(f"{prefix}{i}", f"turn {i}", offset=start + i, conversation_id=conversation_id)
        for i in range(n)
    ]


async def test_a_slow_model_does_not_cut_a_conversation_at_the_scheduler_batches() -> None:
    # A backlog of two conversations read at once; each model call takes a minute, so by the
    # time a batch ends its records are older than the idle trigger. The user was not idle: the
    # rest of the conversation waits in the scheduler, and joins the same flush.
    pipeline = Pipeline(flushing=POLICY)
    pipeline.now = S + 1
    slow_model(pipeline, 60)
    scheduled = Scheduled(pipeline)
    await scheduled.submit(*conversation("a", 2, 0, "c1"), *conversation("b", 4, 2, "c2"))
    await scheduled.settled()
    pipeline.now += POLICY.idle_s
    await pipeline.tick()
    assert pipeline.model.calls == [["a0", "a1"], ["b0", "b1", "b2", "b3"]]


async def test_a_timer_firing_while_a_message_arrives_makes_no_second_call() -> None:
    pipeline = Pipeline(flushing=POLICY)
    pipeline.now = S + 1
    await pipeline.feed(chat("m1", "hi", offset=0))  # buffered, due at S + 30
    pipeline.now = S + 30
    scheduled = Scheduled(pipeline)
    # The timer's job is queued, then a message of the same conversation written at S + 29
    # arrives behind it: the user was not idle for 30 s.
    scheduled.timer()
    late = chat("m2", "name=Alice", offset=1, sent_at=T0 + timedelta(seconds=29))
    await scheduled.submit(late)
    await scheduled.settled()
    assert pipeline.model.calls == []
    pipeline.now = S + 29 + POLICY.idle_s
    await pipeline.tick()
    assert pipeline.model.calls == [["m1", "m2"]]
    assert pipeline.stored().profile["name"] == "Alice"


async def test_a_timer_job_queued_behind_the_users_messages_flushes_them_all_once() -> None:
    pipeline = Pipeline(flushing=POLICY)
    pipeline.now = S + 1
    await pipeline.feed(chat("m1", "hi", offset=0))
    pipeline.now = S + 40  # due; the user's next messages are read before the timer's job
    scheduled = Scheduled(pipeline)
    await scheduled.submit(chat("m2", "hey", offset=1), chat("m3", "bye", offset=2))
    scheduled.timer()
    await scheduled.settled()
    scheduled.timer()  # the clock kept the buffer due: the next tick flushes it, once
    await scheduled.settled()
    scheduled.timer()
    assert pipeline.model.calls == [["m1", "m2", "m3"]]
    assert pipeline.clock.take_due(S + 10_000) == []


@pytest.mark.parametrize("cuts", [[5], [1, 1, 1, 1, 1], [2, 3], [3, 2], [4, 1]])
async def test_a_users_flushes_are_the_same_however_its_messages_were_batched(
    cuts: list[int],
) -> None:
    # Calls of 100 characters at most: 60 + 30 fill one; a third message would pass it.
    policy = FlushPolicy(idle_s=30, max_age_s=300, max_messages=20, max_chars=100)
    pipeline = Pipeline(flushing=policy)
    pipeline.now = S + 1
    sizes = [60, 30, 30, 30, 10]
    records = [chat(f"m{i}", "x" * n, offset=i) for i, n in enumerate(sizes)]
    start = 0
    for cut in cuts:
        await pipeline.batch(*records[start : start + cut])
        start += cut
    pipeline.now += policy.idle_s
    await pipeline.tick()
    assert pipeline.model.calls == [["m0", "m1"], ["m2", "m3", "m4"]]


async def test_an_end_of_conversation_in_mid_batch_flushes_there() -> None:
    pipeline = Pipeline(flushing=POLICY)
    await pipeline.batch(
        chat("m1", "hi", offset=0),
        chat("m2", "bye", offset=1, end_of_conversation=True),
        chat("m3", "one more thing", offset=2),
    )
    assert pipeline.model.calls == [["m1", "m2"]]
    assert [b.message.message_id for b in pipeline.stored().buffer] == ["m3"]


@pytest.mark.parametrize(("n", "k"), [(1, 3), (3, 3), (7, 3), (20, 20), (41, 20), (9, 1)])
async def test_a_chunked_flush_of_n_messages_makes_ceil_n_over_k_calls(n: int, k: int) -> None:
    pipeline = Pipeline()
    messages = [
        ChatMessage(message_id=f"m{i}", user_id="alice", role="user", content="hi", sent_at=T0)
        for i in range(n)
    ]
    extraction = ChunkedExtraction(pipeline.kind, pipeline.model, FlushPolicy(max_messages=k))
    await extraction.extract(new_record("alice", pipeline.kind.schema.schema_id), messages)
    assert len(pipeline.model.calls) == math.ceil(n / k)
    sent = [m for call in pipeline.model.calls for m in call]
    assert sent == [m.message_id for m in messages]  # each message in exactly one call


async def test_a_batch_at_idle_zero_makes_one_call_per_chunk_counted_by_reason() -> None:
    pipeline = Pipeline(flushing=FlushPolicy(idle_s=0, max_messages=3))
    before = calls_counted("size", "ok"), calls_counted("idle", "ok")
    await pipeline.batch(*(chat(f"m{i}", "hi", offset=i) for i in range(7)))
    assert pipeline.model.calls == [["m0", "m1", "m2"], ["m3", "m4", "m5"], ["m6"]]
    after = calls_counted("size", "ok"), calls_counted("idle", "ok")
    assert (after[0] - before[0], after[1] - before[1]) == (2, 1)


async def test_a_fenced_flush_counts_its_call_as_redone_and_the_new_owner_applies_it_once() -> None:
    pipeline = Pipeline(flushing=POLICY)
    pipeline.now = S + 1
    await pipeline.feed(chat("m1", "name=Alice", offset=0))
    ownership = Ownership()
    tp = ("chat-messages", 0)
    hold(ownership, ownership.token(tp))
    pipeline.model.on_call = lambda: ownership.revoke([tp])  # revoked while at the model
    before = calls_counted("idle", "fenced_redo"), calls_counted("idle", "ok")
    pipeline.now = S + 60
    with pytest.raises(Fenced):
        await pipeline.tick()
    assert pipeline.output.sent == [] and len(pipeline.stored().buffer) == 1
    # The new owner (here: the partition assigned again) finds the buffer in the table.
    ownership.assign([tp])
    hold(ownership, ownership.token(tp))
    pipeline.model.on_call = None
    pipeline.clock.set(b"alice", tp, S + 30)
    await pipeline.tick()
    after = calls_counted("idle", "fenced_redo"), calls_counted("idle", "ok")
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)
    (event,) = pipeline.output.values
    assert event["source_message_ids"] == ["m1"]
