"""A batch's wait for more of its user's messages: the coalescing window, the catch-up window,
and the catch-up wait's end once every partition is read to its end."""

import asyncio

from streams.pipeline.coalescing import BacklogEnds, Windows
from streams.pipeline.job import Job


def _job(partition: int, waited_s: float) -> Job:
    loop = asyncio.get_running_loop()
    job = Job(key=b"u", tp=("t", partition), offset=0, event=None, waited_s=waited_s)
    job.arrived = loop.time()
    return job


def _windows(ends: BacklogEnds, *, catch_up_window_s: float = 60.0) -> Windows:
    # Submits keep coming (the last one "now"), so only the windows and the end decide.
    return Windows(0.2, catch_up_window_s, asyncio.get_running_loop().time, lambda: False, ends)


async def _waited(windows: Windows, job: Job, wake: asyncio.Event | None = None) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(windows.wait(job, wake or asyncio.Event()), 10)
    return loop.time() - started


async def _catching_up_while_two_partitions_are_read(ends: BacklogEnds) -> asyncio.Task[float]:
    """A backlogged batch of partition 0 in its catch-up wait, partitions 0 and 1 being read."""
    ends.read_to(("t", 0), end=False)
    ends.read_to(("t", 1), end=False)
    waiting = asyncio.create_task(_waited(_windows(ends), _job(0, waited_s=120)))
    await asyncio.sleep(0)  # the wait has started
    return waiting


async def test_a_catch_up_wait_ends_once_every_partition_is_read_to_its_end() -> None:
    ends = BacklogEnds()
    waiting = await _catching_up_while_two_partitions_are_read(ends)
    ends.read_to(("t", 0), end=True)  # its own partition: the other one is still being read
    await asyncio.sleep(0.05)
    assert not waiting.done()
    ends.read_to(("t", 1), end=True)
    assert await waiting < 1  # not the 60 s catch-up window


async def test_a_partition_no_longer_read_here_does_not_hold_the_waits_back() -> None:
    ends = BacklogEnds()
    waiting = await _catching_up_while_two_partitions_are_read(ends)
    ends.forget([("t", 1)])  # revoked
    ends.read_to(("t", 0), end=True)
    assert await waiting < 1


async def test_a_backlogged_batch_does_not_wait_once_everything_is_read() -> None:
    ends = BacklogEnds()
    ends.read_to(("t", 0), end=False)
    ends.read_to(("t", 0), end=True)
    assert await _waited(_windows(ends), _job(0, waited_s=120)) < 0.05


async def test_a_fresh_message_keeps_its_coalescing_window_at_the_end() -> None:
    ends = BacklogEnds()
    ends.read_to(("t", 0), end=True)  # live traffic: every message is the last one read
    assert 0.15 < await _waited(_windows(ends), _job(0, waited_s=0.0)) < 1


async def test_a_catch_up_wait_over_is_not_woken_again() -> None:
    ends = BacklogEnds()
    ends.read_to(("t", 0), end=False)
    wake = asyncio.Event()
    windows = _windows(ends, catch_up_window_s=0.3)  # a short one, waited out
    await _waited(windows, _job(0, waited_s=120), wake)
    ends.read_to(("t", 0), end=True)
    assert not wake.is_set()  # the key's event is its own again, for its next batch
