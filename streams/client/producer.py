"""One idempotent Kafka producer held open for many sends: :class:`Producer`, and
:func:`produce`, which opens one for a single batch of records.

A producer's start costs a connection (with its TLS and SASL handshakes), a metadata round
trip and, on the first send, a new producer id from the broker. An app that publishes every
chat turn keeps one producer for its lifetime (the clients of :mod:`streams.client.client`
do), rather than paying that per turn and leaving the broker a producer id per call.
"""

import asyncio
from collections.abc import AsyncIterable, Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from streams.client.kafka_io import (
    Bootstrap,
    KafkaConnection,
    OutRecord,
    aiter_any,
    unreachable,
    why_unreachable,
)
from streams.core.partitioning import partition_for
from streams.errors import BrokerUnavailable

__all__ = ["Producer", "produce"]

#: Sends awaited together before the progress callback is told (and the next batch starts).
_CONFIRM_EVERY = 500


class Producer:
    """An idempotent producer (``acks=all``) started on the first send and kept until
    :meth:`close` (or the end of ``async with``).

    Records with a key go to the key's partition by Kafka's default (murmur2) partitioner, in
    the order sent. Sends from concurrent tasks share it. After a failed send the producer is
    dropped, and the next send starts a new one.
    """

    def __init__(self, bootstrap: Bootstrap) -> None:
        self.connection = KafkaConnection.of(bootstrap)
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()
        self.starts = 0  # producers started so far: one for a healthy lifetime

    async def _started(self) -> AIOKafkaProducer:
        async with self._starting:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    **self.connection.client_kwargs(), acks="all", enable_idempotence=True
                )
                try:
                    await producer.start()
                except KafkaError as exc:
                    await producer.stop()
                    raise await why_unreachable(self.connection, exc) from exc
                self._producer = producer
                self.starts += 1
            return self._producer

    async def send(
        self,
        records: Iterable[OutRecord] | AsyncIterable[OutRecord],
        *,
        topic: str,
        on_sent: Callable[[int], None] | None = None,
    ) -> int:
        """Produce ``records`` in order; return how many Kafka confirmed.

        ``on_sent`` is told the running count every few hundred confirmed records and at the
        end.

        Raises:
            BrokerUnavailable: Kafka cannot be reached or refused a send (the message says how
                many records were confirmed before).
        """
        producer = await self._started()
        sent = 0
        try:
            pending: list[asyncio.Future[Any]] = []
            async for record in aiter_any(records):
                headers = list(record.headers) or None
                pending.append(
                    await producer.send(topic, record.value, key=record.key, headers=headers)
                )
                if len(pending) >= _CONFIRM_EVERY:
                    sent += len(await asyncio.gather(*pending))
                    pending = []
                    _tell(on_sent, sent)
            sent += len(await asyncio.gather(*pending))
            _tell(on_sent, sent)
        except KafkaError as exc:
            raise await self._failed(producer, exc, sent) from exc
        return sent

    async def send_together(self, records: Sequence[OutRecord], *, topic: str) -> int:
        """Produce a few records of one key (a chat turn) in one batch, one request to the
        key's partition (Kafka's default partitioner's); return how many Kafka confirmed.
        Records of several keys, or too large for one batch, go as :meth:`send` sends them.

        Raises:
            BrokerUnavailable: as :meth:`send`.
        """
        keys = {record.key for record in records}
        if len(keys) != 1 or None in keys:
            return await self.send(records, topic=topic)
        producer = await self._started()
        batch = producer.create_batch()
        for r in records:
            headers = list(r.headers)
            if batch.append(key=r.key, value=r.value, timestamp=None, headers=headers) is None:
                return await self.send(records, topic=topic)
        (key,) = keys
        assert key is not None
        try:
            partition = partition_for(key, len(await producer.partitions_for(topic)))
            await (await producer.send_batch(batch, topic, partition=partition))
        except KafkaError as exc:
            raise await self._failed(producer, exc, 0) from exc
        return len(records)

    async def _failed(
        self, producer: AIOKafkaProducer, exc: KafkaError, sent: int
    ) -> BrokerUnavailable:
        """Drop the producer a send failed on (the next send starts another); the error."""
        async with self._starting:
            if self._producer is producer:
                self._producer = None
        await producer.stop()
        done = f" after {sent} records were confirmed"
        return unreachable(self.connection.bootstrap, exc, done)

    async def close(self) -> None:
        """Wait for what is in flight, then stop the producer (a later send starts another)."""
        async with self._starting:
            producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def _tell(on_sent: Callable[[int], None] | None, count: int) -> None:
    if on_sent is not None:
        on_sent(count)


async def produce(
    records: Iterable[OutRecord] | AsyncIterable[OutRecord],
    *,
    bootstrap: Bootstrap,
    topic: str,
    on_sent: Callable[[int], None] | None = None,
) -> int:
    """Produce ``records`` in order with a producer of their own, stopped after (see
    :meth:`Producer.send`); return how many Kafka confirmed.

    Raises:
        BrokerUnavailable: Kafka cannot be reached or refused a send.
    """
    async with Producer(bootstrap) as producer:
        return await producer.send(records, topic=topic, on_sent=on_sent)
