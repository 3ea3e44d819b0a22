"""The scale scenario's in-process part: the worker's flush timer (``streams.flush_timer``) at
many buffered users, and what it reads of the tables when partitions are assigned.

- **Per-tick work.** ``FlushTimer.tick`` with ``SMALL`` and ``LARGE`` buffered users in its
  clock, ``DUE`` of them due at each tick: the take from the clock and the flush jobs handed to
  the scheduler (a stand-in that only counts them). The median of ``TICKS`` ticks.
- **Reads on assignment.** ``FlushTimer.assigned`` then a tick with the tables restored, over
  stand-in tables holding ``profiles`` profile records and ``buffered`` buffered users (two
  entries each) in one partition: how many items of each table the rebuild reads. Once a
  partition's buffer table holds the marker that no record of the single-record release is
  left in it, the profile table is not read at all; the first assignment after the upgrade
  reads it once and writes the marker.
"""

import statistics
import time
from collections.abc import Iterator
from typing import cast

import orjson

from streams.core.buffer_layout import LEGACY_SCANNED, entry_key
from streams.core.flushing import FlushPolicy
from streams.faust_glue import ProfileTable
from streams.flush_timer import FlushTimer
from streams.pipeline.job import Job
from streams.pipeline.scheduler import KeyedScheduler

__all__ = ["assignment_reads", "tick_us"]

TOPIC = "chat-messages"
SMALL, LARGE = 10_000, 1_000_000
TICKS = 20
DUE = 100
_POLICY = FlushPolicy(idle_s=60, max_age_s=600, max_messages=1000, max_chars=10**6)


class _Ownership:
    def token(self, tp: tuple[str, int]) -> int:
        return 0


class _Scheduler:
    """What the timer uses of ``KeyedScheduler``: room for timer jobs and their submission."""

    def __init__(self) -> None:
        self.ownership = _Ownership()
        self.submitted = 0

    def timer_room(self) -> int:
        return 2 * 64  # 2 x the default PROFILE_STREAM_MAX_IN_FLIGHT

    def submit_timer(self, job: Job) -> None:
        self.submitted += 1


class _Store:
    """A RocksDB store as ``partition_items`` reads it: its databases by partition, whose
    items are counted as they are read."""

    def __init__(self, items: dict[bytes, bytes]) -> None:
        self._dbs = {0: items}
        self.read = 0

    def _visible_items(self, db: dict[bytes, bytes]) -> Iterator[tuple[bytes, bytes]]:
        for item in list(db.items()):
            self.read += 1
            yield item


class _Table:
    """A table with one partition: items read through its store, writes kept."""

    def __init__(self, items: dict[bytes, bytes]) -> None:
        self.data = _Store(items)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.data._dbs[0][key] = value  # noqa: SLF001 - the stand-in's own store


def _timer(table: _Table, buffers: _Table, scheduler: _Scheduler) -> FlushTimer:
    return FlushTimer(
        "user",
        TOPIC,
        cast(ProfileTable, table),
        cast(ProfileTable, buffers),
        cast(KeyedScheduler, scheduler),
        _POLICY,
    )


async def tick_us(users: int) -> float:
    """The median µs of a ``FlushTimer.tick`` at which ``DUE`` of ``users`` buffered users are
    due."""
    scheduler = _Scheduler()
    timer = _timer(_Table({}), _Table({}), scheduler)
    tp = (TOPIC, 0)
    for n in range(users):
        timer.clock.set(f"user-{n}".encode(), tp, 10_000.0 + n)
    ticks = []
    for _ in range(TICKS):
        for n in range(DUE):
            timer.clock.set(f"due-{n}".encode(), tp, 0.5)
        before = scheduler.submitted
        started = time.perf_counter()
        await timer.tick(1.0, restored=True)
        ticks.append((time.perf_counter() - started) * 1e6)
        assert scheduler.submitted - before == DUE  # noqa: S101 - the tick did its work
    return statistics.median(ticks)


def _entry(user: int, seq: int) -> tuple[bytes, bytes]:
    value = orjson.dumps({"source": f"{TOPIC}:0", "received": 1000.0 + seq})
    return entry_key(f"user-{user:07d}".encode(), seq), value


async def assignment_reads(profiles: int, buffered: int) -> dict[str, int]:
    """Items of each table read by the clock's rebuild at an assignment, before and after the
    partition's marker (see the module's docstring)."""
    records = {f"user-{n:07d}".encode(): b'{"format":7,"buffer_seq":0}' for n in range(profiles)}
    entries = dict(_entry(n, seq) for n in range(buffered) for seq in (0, 1))
    table, buffers = _Table(records), _Table(entries)
    timer = _timer(table, buffers, _Scheduler())
    result: dict[str, int] = {"profiles": profiles, "buffered_users": buffered}
    for when in ("first", "next"):
        table.data.read = buffers.data.read = 0
        timer.assigned({(TOPIC, 0)})
        await timer.tick(0.0, restored=True)
        result[f"{when}_profile_reads"] = table.data.read
        result[f"{when}_buffer_reads"] = buffers.data.read
        result[f"{when}_clock_users"] = len(timer.clock)
    result["marker_written"] = int(LEGACY_SCANNED in buffers.data._dbs[0])  # noqa: SLF001
    return result
