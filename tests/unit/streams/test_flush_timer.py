"""The worker's flush timer: the clock rebuilt per partition without blocking, flushes bounded."""

import asyncio
from collections.abc import Iterator
from typing import Any, cast

import pytest
from faust.streams import _current_event

from schemas import BufferedMessage, ProfileRecord
from streams import flush_timer
from streams.core.codecs import encode
from streams.core.flushing import FlushPolicy
from streams.flush_timer import FlushTimer
from streams.pipeline.buffer_store import LEGACY_SCANNED, entry_key
from streams.pipeline.job import Job
from streams.pipeline.scheduler import KeyedScheduler, SchedulerLimits
from tests.unit.helpers import buffered_message

TOPIC = "chat-messages"
POLICY = FlushPolicy(idle_s=30, max_age_s=300)


class _Store:
    """What ``partition_items`` reads of a RocksDB store: a database per partition."""

    def __init__(self) -> None:
        self._dbs: dict[int, dict[bytes, bytes]] = {}
        self.reads = 0

    def _visible_items(self, db: dict[bytes, bytes]) -> Iterator[tuple[bytes, bytes]]:
        self.reads += 1
        return iter(list(db.items()))


class _Table:
    """A table of one partition per database; a write goes where Faust's would: to the
    partition of the current event, which must be alive (Faust holds a weak reference)."""

    def __init__(self) -> None:
        self.data = _Store()

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        self.data._dbs.setdefault(partition, {})[key] = value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        ref = _current_event.get()
        event = ref() if ref is not None else None
        assert event is not None, "a table write outside any event"
        self.put(event.message.partition, key, value)


def _entry(user: str, partition: int, received: float) -> bytes:
    return encode(buffered_message(user, f"{TOPIC}:{partition}", received))


class _Run:
    def __init__(self) -> None:
        self.keys: list[bytes] = []
        self.gate = asyncio.Event()

    async def __call__(self, key: bytes, jobs: list[Job], release: object = None) -> None:
        self.keys.append(key)
        await self.gate.wait()


def _timer(run: _Run, max_in_flight: int = 64) -> tuple[FlushTimer, _Table, _Table]:
    scheduler = KeyedScheduler(run, lambda exc: None, SchedulerLimits(max_in_flight=max_in_flight))
    records, buffers = _Table(), _Table()
    timer = FlushTimer("user", TOPIC, cast(Any, records), cast(Any, buffers), scheduler, POLICY)
    return timer, records, buffers


def _assign(timer: FlushTimer, *partitions: int) -> None:
    tps = {(TOPIC, p) for p in partitions}
    timer.scheduler.assign(tps)
    timer.assigned(tps)


async def test_the_rebuild_reads_in_chunks_that_let_the_loop_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(flush_timer, "CHUNK", 10)
    timer, _, buffers = _timer(_Run())
    log: list[str] = []
    for n in range(100):
        buffers.put(0, entry_key(f"u{n:03d}".encode(), 0), _entry(f"u{n:03d}", 0, 1000.0))

    def items(db: dict[bytes, bytes]) -> Iterator[tuple[bytes, bytes]]:
        for item in list(db.items()):
            log.append("read")
            yield item

    monkeypatch.setattr(buffers.data, "_visible_items", items)

    async def other() -> None:
        log.append("other")

    _assign(timer, 0)
    reading = asyncio.create_task(timer.tick(0.0, restored=True))
    await asyncio.gather(reading, asyncio.create_task(other()))
    assert 0 < log.index("other") < 100  # the loop ran while the partition was read
    assert len(timer.clock) == 100


async def test_undecodable_entries_are_skipped_and_the_rest_of_the_partition_found() -> None:
    timer, _, buffers = _timer(_Run())
    buffers.put(0, entry_key(b"aaron", 0), b"{not json")
    buffers.put(0, entry_key(b"zoe", 0), _entry("zoe", 0, 1000.0))
    _assign(timer, 0)
    await timer.tick(0.0, restored=True)
    assert timer.clock.take_due(2000.0) == [(b"zoe", (TOPIC, 0))]


async def test_a_read_that_fails_is_done_again_at_the_next_tick(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The partitions stay to be read until a read is complete: taken off before it, one
    failure would leave their buffers out of the clock for good (review F5, proof p10)."""
    timer, _, buffers = _timer(_Run())
    buffers.put(0, entry_key(b"zoe", 0), _entry("zoe", 0, 1000.0))
    rebuild = timer.clock.rebuild

    def fail_once(found: Iterator[tuple[bytes, tuple[str, int], float]]) -> int:
        monkeypatch.setattr(timer.clock, "rebuild", rebuild)
        raise RuntimeError("the read failed")

    monkeypatch.setattr(timer.clock, "rebuild", fail_once)
    _assign(timer, 0)
    with pytest.raises(RuntimeError):
        await timer.tick(0.0, restored=True)  # the worker logs it and ticks again
    await timer.tick(0.0, restored=True)
    assert timer.clock.take_due(2000.0) == [(b"zoe", (TOPIC, 0))]


async def test_profile_records_are_read_until_a_partition_holds_no_old_buffer() -> None:
    timer, records, buffers = _timer(_Run())
    old = ProfileRecord(
        user_id="bob",
        schema_id="UserProfile/v1",
        buffer=(BufferedMessage.model_validate_json(_entry("bob", 1, 1000.0)),),
    )
    records.put(0, b"alice", encode(ProfileRecord(user_id="alice", schema_id="UserProfile/v1")))
    records.put(1, b"bob", encode(old))
    _assign(timer, 0, 1)
    await timer.tick(0.0, restored=True)
    assert timer.clock.take_due(2000.0) == [(b"bob", (TOPIC, 1))]
    # Partition 0 holds no old buffer: marked, never read again; partition 1 still does.
    assert LEGACY_SCANNED in buffers.data._dbs.get(0, {})
    assert LEGACY_SCANNED not in buffers.data._dbs.get(1, {})
    reads = records.data.reads
    _assign(timer, 0)
    await timer.tick(0.0, restored=True)
    assert records.data.reads == reads


async def test_a_tick_submits_no_more_timer_flushes_than_the_scheduler_has_room_for() -> None:
    run = _Run()
    timer, _, buffers = _timer(run, max_in_flight=2)
    for n in range(50):
        buffers.put(0, entry_key(f"u{n:02d}".encode(), 0), _entry(f"u{n:02d}", 0, 1000.0 + n))
    _assign(timer, 0)
    await timer.tick(10_000.0, restored=True)
    assert len(timer.scheduler._keys) == 4  # 2 x max_in_flight tasks, not 50
    assert len(timer.clock) == 46  # the others stay due for the next ticks
    run.gate.set()
    while timer.scheduler._keys:  # noqa: ASYNC110 - the flushes finishing
        await asyncio.sleep(0.001)
    await timer.tick(10_000.0, restored=True)
    assert len(timer.clock) == 42


async def test_a_rebalance_during_the_read_abandons_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flush_timer, "CHUNK", 1)
    timer, _, buffers = _timer(_Run())
    for n in range(5):
        buffers.put(0, entry_key(f"u{n}".encode(), 0), _entry(f"u{n}", 0, 1000.0))
    _assign(timer, 0)
    reading = asyncio.create_task(timer.tick(0.0, restored=True))
    await asyncio.sleep(0)
    timer.revoked({(TOPIC, 0)})
    await reading
    assert len(timer.clock) == 0 and timer.unread == set()
