"""Kafka for the bench: creating and deleting a scenario's topics, publishing messages with
their send times, reading a topic to its end, and waiting for a group's commits. The
look-ups the tests share (end offsets, committed offsets, rewind) are in ``tests.support``."""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from tests.support import BOOTSTRAP, committed, end_offsets, rewind
from tests.support import partitions as topic_partitions

from .progress import log

__all__ = [
    "BOOTSTRAP",
    "PARTITIONS",
    "Committed",
    "Record",
    "create_topics",
    "delete_topics",
    "end_offsets",
    "producer",
    "publish",
    "read_all",
    "rewind",
]

#: Partitions of every bench topic (and PROFILE_STREAM_PARTITIONS of its workers).
PARTITIONS = 8


class _Checked(Protocol):
    def check(self) -> None: ...


async def create_topics(names: Sequence[str], partitions: int = PARTITIONS) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=20_000)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
        )
    finally:
        await admin.close()
    # Wait until every partition has a leader, so the first sends do not bounce.
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=None)
    await consumer.start()
    try:
        for name in names:
            for _ in range(100):
                try:
                    tps = await topic_partitions(consumer, name)
                    if len(tps) == partitions:
                        await consumer.end_offsets(tps)
                        break
                except KafkaError:
                    pass
                await asyncio.sleep(0.1)
                await consumer._client.force_metadata_update()
    finally:
        await consumer.stop()


async def delete_topics(prefix: str) -> None:
    """Best effort: delete every topic whose name starts with ``prefix``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=20_000)
    try:
        await admin.start()
        topics = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if topics:
            await admin.delete_topics(topics)
    except Exception as exc:  # noqa: BLE001 - cleanup must not hide the result
        log(f"could not delete topics {prefix}*: {exc!r}")
    finally:
        await admin.close()


def producer(**kw: Any) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5, **kw)


async def publish(
    prod: AIOKafkaProducer, topic: str, messages: Sequence[dict[str, Any]]
) -> dict[str, float]:
    """Send ``messages`` (keyed by user id) as fast as the producer takes them; returns the
    record timestamp (seconds) of each message id."""
    sent: dict[str, float] = {}
    futures = []
    for m in messages:
        now_ms = int(time.time() * 1000)
        sent[m["message_id"]] = now_ms / 1000
        futures.append(
            await prod.send(topic, orjson.dumps(m), key=m["user_id"].encode(), timestamp_ms=now_ms)
        )
    await asyncio.gather(*futures)
    return sent


@dataclass
class Record:
    partition: int
    offset: int
    timestamp: float
    key: bytes | None
    value: bytes


async def read_all(topic: str, timeout: float = 60.0) -> list[Record]:
    """Every committed record of ``topic`` up to its current end, in (partition, offset)
    order (a subscriber's view: under exactly-once an aborted write is no event)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    out: list[Record] = []
    try:
        tps = await topic_partitions(consumer, topic)
        ends = await consumer.end_offsets(tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in tps]
            if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                break
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, records in batch.items():
                out.extend(
                    Record(tp.partition, r.offset, r.timestamp / 1000, r.key, r.value or b"")
                    for r in records
                    if r.offset < ends[tp]
                )
        else:
            raise RuntimeError(f"{topic}: could not read to the end in {timeout}s")
    finally:
        await consumer.stop()
    out.sort(key=lambda r: (r.partition, r.offset))
    return out


class Committed:
    """Polls a group's committed offsets on a topic without joining the group."""

    def __init__(self, group: str, topic: str) -> None:
        self.group, self.topic = group, topic
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=BOOTSTRAP, group_id=group, enable_auto_commit=False
        )

    async def __aenter__(self) -> "Committed":
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def offsets(self) -> dict[int, int]:
        return await committed(self._consumer, self.topic)

    async def wait_for(
        self,
        target: dict[int, int],
        timeout: float,
        watch: Sequence[_Checked] = (),
        progress: str = "",
    ) -> float:
        """Poll until every partition with data is committed up to ``target``; returns when."""
        deadline = time.monotonic() + timeout
        last_log = time.monotonic()
        total = sum(target.values())
        while time.monotonic() < deadline:
            for p in watch:
                p.check()
            done = await self.offsets()
            if all(done.get(p, -1) >= end for p, end in target.items() if end > 0):
                return time.time()
            if progress and time.monotonic() - last_log > 5:
                last_log = time.monotonic()
                got = sum(max(0, min(done.get(p, 0), end)) for p, end in target.items())
                log(f"{progress}: committed {got}/{total}")
            await asyncio.sleep(0.25)
        raise RuntimeError(f"group {self.group} did not commit {target} within {timeout}s")
