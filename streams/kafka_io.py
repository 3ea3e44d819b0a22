"""Kafka plumbing shared by the client and the CLI: produce raw records in order, read a topic
to its current end, and turn a broker that does not answer into one clear error.
"""

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from .errors import ProfileStreamError

__all__ = [
    "BrokerUnavailable",
    "OutRecord",
    "TopicMissing",
    "aiter_any",
    "produce",
    "read_to_end",
    "unreachable",
]

_T = TypeVar("_T")

#: Sends awaited together before the progress callback is told (and the next batch starts).
_CONFIRM_EVERY = 500


class BrokerUnavailable(ProfileStreamError):
    """Kafka did not answer, or failed a send; the message names the bootstrap servers."""

    retriable = True


class TopicMissing(ProfileStreamError, LookupError):
    """The topic does not exist on the broker (no worker has created it yet?)."""


def unreachable(bootstrap: str, exc: BaseException, done: str = "") -> BrokerUnavailable:
    """The error for a broker that does not answer, saying what to do."""
    return BrokerUnavailable(
        f"cannot reach Kafka at {bootstrap} ({exc}){done}; is it running? "
        "(`make up` starts a local one; PROFILE_STREAM_KAFKA_BOOTSTRAP names another)"
    )


@dataclass(frozen=True)
class OutRecord:
    """One record to produce: raw key and value bytes, and optional headers."""

    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]] = ()


async def produce(
    records: Iterable[OutRecord] | AsyncIterable[OutRecord],
    *,
    bootstrap: str,
    topic: str,
    on_sent: Callable[[int], None] | None = None,
) -> int:
    """Produce ``records`` in order (idempotent, ``acks=all``); return how many Kafka confirmed.

    ``on_sent`` is told the running count every few hundred confirmed records and at the end.
    Records with a key go to the key's partition by Kafka's default (murmur2) partitioner.

    Raises:
        BrokerUnavailable: Kafka cannot be reached or refused a send (the message says how many
            records were confirmed before).
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    sent = 0
    try:
        await producer.start()
        pending: list[asyncio.Future[Any]] = []
        async for record in aiter_any(records):
            pending.append(
                await producer.send(
                    topic, record.value, key=record.key, headers=list(record.headers) or None
                )
            )
            if len(pending) >= _CONFIRM_EVERY:
                sent += len(await asyncio.gather(*pending))
                pending = []
                _tell(on_sent, sent)
        sent += len(await asyncio.gather(*pending))
        _tell(on_sent, sent)
    except KafkaError as exc:
        raise unreachable(bootstrap, exc, f" after {sent} records were confirmed") from exc
    finally:
        await producer.stop()
    return sent


async def aiter_any(items: Iterable[_T] | AsyncIterable[_T]) -> AsyncIterator[_T]:
    """Iterate a sync or an async iterable alike."""
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


def _tell(on_sent: Callable[[int], None] | None, count: int) -> None:
    if on_sent is not None:
        on_sent(count)


async def read_to_end(
    topic: str, *, bootstrap: str, key: bytes | None = None
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` (only ``key``'s when given) from the beginning up to the end
    offsets taken when it starts, partition by partition in offset order; no consumer group.

    Raises:
        BrokerUnavailable: Kafka cannot be reached.
        TopicMissing: the topic does not exist.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    try:
        await consumer.start()
        if topic not in await consumer.topics():
            raise TopicMissing(f"topic {topic!r} does not exist on {bootstrap}; has a worker run?")
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            await consumer.seek_to_beginning(tp)
            async for record in _read_partition(consumer, tp, ends[tp]):
                if key is None or record.key == key:
                    yield record
    except KafkaError as exc:
        raise unreachable(bootstrap, exc) from exc
    finally:
        await consumer.stop()


async def _read_partition(
    consumer: AIOKafkaConsumer, tp: TopicPartition, end: int
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    while await consumer.position(tp) < end:
        batch = await consumer.getmany(tp, timeout_ms=1_000)
        for record in batch.get(tp, []):
            if record.offset >= end:
                return
            yield record
