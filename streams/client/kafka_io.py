"""Kafka plumbing shared by the client and the CLI: read a topic to its current end, create
topics, and turn a broker that does not answer into one clear error (producing:
:mod:`streams.client.producer`).

Every function takes ``bootstrap``: the servers as a string (a plain connection), or a
:class:`~streams.kafka_security.KafkaConnection` with TLS and SASL settings. A connection that
fails on its security (wrong password, untrusted certificate, wrong protocol for the port) raises
:class:`BrokerUnavailable` naming the setting to fix.
"""

import asyncio
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Iterable,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    InvalidReplicationFactorError,
    KafkaConnectionError,
    KafkaError,
    TopicAlreadyExistsError,
)
from aiokafka.structs import ConsumerRecord

from streams.errors import BrokerUnavailable, ConfigError, TopicMissing
from streams.kafka_security import KafkaConnection, diagnose

__all__ = [
    "Bootstrap",
    "KafkaConnection",
    "OutRecord",
    "aiter_any",
    "ensure_topics",
    "partitions_of",
    "read_at",
    "read_to_end",
    "unreachable",
    "why_unreachable",
]

#: Where Kafka is: the bootstrap servers (plain), or a connection with its security.
Bootstrap = str | KafkaConnection

_T = TypeVar("_T")

#: Polls, 0.2 s apart, for created topics to show in the broker's metadata.
_TOPIC_WAIT_TRIES = 75
#: A new topic's replication factor that means "the broker's default.replication.factor".
_BROKER_DEFAULT = -1
_TOPIC_ALREADY_EXISTS = TopicAlreadyExistsError.errno
_INVALID_REPLICATION_FACTOR = InvalidReplicationFactorError.errno


def unreachable(bootstrap: str, exc: BaseException, done: str = "") -> BrokerUnavailable:
    """The error for a broker that does not answer, saying what to do."""
    return BrokerUnavailable(
        f"cannot reach Kafka at {bootstrap} ({exc}){done}; is it running? "
        "(PROFILE_STREAM_KAFKA_BOOTSTRAP names another)"
    )


async def why_unreachable(
    bootstrap: Bootstrap, exc: BaseException, done: str = ""
) -> BrokerUnavailable:
    """The error for a client that could not connect: the security setting to fix when one
    explains it (aiokafka says only "Unable to bootstrap"), else :func:`unreachable`'s."""
    conn = KafkaConnection.of(bootstrap)
    # aiokafka takes a refused OAUTHBEARER token for a login, and the request after it fails
    # with an error that is no connection error: any error may be that token.
    if isinstance(exc, KafkaConnectionError) or conn.sasl_mechanism == "OAUTHBEARER":
        explained = await diagnose(conn)
        if explained is not None:
            return explained
    return unreachable(conn.bootstrap, exc, done)


@dataclass(frozen=True)
class OutRecord:
    """One record to produce: raw key and value bytes, and optional headers."""

    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]] = ()


async def aiter_any(items: Iterable[_T] | AsyncIterable[_T]) -> AsyncIterator[_T]:
    """Iterate a sync or an async iterable alike."""
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


async def read_to_end(
    topic: str,
    *,
    bootstrap: Bootstrap,
    key: bytes | None = None,
    partitions: Sequence[int] | None = None,
) -> AsyncGenerator[ConsumerRecord[bytes, bytes], None]:
    """Every record of ``topic`` (only ``key``'s when given; only ``partitions`` when given)
    from the beginning up to the end offsets taken when it starts, partition by partition in
    offset order; no consumer group. Close it (``contextlib.aclosing``) when leaving early.

    Raises:
        BrokerUnavailable: Kafka cannot be reached.
        TopicMissing: the topic does not exist.
    """
    conn = KafkaConnection.of(bootstrap)
    existing = await partitions_of(topic, bootstrap=conn)
    partitions = existing if partitions is None else [p for p in partitions if p in existing]
    consumer = AIOKafkaConsumer(  # "earliest": a reset racing the seek below agrees with it
        **conn.client_kwargs(),
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",  # a fenced or aborted write is no event
        auto_offset_reset="earliest",
    )
    try:
        await consumer.start()
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            await consumer.seek_to_beginning(tp)
            async for record in _read_partition(consumer, tp, ends[tp]):
                if key is None or record.key == key:
                    yield record
    except KafkaError as exc:
        raise await why_unreachable(conn, exc) from exc
    finally:
        await consumer.stop()


