"""The keyed scheduler: per-user order, cross-user concurrency, safe acknowledgements."""

import asyncio
import random
from collections.abc import Callable
from typing import Any

import pytest

from streams.pipeline.job import Job
from streams.pipeline.scheduler import KeyedScheduler, SchedulerLimits

Acked = list[tuple[tuple[str, int], int]]


class FakeEvent:
    """A consumed event whose acknowledgement is recorded in ``acked`` as (tp, offset)."""

    def __init__(self, acked: Acked, tp: tuple[str, int], offset: int) -> None:
        self.acked, self.tp, self.offset = acked, tp, offset

    @property
    def message(self) -> Any:
        raise AssertionError("the scheduler never reads the record")

    def ack(self) -> None:
        self.acked.append((self.tp, self.offset))


async def drained(sched: KeyedScheduler) -> None:
    """Wait until every submitted job is finished and acknowledged."""
    while sched.pending:  # noqa: ASYNC110 - the scheduler keeps no idle event; polling is enough here
        await asyncio.sleep(0.001)


class Recorder:
    """A ``run`` that takes ``delay`` seconds and records what ran and what overlapped."""

    def __init__(self, delay: float = 0.01, fail_on: bytes | None = None) -> None:
        self.delay, self.fail_on = delay, fail_on
        self.batches: list[tuple[bytes, list[int]]] = []
        self.running: set[bytes] = set()
        self.overlaps = 0
        self.peak = 0
        self.peak_counted = 0  # the scheduler's own in-flight gauge, sampled in each batch
        self.acked: Acked = []
        self.fatal: list[BaseException] = []

    async def run(self, key: bytes, jobs: list[Job], release: object = None) -> None:
        if key in self.running:
            self.overlaps += 1
        self.running.add(key)
        self.peak = max(self.peak, len(self.running))
        self.peak_counted = max(self.peak_counted, self.sched.counters.in_flight)
        await asyncio.sleep(self.delay * random.random())
        self.running.discard(key)
        if key == self.fail_on:
            raise RuntimeError("boom")
        self.batches.append((key, [j.offset for j in jobs]))

    def scheduler(self, **limits: float) -> KeyedScheduler:
        settings = SchedulerLimits(**limits)  # type: ignore[arg-type]
        self.sched = KeyedScheduler(self.run, self.fatal.append, settings)
        return self.sched

    def job(self, key: str, offset: int, partition: int = 0, **kw: Any) -> Job:
        return job(key, offset, partition, acked=self.acked, **kw)


def job(
    key: str,
    offset: int,
    partition: int = 0,
    coalesce: bool = True,
    waited_s: float = 0.0,
    acked: Acked | None = None,
) -> Job:
    tp = ("t", partition)
    return Job(
        key=key.encode(),
        tp=tp,
        offset=offset,
        event=FakeEvent(acked if acked is not None else [], tp, offset),
        size=10,
        coalesce=coalesce,
        waited_s=waited_s,
    )


async def test_each_user_runs_in_order_without_overlap_while_users_run_together() -> None:
    rec = Recorder()
    sched = rec.scheduler(window_s=0, max_batch=1)
    for offset in range(200):
        key = f"u{offset % 20}"
        await sched.submit(job(key, offset, partition=offset % 20 % 4))
    await drained(sched)
    assert rec.overlaps == 0
    assert rec.peak > 1
    for key in {k for k, _ in rec.batches}:
        offsets = [o for k, batch in rec.batches if k == key for o in batch]
        assert offsets == sorted(offsets) and len(offsets) == 10


async def test_acknowledgements_follow_offset_order_per_partition() -> None:
    rec = Recorder(delay=0.02)
    sched = rec.scheduler(window_s=0, max_batch=1)
    for offset in range(100):
        await sched.submit(rec.job(f"u{offset}", offset, partition=offset % 3))
    await drained(sched)
    for partition in range(3):
        acked = [o for tp, o in rec.acked if tp == ("t", partition)]
        assert acked == sorted(acked) and len(acked) == len(range(partition, 100, 3))


async def test_a_slow_head_holds_back_acks_of_later_offsets() -> None:
    gate = asyncio.Event()
    acked: Acked = []

    async def run(key: bytes, jobs: list[Job], release: object = None) -> None:
        if key == b"slow":
            await gate.wait()

    sched = KeyedScheduler(run, print, SchedulerLimits(window_s=0))
    await sched.submit(job("slow", 0, acked=acked))
    for offset in range(1, 5):
        await sched.submit(job(f"fast{offset}", offset, acked=acked))
    for _ in range(20):
        await asyncio.sleep(0)
    assert acked == []
    gate.set()
    await drained(sched)
    assert [o for _, o in acked] == [0, 1, 2, 3, 4]


async def test_messages_arriving_while_a_user_is_busy_join_its_next_batch() -> None:
    rec = Recorder(delay=0.05)
    sched = rec.scheduler(window_s=0.0, max_batch=5)
    for offset in range(12):
        await sched.submit(job("u", offset))
    await drained(sched)
    sizes = [len(batch) for _, batch in rec.batches]
    assert sizes[0] >= 1 and max(sizes) <= 5
    assert len(rec.batches) < 12
    assert [o for _, b in rec.batches for o in b] == list(range(12))


