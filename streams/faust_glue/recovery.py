"""Faust's table recovery, with the active changelog partitions restored in bulk first.

Faust restores a table partition through its consumer: a task pair per record in its consumer
loop, a queue read and a count over every partition per record in its recovery loop, about a
tenth of a plain consumer's pace (bench/README.md, "Scale"). Here, inside Faust's recovery stage
(not in the rebalance callback: the group's heartbeats go on), right before Faust seeks the
active changelog partitions to their persisted offsets, :class:`BulkRestore` reads them to the
highwaters Faust has just taken and writes them into the partition databases, moving Faust's
offsets with each write. Faust then seeks there and finds nothing left to read; its own path
restores whatever the bulk restore did not (a table it does not handle, a failure: logged at
WARNING), and the standby partitions, which it reads after the worker is ready.

A rebalance or a stop while it runs cancels it between two fetches, as Faust cancels its own
steps (``Recovery._wait``); a revocation, or a partition that left the worker, ends it before
the next write. Either way each database holds what its persisted offset says, and the next
recovery resumes from there: a restore stopped by a revocation waits for the assignment that
follows, so Faust's recovery starts over on it instead of going on with partition sets and
offsets the assignment rewrites in place (a standby seeked to an offset not built yet crashed
the worker). Faust's seek after it keeps the request timeout, as our own
``wait_for``: a seek that times out raises, and Faust's recovery service crashes on it as on
any error of its own, where Faust's timeout would have ended recovery silently.

Internal: replaces ``TableManager._recovery`` (the ``recovery`` property creates it on first
use) with a ``Recovery`` whose ``_seek_offsets`` for the actives restores first, and whose
``_wait`` lets that step run without Faust's request timeout (there, a timeout stops recovery
for good). Reads ``tp_to_table``, ``active_highwaters``, ``active_tps`` and ``_generation_id``, and
the app's ``rebalancing_count``.
"""

import asyncio
import logging
import time
from collections.abc import Coroutine, MutableMapping
from typing import Any, cast

import faust
from faust.tables.recovery import RebalanceAgain, Recovery
from faust.types import TP
from faust.types.transports import ConsumerT
from mode.services import WaitArgT
from mode.utils.times import Seconds

from streams.core.changelog_restore import PartitionRestore
from streams.faust_glue.bulk_restore import (
    BulkRestore,
    PartitionRevoked,
    RestoreTarget,
    rocksdb_store,
)

__all__ = ["restore_changelogs_in_bulk"]

logger = logging.getLogger(__name__)


def restore_changelogs_in_bulk(app: faust.App) -> None:
    """Restore ``app``'s active table partitions in bulk before Faust's recovery reads what is
    left. Call right after creating the app, before the worker starts."""
    tables = cast(Any, app.tables)
    assert tables._recovery is None, "recovery already created"  # noqa: S101, SLF001
    # No loop given: bound on first use, inside the worker's loop (Faust passes its own).
    tables._recovery = _BulkRecovery(app, tables, beacon=tables.beacon)  # noqa: SLF001


class _BulkRecovery(Recovery):
    _untimed_step = False

    def _seek_offsets(
        self, consumer: ConsumerT, tps: set[TP], offsets: Any, title: str
    ) -> Coroutine[Any, Any, None]:
        if title != "active":
            return self._seek_unless_reassigned(consumer, tps, offsets, title)
        self._untimed_step = True  # for the _wait Faust calls with this step, next
        return self._restore_then_seek(consumer, tps, offsets)

    async def _seek_unless_reassigned(
        self, consumer: ConsumerT, tps: set[TP], offsets: Any, title: str
    ) -> None:
        # Faust's on_rebalance rewrites the offsets and partition sets in place, and its recovery
        # loop learns of it only at its next wait: a seek after a newer assignment would use the
        # new one's offsets before they are built (None for a new standby: aiokafka raises
        # "Offset must be a positive integer" and the worker crashes). Start over instead.
        if self.signal_recovery_start.is_set():
            raise RebalanceAgain
        await super()._seek_offsets(consumer, tps, offsets, title)

    async def _wait(self, coro: WaitArgT, timeout: Seconds | None = None) -> None:  # noqa: ASYNC109
        untimed, self._untimed_step = self._untimed_step, False
        await super()._wait(coro, timeout=None if untimed else timeout)

    async def _restore_then_seek(
        self, consumer: ConsumerT, tps: set[TP], offsets: MutableMapping[TP, int]
    ) -> None:
        if not await self._restore(tps, offsets):
            # A rebalance has begun: wait for its assignment, on which Faust's _wait around this
            # step raises RebalanceAgain (or ServiceStopped), rather than go on with a recovery
            # whose partitions and offsets the assignment rewrites under it.
            await self.signal_recovery_start.wait()
        seek = self._seek_unless_reassigned(consumer, tps, cast(Any, offsets), "active")
        await asyncio.wait_for(seek, timeout=self.app.conf.broker_request_timeout)

    async def _restore(self, tps: set[TP], offsets: MutableMapping[TP, int]) -> bool:
        """Restore ``tps`` in bulk; False if a rebalance stopped it."""
        started, generation = time.monotonic(), self._generation_id
        restore: BulkRestore | None = None
        try:
            targets = self._targets(tps, offsets)
            if not targets:
                return True
            app = cast(faust.App, self.app)
            restore = BulkRestore(app, targets, offsets, self._assigned(generation))
            await restore.run()
        except asyncio.CancelledError:  # by Faust: a rebalance started, or the worker stops
            logger.info("bulk restore cancelled: a rebalance or a stop")
            raise
        except PartitionRevoked:
            logger.info("bulk restore stopped: a rebalance started")
            return False
        except Exception as exc:  # noqa: BLE001 - Faust's recovery restores the rest
            logger.warning(
                "bulk restore failed, Faust's recovery restores the rest: error=%s",
                type(exc).__name__,
                exc_info=True,
            )
        else:
            logger.info(
                "bulk restore done partitions=%d records=%d seconds=%.2f slowest_write_ms=%.1f",
                len(restore.targets),
                restore.records,
                time.monotonic() - started,
                restore.slowest_write_s * 1000,
            )
        return True

    def _targets(self, tps: set[TP], offsets: MutableMapping[TP, int]) -> list[RestoreTarget]:
        targets = []
        for tp in sorted(tps):
            store = rocksdb_store(self.tp_to_table.get(tp))
            progress = PartitionRestore.plan(offsets.get(tp), self.active_highwaters.get(tp))
            if store is not None and progress is not None:
                targets.append(RestoreTarget.open(tp, store, progress))
        return targets

    def _assigned(self, generation: int) -> Any:
        # A revocation counts a rebalance at once (in the consumer thread, App.on_rebalance_start);
        # the generation and the recovery's signal change only once partitions are assigned.
        rebalances = self.app.rebalancing_count

        def assigned(tp: TP) -> bool:
            return (
                tp in self.active_tps
                and self.app.rebalancing_count == rebalances
                and self.app.consumer_generation_id == generation
                and not self.signal_recovery_start.is_set()
            )

        return assigned
