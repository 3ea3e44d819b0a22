"""Faust's consumer and topics: lag and committed offsets, end offsets on connections of their
own, flow control on resume, topic creation, where new partitions start, and the assignor's
URL check.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Set
from typing import Any, cast

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from faust.assignor.client_assignment import ClientMetadata
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode.utils.queues import FlowControlEvent

from streams.core.start_position import RetainedRange

__all__ = [
    "BROKER_DEFAULT_REPLICATION",
    "EndOffsets",
    "StartPlan",
    "committed_offset",
    "consumer_lag",
    "create_topics_with_broker_default_replication",
    "keep_fetched_events_on_resume",
    "own_consumer",
    "refuse_assignments_for_another_url",
    "start_new_partitions",
    "wait_until_created_topics_show",
]

logger = logging.getLogger(__name__)


#: Given the retained range of each partition (by number) that has no committed offset, the
#: offset each starts at.
StartPlan = Callable[[Mapping[int, RetainedRange]], Mapping[int, int]]


def consumer_lag(app: faust.App, topic: str) -> float:
    """Input events not yet committed, summed over this worker's partitions of ``topic``.
    Internal: ``Consumer._committed_offset`` (the last committed offset per partition)."""
    consumer = cast(Any, app.consumer)
    lag = 0
    for tp in consumer.assignment():
        highwater = consumer.highwater(tp) if tp.topic == topic else None
        if highwater is not None:  # None until the first fetch of the partition
            committed = consumer._committed_offset.get(tp) or 0  # noqa: SLF001 - no public API
            lag += max(0, highwater - committed)
    return float(lag)


def read_to_end(app: faust.App, message: Any) -> bool:
    """Whether the consumed ``message`` is the last record its partition holds as far as the
    consumer knows: the partition's highwater (its last stable offset under exactly-once) is
    right after it. False when that is not known. Internal: ``Consumer.highwater(tp)``, None
    before the first fetch; aiokafka asserts the partition is assigned, and an event read
    before a revoke may be handled after it."""
    try:
        highwater = cast(Any, app.consumer).highwater(message.tp)
    except (AssertionError, KeyError, AttributeError):  # not assigned here (any more)
        return False
    return highwater is not None and message.offset + 1 >= highwater


def committed_offset(app: faust.App, tp: tuple[str, int]) -> int | None:
    """The next offset of ``tp`` to read, as committed (``Consumer._committed_offset``)."""
    offset = cast(Any, app.consumer)._committed_offset.get(TP(*tp))  # noqa: SLF001
    return int(offset) if offset is not None else None


class EndOffsets:
    """A partition's end offset, asked of the broker now on connections of its own (Faust's
    ``Consumer.highwaters`` waits behind the fetch long poll, 0.5-1.5 s)."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self._consumer: AIOKafkaConsumer | None = None
        self._starting = asyncio.Lock()

    async def __call__(self, tp: tuple[str, int]) -> int:
        """The offset after the last record of ``tp`` now."""
        async with self._starting:
            self._consumer = self._consumer or await self._start()
        partition = TopicPartition(*tp)
        return int((await self._consumer.end_offsets([partition]))[partition])

    async def close(self) -> None:
        """Stop the consumer, if it was started."""
        if self._consumer:
            await self._consumer.stop()

    async def _start(self) -> AIOKafkaConsumer:
        consumer = own_consumer(self.app, "end-offsets")
        await consumer.start()
        return consumer


def own_consumer(app: faust.App, name: str, **options: Any) -> AIOKafkaConsumer:
    """A consumer of no group (it commits nothing) on the worker's brokers, with its
    credentials, not started; ``options`` go to aiokafka. Internal: Faust's
    ``credentials_to_aiokafka_auth`` and ``server_list``, which build its own consumer."""
    conf, transport = app.conf, cast(Any, app).transport
    auth = faust_aiokafka.credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context)
    return AIOKafkaConsumer(
        bootstrap_servers=faust_aiokafka.server_list(transport.url, transport.default_port),
        client_id=f"{conf.broker_client_id}-{name}",
        **auth,
        **options,
    )


class _ResumeKeepsRunningQueues(FlowControlEvent):
    """Faust's flow control, except that resuming a flow that already runs empties nothing.

    Faust empties every stream buffer on each ``flow_control.resume()``. Recovery calls it
    again once the tables are restored, right after resuming the input partitions and awaiting
    the seek to the committed offsets (``Recovery.on_recovery_completed``; ``_resume_streams``
    likewise). The fetcher runs during that await, so the buffer then holds events that were
    fetched and marked read but not yet given to the agent: emptied, they are never acknowledged
    and never fetched again. An event lost alone on its partition leaves a gap of exactly one in
    the acknowledged offsets, which ``Consumer._new_offset`` commits past (faust #606): the
    message is gone. A resume after a suspend (a rebalance) still empties the buffers: what they
    hold may come from partitions this worker no longer owns.
    """

    def resume(self) -> None:
        if self.is_active():
            return
        super().resume()


