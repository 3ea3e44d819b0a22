"""Real worker processes and real Kafka clients for integration tests (the parts the bench
and the demo use too are in ``tests.support``)."""

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from tests.support import BOOTSTRAP, Names, WorkerProcess, committed, end_offsets, free_port, rewind

__all__ = [
    "ADMIN_TOKEN",
    "BOOTSTRAP",
    "PARTITIONS",
    "READ_TOKEN",
    "REDIS_URL",
    "Kafka",
    "Names",
    "WorkerProcess",
    "decode",
    "free_port",
    "message",
]

REDIS_URL = os.environ.get("PROFILE_STREAM_REDIS_URL", "redis://127.0.0.1:6379/0")
READ_TOKEN = "test-read-token"
ADMIN_TOKEN = "test-admin-token"
PARTITIONS = 4


def message(
    user_id: str,
    content: str,
    *,
    message_id: str | None = None,
    role: str = "user",
    sent_at: str = "2026-11-25T10:00:00+00:00",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "message_id": message_id or uuid.uuid4().hex,
        "user_id": user_id,
        "conversation_id": "c1",
        "role": role,
        "content": content,
        "sent_at": sent_at,
        **extra,
    }


class Kafka:
    """Produce and read back with plain aiokafka, as an app on the other side would; on the
    local stack, or on the brokers ``bootstrap`` names (the three-broker fault tests')."""

    def __init__(self, bootstrap: str = BOOTSTRAP) -> None:
        self.bootstrap = bootstrap
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def send(
        self,
        topic: str,
        value: bytes | dict[str, Any],
        *,
        key: bytes | None = None,
        partition: int | None = None,
        keyed: bool = True,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        raw = value if isinstance(value, bytes) else orjson.dumps(value)
        if key is None and keyed and isinstance(value, dict):
            key = str(value["user_id"]).encode()
        await self.producer.send_and_wait(topic, raw, key=key, partition=partition, headers=headers)

    async def send_all(self, topic: str, messages: list[dict[str, Any]]) -> None:
        """Publish ``messages`` keyed by user id, in order, awaiting their acks together: a
        backlog that is all in Kafka before the workers have gone far into it."""
        sent = [
            await self.producer.send(topic, orjson.dumps(m), key=str(m["user_id"]).encode())
            for m in messages
        ]
        await asyncio.gather(*sent)

    async def read(
        self,
        topic: str,
        until: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
        timeout: float = 60.0,
        committed: bool = False,
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """Every record of ``topic`` from the start, once ``until`` holds (or fail at timeout);
        with ``committed``, as a subscriber reading committed records sees them (under
        exactly-once, a record is seen once its transaction, the worker's state with it, is)."""
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed" if committed else "read_uncommitted",
        )
        await consumer.start()
        records: list[ConsumerRecord[bytes, bytes]] = []
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=300)
                for part in batch.values():
                    records.extend(part)
                if until(records):
                    return records
        finally:
            await consumer.stop()
        raise AssertionError(
            f"{topic}: condition not met after {timeout}s; {len(records)} records read"
        )

    async def committed(self, group: str, topic: str) -> dict[int, int]:
        """The group's committed offsets on ``topic`` (partition to offset; -1 for none)."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            return await committed(consumer, topic)
        finally:
            await consumer.stop()

    async def wait_committed(
        self, group: str, topic: str, target: dict[int, int], timeout: float = 60.0
    ) -> dict[int, int]:
        """Poll until the group has committed ``target`` on every partition that has data."""
        deadline = time.monotonic() + timeout
        committed: dict[int, int] = {}
        while time.monotonic() < deadline:
            committed = await self.committed(group, topic)
            if all(committed.get(p, -1) >= end for p, end in target.items() if end > 0):
                return {p: max(committed.get(p, 0), 0) for p in target}
            await asyncio.sleep(0.5)
        raise AssertionError(f"{group} committed {committed} on {topic}, wanted {target}")

    async def end_offsets(self, topic: str) -> dict[int, int]:
        return await end_offsets(topic, self.bootstrap)

    async def rewind(self, group: str, topic: str) -> None:
        """Set the (idle) group's offsets on ``topic`` back to the beginning."""
        await rewind(group, topic, self.bootstrap)


def decode(records: list[ConsumerRecord[bytes, bytes]]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records if r.value is not None]
