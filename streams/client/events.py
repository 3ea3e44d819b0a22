"""Following profile events: :class:`ProfileEvents`, an async iterator over ``profile-updated``
that delivers each event once and resumes where a consumer group stopped.

Resumable across restarts::

    async with ProfileEvents(bootstrap="127.0.0.1:9092", group_id="my-app") as events:
        async for event in events:
            handle(event)  # committed once you ask for the next one, or on close
"""

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from schemas import ProfileEvent
from streams.client.kafka_io import Bootstrap, KafkaConnection, partitions_of, why_unreachable
from streams.core.codecs import decode_event

__all__ = ["ProfileEvents"]

logger = logging.getLogger(__name__)


class _Seen:
    """The last ``size`` events seen, by id and bytes: a redelivered event has both the same
    (the bytes too, because releases before the forget marker restarted a forgotten user's
    versions at 1, reusing ids with new bytes)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._keys: OrderedDict[tuple[str, bytes], None] = OrderedDict()

    def add(self, event_id: str, value: bytes) -> bool:
        """Remember an event; False when it was seen already."""
        key = (event_id, hashlib.blake2b(value, digest_size=16).digest())
        if key in self._keys:
            self._keys.move_to_end(key)
            return False
        self._keys[key] = None
        if len(self._keys) > self._size:
            self._keys.popitem(last=False)
        return True


def _event_key(kind: str, subject: str) -> bytes:
    """The key of a kind's events: the user id for users, else ``kind/subject`` (the same as
    ``streams.core.kinds.Kind.event_key``)."""
    return subject.encode() if kind == "user" else f"{kind}/{subject}".encode()


Partitions = Callable[[set[TopicPartition]], Any]


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, revoked: Partitions, assigned: Partitions) -> None:
        self._revoked, self._assigned = revoked, assigned

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._assigned(assigned)


class ProfileEvents:
    """Profile events (``profile-updated``) as an async iterator, each delivered once.

    With a ``group_id`` the position is Kafka's committed offset for that group, so a
    subscription closed (or crashed) and reopened with the same group resumes where it was.
    An event's offset is committed only after the caller has it: when the caller asks for the
    next event (at most every ``commit_interval_s``) or closes. Leaving ``async with`` on an
    exception does not commit the last event, so it comes again.

    Events are at least once on the topic: a redelivered one has the same ``event_id`` and
    bytes, and is skipped if seen among the last ``dedupe_window`` events. On resuming, the
    window is filled from the events just before the committed offsets.

    ``kind`` keeps only that profile kind's events (``"user"`` by default: a team's events,
    on the same topic, carry the team in ``user_id``; None keeps every kind's); ``user_id``
    keeps only that user's (or that subject's) events, matched on the decoded event, so user
    ``team/x`` is never team ``x``, whose events share its key; ``from_beginning`` starts a
    group without committed offsets (or a group-less subscription) at the oldest event, else
    at new ones; ``idle_timeout_s`` ends the iteration after that long without an event.
    """

    def __init__(
        self,
        *,
        bootstrap: Bootstrap,
        topic: str = "profile-updated",
        group_id: str | None = None,
        kind: str | None = "user",
        user_id: str | None = None,
        from_beginning: bool = False,
        idle_timeout_s: float | None = None,
        dedupe_window: int = 10_000,
        commit_interval_s: float = 1.0,
    ) -> None:
        self.connection = KafkaConnection.of(bootstrap)
        self.bootstrap, self.topic, self.group_id = self.connection.bootstrap, topic, group_id
        self._kind, self._user_id = kind, user_id
        self._key = None if user_id is None or kind is None else _event_key(kind, user_id)
        self._reset = "earliest" if from_beginning else "latest"
        self._idle_timeout_s = idle_timeout_s
        self._window = dedupe_window
        self._commit_interval_s = commit_interval_s
        self._seen = _Seen(dedupe_window)
        self._consumer: AIOKafkaConsumer | None = None
        self._delivered: ConsumerRecord[bytes, bytes] | None = None
        self._acked: dict[TopicPartition, int] = {}  # next offset to commit, per partition
        self._seed_until: dict[TopicPartition, int] = {}  # re-read only to fill the window
        self._unpinned: set[TopicPartition] = set()  # no committed offset yet
        self._committed_at = 0.0

    async def start(self) -> None:
        """Connect and subscribe (iterating starts it too).

        Raises:
            BrokerUnavailable: Kafka cannot be reached.
            TopicMissing: the topic does not exist (no worker has run yet).
        """
        if self._consumer is not None:
            return
        await partitions_of(self.topic, bootstrap=self.connection)  # subscribing would create it
        consumer = AIOKafkaConsumer(
            **self.connection.client_kwargs(),
            group_id=self.group_id,
            enable_auto_commit=False,
            isolation_level="read_committed",  # a fenced or aborted write is no event
            auto_offset_reset=self._reset,
        )
        try:
            await consumer.start()
        except KafkaError as exc:
            await consumer.stop()
            raise await why_unreachable(self.connection, exc) from exc
        consumer.subscribe([self.topic], listener=_Listener(self._on_revoked, self._on_assigned))
        self._consumer = consumer

    async def close(self, *, commit_last: bool = True) -> None:
        """Commit what the caller has received (the last event too, unless told not to), stop."""
        if self._consumer is None:
            return
        try:
            if commit_last:
                self._ack_delivered()
            elif self._delivered is not None:  # it comes again: resume at it
                tp = TopicPartition(self._delivered.topic, self._delivered.partition)
                self._acked.setdefault(tp, self._delivered.offset)
            await self._pin(self._consumer.assignment())
            await self._commit(force=True)
        finally:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close(commit_last=kind is None)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ProfileEvent:
        await self.start()
        self._ack_delivered()
        loop = asyncio.get_running_loop()
        idle = self._idle_timeout_s
        deadline = None if idle is None else loop.time() + idle
        while True:
            record = await self._next_record(deadline)
            event = self._accept(record)
            if event is not None:
                self._delivered = record
                return event
            self._ack(record)

    async def _next_record(self, deadline: float | None) -> ConsumerRecord[bytes, bytes]:
        assert self._consumer is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._commit()
            wait = 1.0 if deadline is None else min(1.0, deadline - loop.time())
            if wait <= 0:
                raise StopAsyncIteration
            batch = await self._consumer.getmany(timeout_ms=int(wait * 1000), max_records=1)
            for records in batch.values():
                if records:
                    return records[0]

    def _accept(self, record: ConsumerRecord[bytes, bytes]) -> ProfileEvent | None:
        """The event to deliver, or None for one to skip (other user, duplicate, re-read)."""
        tp = TopicPartition(record.topic, record.partition)
        seeding = record.offset < self._seed_until.get(tp, -1)
        if record.value is None or (self._key is not None and record.key != self._key):
            return None
        try:
            event = decode_event(record.value)
        except ValidationError as exc:
            if not seeding:
                logger.warning(
                    "skipped a record that is not a profile event topic=%s partition=%d "
                    "offset=%d: %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    exc.errors(include_input=False)[0]["msg"],
                )
            return None
        fresh = self._seen.add(event.event_id, record.value)
        return event if fresh and not seeding and self._wanted(event) else None

    def _wanted(self, event: ProfileEvent) -> bool:
        return (self._kind is None or event.kind == self._kind) and (
            self._user_id is None or event.user_id == self._user_id
        )

    def _ack_delivered(self) -> None:
        if self._delivered is not None:
            self._ack(self._delivered)
            self._delivered = None

    def _ack(self, record: ConsumerRecord[bytes, bytes]) -> None:
        tp = TopicPartition(record.topic, record.partition)
        assigned = self._consumer is not None and tp in self._consumer.assignment()
        if assigned and record.offset >= self._seed_until.get(tp, -1):
            self._acked[tp] = record.offset + 1

    async def _commit(
        self, *, force: bool = False, only: set[TopicPartition] | None = None
    ) -> None:
        now = asyncio.get_running_loop().time()
        if self.group_id is None or self._consumer is None or not self._acked:
            return
        if not force and now - self._committed_at < self._commit_interval_s:
            return
        offsets = {tp: o for tp, o in self._acked.items() if only is None or tp in only}
        for tp in offsets:
            del self._acked[tp]
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            logger.warning("commit of %s failed (%r); those events may come again", offsets, exc)
        self._committed_at = now

    async def _pin(self, tps: set[TopicPartition]) -> None:
        """Commit where partitions without a committed offset stand, so a restart starts there
        (and not again at the then latest or earliest event)."""
        assert self._consumer is not None
        for tp in tps & self._unpinned:
            if tp not in self._acked:
                self._acked[tp] = await self._consumer.position(tp)
        self._unpinned -= tps

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        if self.group_id is None:
            return
        await self._pin(revoked)
        await self._commit(force=True, only=revoked)
        for tp in revoked:
            self._seed_until.pop(tp, None)

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Re-read a few events before each committed offset so their duplicates are known."""
        if self.group_id is None or self._consumer is None or not assigned:
            return
        lookback = max(1, self._window // len(assigned))
        firsts = await self._consumer.beginning_offsets(list(assigned))
        for tp in assigned:
            committed = await self._consumer.committed(tp)
            if committed is None:
                self._unpinned.add(tp)
            elif committed > firsts[tp]:
                self._consumer.seek(tp, max(firsts[tp], committed - lookback))
                self._seed_until[tp] = committed