def keep_fetched_events_on_resume(app: faust.App) -> None:
    """Stop Faust from dropping fetched input events when recovery resumes a running flow.

    Internal: replaces ``App.flow_control`` (a cached property, ``FlowControlEvent``) before any
    stream queue registers with it; call right after creating the app.
    """
    assert "flow_control" not in app.__dict__, "flow control already in use"  # noqa: S101
    # loop=None: bound on first wait, inside the worker's loop, as Faust binds its own lazily.
    cast(Any, app).flow_control = _ResumeKeepsRunningQueues()


#: A new topic's replication factor that means "the broker's ``default.replication.factor``"
#: (KIP-464, Kafka 2.4+).
BROKER_DEFAULT_REPLICATION = -1


def create_topics_with_broker_default_replication(app: faust.App) -> None:
    """Make every topic Faust creates for ``app`` take the broker's default replication factor:
    its topics, the tables' changelogs and the assignor's leader topic alike.

    Faust's ``topic_replication_factor`` takes only a count of 0 or more and creates a topic
    of replication 0 with 1, so -1 cannot pass through the setting.
    """

    def wrap(create: Any) -> Any:
        async def _create(
            owner: Any, client: Any, topic: str, partitions: int, replication: int, **kwargs: Any
        ) -> None:
            await create(owner, client, topic, partitions, BROKER_DEFAULT_REPLICATION, **kwargs)

        return _create

    _wrap_create_topic(app, wrap)


def wait_until_created_topics_show(app: faust.App) -> None:
    """Make each topic creation of Faust return once the broker's metadata shows the topic.

    A KRaft broker learns of a topic its controller created a moment after the creation is
    acknowledged, and a group that forms before that gets no partition of it until a later
    rebalance: a table without its changelog partitions, whose first write raises Faust's
    ``PartitionsMismatch`` and stops the worker (seen on a loaded machine, the group formed
    30 ms after the creation). After 10 s it goes on with a warning, as Faust would have.
    """

    def wrap(create: Any) -> Any:
        async def _create(owner: Any, client: Any, topic: str, *args: Any, **kwargs: Any) -> None:
            await create(owner, client, topic, *args, **kwargs)
            await _until_known(client, topic)

        return _create

    _wrap_create_topic(app, wrap)


async def _until_known(client: Any, topic: str, timeout_s: float = 10.0) -> None:
    if client.cluster.partitions_for_topic(topic):
        return  # in the client's metadata already (every start after the first): no request
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (await client.fetch_all_metadata()).partitions_for_topic(topic):
            return
        await asyncio.sleep(0.05)  # the broker applying the controller's record: nothing to await
    logger.warning("topic not in the broker's metadata after creating it topic=%s", topic)


def _wrap_create_topic(app: faust.App, wrap: Callable[[Any], Any]) -> None:
    # Internal: Transport._create_topic(owner, client, topic, partitions, replication, **kwargs)
    # of the consumer's and the producer's transports, through which every creation of Faust
    # goes (tests/unit/streams/test_faust_glue.py pins it). No public API.
    transports = {id(t): t for t in (app.transport, app.producer_transport)}
    for transport in transports.values():
        cast(Any, transport)._create_topic = wrap(cast(Any, transport)._create_topic)  # noqa: SLF001