async def read_at(
    topic: str, partition: int, offset: int, *, bootstrap: Bootstrap
) -> ConsumerRecord[bytes, bytes] | None:
    """The record of ``topic`` at ``partition`` and ``offset``; None when the topic's retention
    (or compaction) removed it, or it was never written.

    Raises:
        BrokerUnavailable: Kafka cannot be reached.
        TopicMissing: the topic does not exist.
    """
    conn = KafkaConnection.of(bootstrap)
    if partition not in await partitions_of(topic, bootstrap=conn):
        return None
    consumer = AIOKafkaConsumer(
        **conn.client_kwargs(),
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",  # a fenced or aborted write is no event
        auto_offset_reset="earliest",
    )
    tp = TopicPartition(topic, partition)
    try:
        await consumer.start()
        consumer.assign([tp])
        first = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        if not first <= offset < end:
            return None
        consumer.seek(tp, offset)
        async for record in _read_partition(consumer, tp, end):
            # A compacted topic may skip the offset: the next record is another one.
            return record if record.offset == offset else None
        return None
    except KafkaError as exc:
        raise await why_unreachable(conn, exc) from exc
    finally:
        await consumer.stop()


@asynccontextmanager
async def _admin(conn: KafkaConnection) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed after; Kafka errors become one BrokerUnavailable."""
    admin = AIOKafkaAdminClient(**conn.client_kwargs())
    try:
        await admin.start()
        yield admin
    except KafkaError as exc:
        raise await why_unreachable(conn, exc) from exc
    finally:
        await admin.close()


async def partitions_of(topic: str, *, bootstrap: Bootstrap) -> list[int]:
    """The topic's partition numbers, sorted; asking does not create the topic.

    Raises:
        BrokerUnavailable: Kafka cannot be reached.
        TopicMissing: the topic does not exist.
    """
    conn = KafkaConnection.of(bootstrap)
    async with _admin(conn) as admin:
        exists = topic in await admin.list_topics()  # describing a missing topic creates it
        found = (await admin.describe_topics([topic]))[0] if exists else {}
    if not found.get("partitions"):
        raise TopicMissing(f"topic {topic!r} does not exist on {conn.bootstrap}; has a worker run?")
    return sorted(int(p["partition"]) for p in found["partitions"])


async def ensure_topics(
    topics: Sequence[str], *, partitions: int, replication: int | None, bootstrap: Bootstrap
) -> list[str]:
    """Create the missing ``topics`` and wait until the broker describes each with its
    partitions; returns the ones created. ``replication`` None: the broker's default
    replication factor (``default.replication.factor``).

    A consumer group that forms before its topic shows in the broker's metadata gets no
    partition of it, and learns of the topic only at its next metadata refresh (minutes).

    Raises:
        ConfigError: the broker refused the replication factor.
        BrokerUnavailable: Kafka cannot be reached, refused the topics, or a topic did not
            appear in time.
    """
    conn = KafkaConnection.of(bootstrap)
    async with _admin(conn) as admin:
        missing = [t for t in topics if t not in await admin.list_topics()]
        if not missing:
            return []
        try:
            response = await admin.create_topics(
                [_new_topic(t, partitions, replication) for t in missing]
            )
        except TopicAlreadyExistsError:
            pass  # another worker was first
        else:
            _check_created(response.topic_errors, replication, conn.bootstrap)
        for _ in range(_TOPIC_WAIT_TRIES):
            described = await admin.describe_topics(missing)
            if all(len(d.get("partitions") or ()) == partitions for d in described):
                return missing
            await asyncio.sleep(0.2)
    raise BrokerUnavailable(
        f"topics {missing} were created on {conn.bootstrap} but do not show in its metadata; "
        "check the broker's log"
    )


def _new_topic(name: str, partitions: int, replication: int | None) -> NewTopic:
    if replication is not None:
        return NewTopic(name, partitions, replication)
    # -1 asks for the broker's default (KIP-464, Kafka 2.4+; 3.9.1 and 4.1.1 take it over the
    # CreateTopics v3 aiokafka sends). aiokafka's NewTopic takes -1 only beside a replica
    # assignment; an empty one leaves the placement to the broker as well.
    return NewTopic(name, partitions, _BROKER_DEFAULT, replica_assignments={})


def _check_created(
    errors: Iterable[tuple[str, int, str | None]], replication: int | None, bootstrap: str
) -> None:
    """Raise for a topic the broker refused to create (one created meanwhile is fine)."""
    for topic, code, reason in errors:
        if code in (0, _TOPIC_ALREADY_EXISTS):
            continue
        if code == _INVALID_REPLICATION_FACTOR:
            asked = "its default" if replication is None else str(replication)
            raise ConfigError(
                f"Kafka at {bootstrap} refused to create topic {topic!r} with replication "
                f"factor {asked}: {reason}; set PROFILE_STREAM_REPLICATION_FACTOR to at most "
                "the number of brokers (a broker older than 2.4 needs it set)"
            )
        raise BrokerUnavailable(
            f"Kafka at {bootstrap} refused to create topic {topic!r} (error {code}: {reason})"
        )


async def _read_partition(
    consumer: AIOKafkaConsumer, tp: TopicPartition, end: int
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    while await consumer.position(tp) < end:
        batch = await consumer.getmany(tp, timeout_ms=1_000)
        for record in batch.get(tp, []):
            if record.offset >= end:
                return
            yield record
