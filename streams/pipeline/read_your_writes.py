"""Read-your-writes on the worker that owns a user: wait until a message is reflected, or flush
the user's buffer now and wait for that flush.

Pure asyncio (no Faust): the wiring (``streams.app``) gives it the table, the scheduler, the
input partition's end offset and the event a flush's table write is routed by.

Waiting is driven by events, never by polling: a reader waits on an ``asyncio.Event`` of its
key, set when the publisher writes that user's record (``Publisher.on_stored``) or when the
agent hands on an input record of that partition (:meth:`ReadYourWrites.passed`); on each wake
it looks at the stored record again. At most ``limit`` reads wait at once on a worker: one more
is answered :attr:`Waited.BUSY` at once, so waiting reads cannot pile up without bound.

A refresh includes every message published before it: it asks the broker for the end of the
user's input partition, waits until the agent has handed on every record before that end (each
joins its user's queue in the scheduler in offset order), then queues a forced flush behind
them. The flush extracts what the buffer holds then; an empty buffer costs nothing, not even a
write. A user over the daily token budget is not flushed (the budget holds for readers too):
the answer's freshness shows the messages still buffered.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field

from schemas import ProfileRecord
from streams import metrics
from streams.core.codecs import decode_record
from streams.core.freshness import Waited, reflects
from streams.core.partitioning import partition_for
from streams.pipeline.job import Job, TopicPartition
from streams.pipeline.ports import EventHandle
from streams.pipeline.scheduler import KeyedScheduler

__all__ = ["ReadYourWrites", "Waiting"]

logger = logging.getLogger(__name__)


class Waiting:
    """Readers waiting for something of a key to change, at most ``limit`` at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._events: dict[Hashable, set[asyncio.Event]] = defaultdict(set)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def notify(self, key: Hashable) -> None:
        """Something of ``key`` changed: wake its readers (they look again)."""
        for event in self._events.get(key, ()):
            event.set()

    async def until(self, key: Hashable, ready: Callable[[], bool], timeout_s: float) -> Waited:
        """Wait until ``ready()`` holds, looking again each time ``key`` is notified."""
        if ready():
            return Waited.FRESH
        if self._count >= self.limit:
            return Waited.BUSY
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        event = asyncio.Event()
        self._events[key].add(event)
        self._count += 1
        try:
            while True:
                event.clear()  # no await between this and ready(): no wake is missed
                if ready():
                    return Waited.FRESH
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return Waited.TIMED_OUT
                try:
                    await asyncio.wait_for(event.wait(), remaining)
                except TimeoutError:
                    return Waited.FRESH if ready() else Waited.TIMED_OUT
        finally:
            self._count -= 1
            waiters = self._events[key]
            waiters.discard(event)
            if not waiters:
                del self._events[key]


@dataclass
class ReadYourWrites:
    """The user kind's read-your-writes on this worker (see the module docstring)."""

    #: The user kind's profile table.
    table: Mapping[bytes, bytes]
    scheduler: KeyedScheduler
    #: The input topic and its partition count (a user's partition, by its key).
    input_topic: str
    partitions: int
    #: The end offset of an input partition, asked of the broker.
    end_offset: Callable[[TopicPartition], Awaitable[int]]
    #: The event a flush's table write is routed by (``streams.faust_glue.partition_event``).
    event_for: Callable[[TopicPartition], EventHandle]
    waiting: Waiting
    #: Per input partition, where this ownership began reading (its committed offset).
    start_of: Callable[[TopicPartition], int | None] = lambda tp: None
    #: Per input partition, the offset after the last record the agent handed on.
    _passed: dict[TopicPartition, int] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        metrics.gauge(
            "waiting_reads",
            "Reads waiting for freshness (?wait_for, refresh); at most "
            "PROFILE_STREAM_MAX_WAITING_READS",
            lambda: len(self.waiting),
        )

    def stored(self, key: bytes) -> None:
        """The publisher wrote ``key``'s record (``Publisher.on_stored``)."""
        self.waiting.notify(key)

    def passed(self, tp: TopicPartition, offset: int) -> None:
        """The agent handed on the record at ``offset`` of ``tp`` (submitted or skipped)."""
        self._passed[tp] = max(offset + 1, self._passed.get(tp, 0))
        self.waiting.notify(tp)

    def forget(self, tps: set[TopicPartition]) -> None:
        """``tps`` were revoked or assigned anew: what was handed on before counts no more."""
        for tp in tps:
            self._passed.pop(tp, None)

    async def reflected(self, subject: str, message_id: str, timeout_s: float) -> Waited:
        """Wait until ``subject``'s stored profile reflects ``message_id``."""
        key = subject.encode()
        return await self.waiting.until(
            key, lambda: reflects(self._record(key), message_id), timeout_s
        )

    async def refresh(self, subject: str, timeout_s: float) -> Waited:
        """Flush ``subject``'s buffer, with every message published before now, and wait for
        that flush to be applied."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        key = subject.encode()
        tp = (self.input_topic, partition_for(key, self.partitions))
        try:
            end = await asyncio.wait_for(self.end_offset(tp), timeout_s)
        except TimeoutError:
            return Waited.TIMED_OUT
        asked = loop.time()
        caught_up = await self.waiting.until(
            tp, lambda: self._handed_on(tp) >= end, deadline - loop.time()
        )
        logger.debug(
            "refresh user_id=%s end_offset_s=%.3f caught_up_s=%.3f waited=%s",
            subject,
            asked - deadline + timeout_s,
            loop.time() - asked,
            caught_up.value,
        )
        if caught_up is not Waited.FRESH:
            return caught_up
        flushed: list[bool] = []

        def done() -> None:
            flushed.append(True)
            self.waiting.notify(key)

        token = self.scheduler.ownership.token(tp)
        job = Job.flush(key, tp, self.event_for(tp), token, forced=True, on_done=done)
        if not self.scheduler.submit_timer(job):
            return Waited.NOT_OWNER
        return await self.waiting.until(key, lambda: bool(flushed), deadline - loop.time())

    def _handed_on(self, tp: TopicPartition) -> int:
        """The offset before which the agent handed on every record of ``tp``: the records
        before where this ownership began were applied by an earlier one."""
        return max(self._passed.get(tp, 0), self.start_of(tp) or 0)

    def _record(self, key: bytes) -> ProfileRecord | None:
        raw = self.table.get(key)
        return decode_record(raw) if raw is not None else None