class _NewPartitions:
    """Where the partitions of one topic that have no committed offset start; see
    :func:`start_new_partitions`. Runs in Faust's consumer thread, on its aiokafka consumer."""

    def __init__(self, topic: str, at_ms: int | None, plan: StartPlan) -> None:
        self.topic, self.at_ms, self.plan = topic, at_ms, plan

    async def on_assigned(self, consumer: AIOKafkaConsumer, assigned: Set[TopicPartition]) -> None:
        """Start the new partitions among ``assigned``: sought and committed before Faust hears
        of the assignment, so no fetch of theirs ever starts elsewhere."""
        # aiokafka's own partition type: its commit refuses Faust's TP.
        mine = sorted(
            TopicPartition(tp.topic, tp.partition) for tp in assigned if tp.topic == self.topic
        )
        committed = {tp: await consumer.committed(tp) for tp in mine}
        await self._start(consumer, [tp for tp, offset in committed.items() if offset is None])

    async def seek_to_committed(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, Any]:
        """aiokafka's seek to the committed offsets, then the start of any partition still
        without one (its start at assignment failed), returned as committed, as Faust expects
        of this call."""
        committed: dict[TopicPartition, Any] = await consumer.seek_to_committed()
        for tp, offset in committed.items():
            # aiokafka seeks only to a committed offset above 0 (`if offset and offset > 0`):
            # a partition committed at 0 kept the position of records fetched while it was
            # paused for recovery and dropped, so they were never processed (a new owner of a
            # partition whose first owner died before its first commit).
            if offset == 0:
                consumer.seek(tp, 0)
        new = [tp for tp, offset in committed.items() if offset is None and tp.topic == self.topic]
        return committed | await self._start(consumer, new)

    async def _start(
        self, consumer: AIOKafkaConsumer, new: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """Seek ``new`` where the plan says and commit there, so the group's next owner of a
        partition starts there too (a ``latest`` start moves on with the topic's end)."""
        if not new:
            return {}
        starts = self.plan(await self._retained(consumer, new))
        offsets = {tp: starts[tp.partition] for tp in new}
        for tp, offset in offsets.items():
            consumer.seek(tp, offset)
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:  # a rebalance under way: the next assignment starts them
            logger.warning("start offsets not committed topic=%s: %r", self.topic, exc)
        return offsets

    async def _retained(
        self, consumer: AIOKafkaConsumer, new: list[TopicPartition]
    ) -> dict[int, RetainedRange]:
        beginning = await consumer.beginning_offsets(new)
        end = await consumer.end_offsets(new)
        at_time: Mapping[TopicPartition, Any] = {}
        if self.at_ms is not None:
            at_time = await consumer.offsets_for_times({tp: self.at_ms for tp in new})
        return {
            tp.partition: RetainedRange(
                beginning=beginning[tp],
                end=end[tp],
                from_time=None if at_time.get(tp) is None else at_time[tp].offset,
            )
            for tp in new
        }


def start_new_partitions(app: faust.App, topic: str, at_ms: int | None, plan: StartPlan) -> None:
    """Start ``topic``'s partitions that the group has no committed offset for where ``plan``
    says (given their retained range, and the first offset at or after ``at_ms``), instead of
    where ``auto_offset_reset`` would; partitions with a committed offset resume there.

    Internal: this sets the transport's consumer class (``Transport.Consumer``) to one whose
    consumer thread (``_new_consumer_thread``) starts the new partitions in aiokafka's
    assignment callback (``ConsumerThread.on_partitions_assigned``, in the consumer thread,
    before Faust pauses, recovers and resumes the partitions): sought there and committed. The
    seek Faust makes after each recovery (``Consumer.perform_seek``, which takes the mapping
    ``seek_to_committed`` returns as the committed offsets) then finds them committed; it starts
    any partition whose start failed at assignment (an error there is logged: aiokafka would
    swallow it, and Faust would never hear of the assignment). Call before the worker starts.

    The same consumer thread asks the broker for the end offsets recovery restores up to
    (``_highwaters``), under exactly-once too (see the override).
    """
    transport = cast(Any, app.transport)
    assert transport.Consumer is faust_aiokafka.Consumer, "not Faust's aiokafka transport"  # noqa: S101
    assert app._consumer is None, "consumer already created"  # noqa: S101, SLF001
    new_partitions = _NewPartitions(topic, at_ms, plan)

    class _Thread(faust_aiokafka.AIOKafkaConsumerThread):
        async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
            try:
                await new_partitions.on_assigned(self._ensure_consumer(), cast(Any, assigned))
            except Exception:  # noqa: BLE001 - the seek after recovery starts them instead
                logger.exception("cannot start the new partitions of %s at assignment", topic)
            await super().on_partitions_assigned(assigned, generation_id)

        async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
            # Faust's exactly-once reads the last stable offset the fetcher last saw: unknown
            # (-1) for a changelog partition not fetched yet, so recovery either skips it or
            # fails on its persisted offset (ConsistencyError). A read_committed consumer's
            # end offsets are the broker's last stable offsets; a plain one's, Faust's own.
            consumer = self._ensure_consumer()
            return cast(Mapping[TP, int], await consumer.end_offsets(partitions))

        async def seek_to_committed(self) -> Mapping[TP, int]:
            return cast(
                Mapping[TP, int],
                await self.call_thread(new_partitions.seek_to_committed, self._ensure_consumer()),
            )

    class _Consumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
            return _Thread(self, loop=self.loop, beacon=self.beacon)

    transport.Consumer = _Consumer


def refuse_assignments_for_another_url(app: faust.App, refuse: Callable[[str], Any]) -> None:
    """Call ``refuse`` with the URL an assignment was made for, when it is not this worker's.

    With static membership the broker hands a member that joins under a known instance id the
    assignment last made for that id, without a rebalance; it was made for the worker that had
    the id, named by its URL. Another worker given the same id, or this one back with another
    web host or port, gets an assignment for that URL. ``refuse`` should stop the worker.

    Internal: Faust's ``PartitionAssignor.on_assignment`` asserts the URL of the assignment's
    ``ClientMetadata`` is its own ``_url``; aiokafka calls it in its coordinator routine, which
    that AssertionError ends for good while the worker lives on, never ready. This wraps the
    method on the app's assignor instance, reading the URL the way Faust does (``_decompress``).
    """
    assignor = cast(Any, app.assignor)
    faust_on_assignment = assignor.on_assignment

    def on_assignment(assignment: Any) -> None:
        metadata = ClientMetadata.loads(assignor._decompress(assignment.user_data))  # noqa: SLF001
        if metadata.url != str(assignor._url):  # noqa: SLF001 - the URL Faust checks against
            refuse(metadata.url)
        faust_on_assignment(assignment)

    assignor.on_assignment = on_assignment