async def test_a_window_merges_close_messages_and_commands_run_alone() -> None:
    rec = Recorder(delay=0.0)
    sched = rec.scheduler(window_s=0.05, max_batch=20)
    await sched.submit(job("u", 0))
    await sched.submit(job("u", 1))
    await sched.submit(job("u", 2, coalesce=False))
    await sched.submit(job("u", 3))
    await drained(sched)
    assert [b for _, b in rec.batches] == [[0, 1], [2], [3]]


async def test_a_backlogged_users_messages_share_a_call_while_fresh_ones_keep_the_window() -> None:
    rec = Recorder(delay=0.0)
    sched = rec.scheduler(window_s=0.01, catch_up_window_s=2, max_batch=20)
    await sched.submit(job("behind", 0, waited_s=60))  # sat in Kafka for a minute
    await sched.submit(job("fresh", 1))
    await asyncio.sleep(0.1)  # the next messages come later than the short window
    await sched.submit(job("behind", 2, waited_s=60))
    await sched.submit(job("fresh", 3))
    await drained(sched)
    batches = {key: [b for k, b in rec.batches if k == key] for key in (b"behind", b"fresh")}
    assert batches == {b"behind": [[0, 2]], b"fresh": [[1], [3]]}


async def test_a_backlog_read_to_its_end_runs_without_waiting_out_the_catch_up_window() -> None:
    rec = Recorder(delay=0.0)
    sched = rec.scheduler(window_s=0.01, catch_up_window_s=4)  # idle after a quarter: 1 s
    await sched.submit(job("behind", 0, waited_s=60))
    await sched.submit(job("behind", 1, waited_s=60))
    await asyncio.wait_for(drained(sched), 2.5)  # well before the 4 s window
    assert [b for _, b in rec.batches] == [[0, 1]]


async def test_a_full_scheduler_runs_what_it_holds_instead_of_waiting_to_catch_up() -> None:
    rec = Recorder(delay=0.0)
    sched = rec.scheduler(window_s=0.01, catch_up_window_s=60, max_pending=3)
    for offset in range(3):
        await sched.submit(job(f"u{offset}", offset, waited_s=120))
    fourth = asyncio.create_task(sched.submit(job("u3", 3)))
    await asyncio.wait_for(fourth, 5)  # not a minute: held jobs ran once nothing more fit
    await drained(sched)
    assert sorted(o for _, b in rec.batches for o in b) == [0, 1, 2, 3]


async def test_in_flight_batches_never_exceed_the_limit() -> None:
    rec = Recorder(delay=0.02)
    sched = rec.scheduler(window_s=0, max_in_flight=4)
    for offset in range(40):
        await sched.submit(job(f"u{offset}", offset))
    await drained(sched)
    assert rec.peak <= 4 and rec.peak_counted <= 4


async def test_submit_waits_when_too_many_jobs_are_held() -> None:
    gate = asyncio.Event()

    async def run(key: bytes, jobs: list[Job], release: object = None) -> None:
        await gate.wait()

    sched = KeyedScheduler(run, print, SchedulerLimits(window_s=0, max_pending=3))
    for offset in range(3):
        await sched.submit(job(f"u{offset}", offset))
    blocked = asyncio.create_task(sched.submit(job("u9", 9)))
    await asyncio.sleep(0.01)
    assert not blocked.done()
    gate.set()
    await asyncio.wait_for(blocked, 1)
    await drained(sched)
    assert sched.pending == 0


async def test_a_crashing_batch_is_reported_not_swallowed() -> None:
    rec = Recorder(fail_on=b"bad")
    sched = rec.scheduler(window_s=0)
    await sched.submit(job("bad", 0))
    for _ in range(50):
        await asyncio.sleep(0.001)
        if rec.fatal:
            break
    assert [str(e) for e in rec.fatal] == ["boom"]


@pytest.mark.parametrize("partition", [0, 1])
async def test_skipped_jobs_keep_their_place_in_the_ack_order(partition: int) -> None:
    rec = Recorder(delay=0.02)
    sched = rec.scheduler(window_s=0)
    await sched.submit(rec.job("u", 0, partition))
    await sched.skip(rec.job("bad", 1, partition))
    await sched.submit(rec.job("u", 2, partition))
    await drained(sched)
    assert [o for _, o in rec.acked] == [0, 1, 2]


async def test_a_released_slot_lets_the_next_batch_start_while_results_are_written() -> None:
    writing = asyncio.Event()
    started: list[bytes] = []

    async def run(key: bytes, jobs: list[Job], release: Callable[[], None]) -> None:
        started.append(key)
        if key == b"first":
            release()  # the model call is over
            await writing.wait()  # still writing its results

    sched = KeyedScheduler(run, print, SchedulerLimits(window_s=0, max_in_flight=1))
    await sched.submit(job("first", 0))
    await sched.submit(job("second", 1))
    for _ in range(20):
        await asyncio.sleep(0)
    assert started == [b"first", b"second"]
    writing.set()
    await drained(sched)


