"""Publishing a new version: the table and the ``profile-updated`` topic never disagree for long.

Every version goes through the same steps, each finished before the next starts::

    PENDING_STORED   the record is stored with the event it owes (its pending event)
    CHANGELOG_ACKED  Kafka acknowledged that changelog write: the version survives a crash
    EMITTED          the event is delivered on the output topic
    FINAL            the record is stored without its pending event (after a forget: the
                     tombstone, which keeps the version and the applied offsets)

So wherever the worker is killed, no event is announced before its version is durable, and a
record that still owes its event is found by the next batch of that key, which resumes from
PENDING_STORED (:meth:`Publisher.resume`): the event is emitted again, with the same id and
bytes, and the record finished. Subscribers may see an event twice, never a version missing.

Right before each table write, the changelog wait and the emit, the batch's ownership of its
partition is checked (:func:`streams.pipeline.ownership.check_owned`): once the partition is
revoked, the batch stops there (``Fenced``), so an old owner never publishes a version that the
new owner publishes too.
"""

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from schemas import ProfileEvent, ProfileRecord
from streams.core.codecs import encode
from streams.core.kinds import Kind
from streams.core.records import settled, stored_form
from streams.metrics import VERSIONS
from streams.pipeline.ownership import check_owned
from streams.pipeline.ports import EventHandle, Sender

__all__ = ["Publisher", "PublishState", "Publication"]

logger = logging.getLogger(__name__)


class PublishState(Enum):
    """How far a version got on its way out (see the module docstring)."""

    PENDING_STORED = 1
    CHANGELOG_ACKED = 2
    EMITTED = 3
    FINAL = 4


@dataclass
class Publication:
    """One version on its way out: its key, its event, and the last step it finished."""

    key: bytes
    event: ProfileEvent
    state: PublishState = PublishState.PENDING_STORED

    def reached(self, state: PublishState) -> None:
        """Record that ``state`` is reached; steps are never skipped nor repeated."""
        if state.value != self.state.value + 1:
            raise RuntimeError(f"publish step {state.name} after {self.state.name}")
        self.state = state


def _no_event_to_make_current(event: EventHandle | None) -> None:
    return None


async def _acked_now(key: bytes) -> None:
    return None


def _nobody_waits(key: bytes) -> None:
    return None


@dataclass
class Publisher:
    """Stores one kind's records and emits their events, in the steps of the module docstring.

    Responsibilities:
    - write a record with the consumed event current (Faust routes the write by it);
    - wait for the changelog write of one key, then emit and await the delivery;
    - resume a version a killed worker left pending.
    """

    kind: Kind
    table: MutableMapping[bytes, bytes]
    output: Sender
    #: Drops what the extractor keeps about a subject (its cached answers).
    purge: Callable[[str], Awaitable[Any]]
    #: Makes a consumed event current in this task before a table write.
    make_event_current: Callable[[EventHandle | None], None] = _no_event_to_make_current
    #: Returns once the table's last changelog write of a key is acknowledged by Kafka.
    changelog_acked: Callable[[bytes], Awaitable[None]] = _acked_now
    #: Told after each write of a key: reads waiting for that key's freshness look again.
    on_stored: Callable[[bytes], None] = _nobody_waits

    async def publish(
        self,
        key: bytes,
        handle: EventHandle | None,
        record: ProfileRecord,
        event: ProfileEvent | None,
        *,
        durable: bool = False,
    ) -> None:
        """Store ``record`` and emit ``event`` (a forget's record is its tombstone; the key is
        never deleted, so what was applied before the forget is still known).

        Without an event (nothing changed) the record is stored as it is: it remembers the
        applied offsets, so a replay is skipped. ``durable``: return only once that write is
        acknowledged by the changelog (a buffer holds inputs about to be acknowledged).
        """
        if event is None:
            self._store(key, handle, record)
            if durable:
                check_owned("the changelog wait")
                await self.changelog_acked(key)
            return
        self._store(key, handle, record.model_copy(update={"pending_event": event}))
        version = Publication(key, event)
        await self._announce(version)
        self._finish(version, handle, record)

    async def resume(
        self, key: bytes, handle: EventHandle | None, record: ProfileRecord
    ) -> ProfileRecord:
        """Finish the version ``record`` owes its event for, and return the record to go on
        from (a tombstone when the pending event is a forget's ``deleted``)."""
        event = record.pending_event
        assert event is not None  # noqa: S101 - only called for a pending record
        self.make_event_current(handle)  # the emit goes in the transaction of its partition
        version = Publication(key, event)
        await self._announce(version)
        logger.info("re-emitted pending event user_id=%s version=%d", record.user_id, event.version)
        if event.type == "deleted":
            await self.purge(record.user_id)
        final = settled(record)
        self._finish(version, handle, final)
        return final

    async def _announce(self, version: Publication) -> None:
        check_owned("the changelog wait")
        await self.changelog_acked(version.key)  # durable before anyone hears of it
        version.reached(PublishState.CHANGELOG_ACKED)
        await self._emit(version.key, version.event)  # delivered before the key's next batch
        version.reached(PublishState.EMITTED)

    def _finish(
        self, version: Publication, handle: EventHandle | None, record: ProfileRecord
    ) -> None:
        """Store the final ``record``."""
        self._store(version.key, handle, record)
        version.reached(PublishState.FINAL)

    def _store(self, key: bytes, handle: EventHandle | None, record: ProfileRecord) -> None:
        check_owned("a store")
        self.make_event_current(handle)
        # The buffer is the buffer table's (streams.pipeline.buffer_store), never the record's.
        self.table[key] = encode(stored_form(record))
        self.on_stored(key)

    async def _emit(self, key: bytes, event: ProfileEvent) -> None:
        """Produce ``event`` (keyed by user id, or ``kind/subject``) and await its delivery."""
        out_key = key if self.kind.is_user else self.kind.event_key(key.decode())
        check_owned("an emit")
        await (await self.output.send(key=out_key, value=encode(event)))
        VERSIONS.labels(event.type).inc()
