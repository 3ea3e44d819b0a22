"""One kind's flush timer in the worker: its clock rebuilt from the tables, due flushes submitted.

Wiring over Faust: what is due and how the clock finds buffers is in
:mod:`streams.pipeline.flush_clock`; table internals are read through :mod:`streams.faust_glue`.

- **Rebuild.** The partitions assigned since the last tick are read once their tables are
  restored: the buffer table of each, one partition at a time, in chunks that yield to the event
  loop (so the web server and the batches go on during a large read). The profile table is read
  too, for buffers inside records of the single-record release, until a read of a partition finds
  none: a marker in that partition of the buffer table (``LEGACY_SCANNED``) then says it never
  needs reading again. A rebalance during the read abandons it; the next assignment reads again.
- **Backpressure.** Each tick takes from the clock only as many due subjects as the scheduler has
  room for (:meth:`KeyedScheduler.timer_room`); the rest stay due, earliest first, for the next
  ticks. Downtime therefore never turns into a task per buffered user.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Set
from dataclasses import dataclass, field

from streams.core.buffer_layout import LEGACY_SCANNED
from streams.core.flushing import FlushPolicy
from streams.faust_glue import ProfileTable, make_event_current, partition_event, partition_items
from streams.pipeline.flush_clock import BufferScan, FlushClock
from streams.pipeline.job import Job
from streams.pipeline.ownership import TopicPartition
from streams.pipeline.scheduler import KeyedScheduler

__all__ = ["FlushTimer"]

logger = logging.getLogger(__name__)

#: Items read between two yields to the event loop while rebuilding the clock.
CHUNK = 2_000


@dataclass
class FlushTimer:
    """One kind's flush clock, kept in step with the partitions this worker holds."""

    kind: str
    topic: str
    table: ProfileTable
    buffers: ProfileTable
    scheduler: KeyedScheduler
    policy: FlushPolicy
    clock: FlushClock = field(default_factory=FlushClock)
    #: Partitions assigned whose buffers are not in ``clock`` yet (read once restored).
    unread: set[TopicPartition] = field(default_factory=set)
    #: Moves at every assignment and revocation: a read under an older one is abandoned.
    _epoch: int = 0

    def assigned(self, tps: Set[TopicPartition]) -> None:
        """A new ownership: read what the restored tables hold for this kind's partitions."""
        self._epoch += 1
        self.clock.drop(tps)
        self.unread |= {tp for tp in tps if tp[0] == self.topic}

    def revoked(self, tps: Set[TopicPartition]) -> None:
        """Partitions leaving: their subjects leave the clock, an ongoing read is abandoned."""
        self._epoch += 1
        self.clock.drop(tps)
        self.unread -= tps

    async def tick(self, now: float, restored: bool) -> None:
        """Read the new partitions' buffers (once ``restored``), then submit the flushes due."""
        if self.unread and restored:
            await self._read()
        for key, tp in self.clock.take_due(now, limit=self.scheduler.timer_room()):
            token = self.scheduler.ownership.token(tp)
            self.scheduler.submit_timer(Job.flush(key, tp, partition_event(tp), token))

    async def _read(self) -> None:
        tps, self.unread = self.unread, set()
        epoch, started = self._epoch, time.monotonic()
        scan = BufferScan(self.policy)
        try:
            for tp in sorted(tps):
                if not await self._read_partition(tp, scan, epoch):
                    return  # a rebalance: its assignment reads again
            found = self.clock.rebuild(scan.found(tps))
        except BaseException:
            self.unread |= tps  # read again at the next tick, not never
            raise
        logger.info(
            "buffers read kind=%s partitions=%d buffers=%d skipped=%d seconds=%.2f",
            self.kind,
            len(tps),
            found,
            len(scan.skipped),
            time.monotonic() - started,
        )

    async def _read_partition(self, tp: TopicPartition, scan: BufferScan, epoch: int) -> bool:
        """Feed ``scan`` with partition ``tp``; False when a rebalance interrupted it."""
        legacy_read = False

        def entry(key: bytes, raw: bytes) -> None:
            nonlocal legacy_read
            legacy_read = legacy_read or key == LEGACY_SCANNED
            scan.entry(key, raw)

        if not await self._chunks(partition_items(self.buffers, tp[1]), entry, epoch):
            return False
        if legacy_read:
            return True
        embedded = scan.embedded
        if not await self._chunks(partition_items(self.table, tp[1]), scan.record, epoch):
            return False
        if scan.embedded == embedded:  # none left in this partition: never read it again
            stand_in = partition_event(tp)  # held: Faust keeps only a weak reference to it
            make_event_current(stand_in)
            self.buffers[LEGACY_SCANNED] = b"1"
            make_event_current(None)
        return True

    async def _chunks(
        self,
        items: Iterator[tuple[bytes, bytes]],
        feed: Callable[[bytes, bytes], None],
        epoch: int,
    ) -> bool:
        for n, (key, raw) in enumerate(items, start=1):
            feed(key, raw)
            if n % CHUNK == 0:
                await asyncio.sleep(0)
                if epoch != self._epoch:
                    return False
        return epoch == self._epoch