def _gated(gate: asyncio.Event, ran: list[bytes]) -> Callable[..., Any]:
    async def run(key: bytes, jobs: list[Job], release: object = None) -> None:
        ran.append(key)
        await gate.wait()

    return run


async def test_stop_lets_running_batches_finish_and_starts_no_more() -> None:
    gate, ran, acked = asyncio.Event(), [], []
    sched = KeyedScheduler(
        _gated(gate, ran),
        print,
        SchedulerLimits(window_s=0, catch_up_window_s=0, max_in_flight=1),
    )
    await sched.submit(job("a", 0, acked=acked))
    await sched.submit(job("b", 1, acked=acked))
    for _ in range(10):
        await asyncio.sleep(0)  # "a" holds the one slot, "b" waits for it
    stopping = asyncio.create_task(sched.stop(grace_s=5))
    for _ in range(10):
        await asyncio.sleep(0)
    gate.set()
    assert await stopping == 0
    assert ran == [b"a"] and [o for _, o in acked] == [
        0
    ]  # "b" stays unacknowledged: Kafka redelivers it


async def test_stop_cancels_batches_that_outlast_the_grace() -> None:
    ran: list[bytes] = []
    acked: Acked = []
    sched = KeyedScheduler(_gated(asyncio.Event(), ran), print, SchedulerLimits())
    await sched.submit(job("a", 0, coalesce=False, acked=acked))
    for _ in range(10):
        await asyncio.sleep(0)
    assert await sched.stop(grace_s=0.05) == 1
    assert ran == [b"a"] and acked == [] and sched.pending == 1


async def test_a_timer_job_runs_alone_behind_the_users_jobs_and_acknowledges_nothing() -> None:
    rec = Recorder(delay=0.005)
    sched = rec.scheduler(window_s=0.0)
    tp = ("t", 0)
    for offset in range(3):
        await sched.submit(rec.job("alice", offset))
    sched.submit_timer(Job.flush(b"alice", tp, FakeEvent([], tp, -1), sched.ownership.token(tp)))
    await sched.submit(rec.job("alice", 3))
    await drained(sched)
    while any(key == b"alice" for key in sched._keys):  # noqa: ASYNC110 - the timer job
        await asyncio.sleep(0.001)
    offsets = [offsets for key, offsets in rec.batches if key == b"alice"]
    assert [-1] in offsets  # the timer's job ran, alone, in submission order
    flat = [o for batch in offsets for o in batch]
    assert flat.index(-1) > flat.index(2)
    assert sorted(o for _, o in rec.acked) == [0, 1, 2, 3]  # only the inputs


async def test_a_timer_job_of_a_partition_gone_is_dropped() -> None:
    rec = Recorder()
    sched = rec.scheduler()
    tp = ("t", 0)
    token = sched.ownership.token(tp)
    await sched.revoke([tp], grace_s=0)
    sched.submit_timer(Job.flush(b"alice", tp, FakeEvent([], tp, -1), token))
    assert sched._keys == {} and rec.batches == []


async def test_a_timer_job_submitted_during_the_revoke_grace_never_runs() -> None:
    rec = Recorder(delay=0.0)
    sched = rec.scheduler(window_s=0.0)
    tp = ("t", 0)
    started, finish = asyncio.Event(), asyncio.Event()
    ran: list[bytes] = []

    async def run(key: bytes, jobs: list[Job], release: object = None) -> None:
        ran.append(key)
        if key == b"alice":
            started.set()
            await finish.wait()

    sched._run = run  # type: ignore[method-assign]
    await sched.submit(rec.job("alice", 0))
    await started.wait()
    revoking = asyncio.create_task(sched.revoke([tp], grace_s=5.0))
    await asyncio.sleep(0)  # the revoke is in its grace, waiting for alice's batch
    sched.submit_timer(Job.flush(b"bob", tp, FakeEvent([], tp, -1), sched.ownership.token(tp)))
    finish.set()
    await revoking
    for _ in range(10):
        await asyncio.sleep(0)
    assert ran == [b"alice"]


async def test_timer_jobs_outstanding_are_bounded_by_twice_the_in_flight_limit() -> None:
    rec = Recorder(delay=0.0)
    sched = rec.scheduler(window_s=0.0, max_in_flight=2)
    tp = ("t", 0)
    gate = asyncio.Event()

    async def run(key: bytes, jobs: list[Job], release: object = None) -> None:
        await gate.wait()

    sched._run = run  # type: ignore[method-assign]
    assert sched.timer_room() == 4
    for n in range(4):
        token = sched.ownership.token(tp)
        sched.submit_timer(Job.flush(f"u{n}".encode(), tp, FakeEvent([], tp, -1), token))
    assert sched.timer_room() == 0
    gate.set()
    while sched._keys:  # noqa: ASYNC110 - the timer jobs finishing
        await asyncio.sleep(0.001)
    assert sched.timer_room() == 4
