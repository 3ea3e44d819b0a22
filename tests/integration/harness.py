"""Real worker processes and real Kafka clients for integration tests."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

BOOTSTRAP = os.environ.get("PROFILE_STREAM_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
REDIS_URL = os.environ.get("PROFILE_STREAM_REDIS_URL", "redis://127.0.0.1:6379/0")
READ_TOKEN = "test-read-token"
ADMIN_TOKEN = "test-admin-token"
PARTITIONS = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Names:
    """One test's own topics and consumer group."""

    prefix: str = field(default_factory=lambda: f"it-{uuid.uuid4().hex[:10]}")

    @property
    def input(self) -> str:
        return f"{self.prefix}-chat"

    @property
    def output(self) -> str:
        return f"{self.prefix}-updated"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}-dlq"

    @property
    def changelog(self) -> str:
        return f"{self.prefix}-profiles-changelog"

    def env(self) -> dict[str, str]:
        return {
            "PROFILE_STREAM_APP_ID": self.prefix,
            "PROFILE_STREAM_INPUT_TOPIC": self.input,
            "PROFILE_STREAM_OUTPUT_TOPIC": self.output,
            "PROFILE_STREAM_DLQ_TOPIC": self.dlq,
            "PROFILE_STREAM_PARTITIONS": str(PARTITIONS),
        }


class WorkerProcess:
    """``profile-stream worker`` in a subprocess, with its log in a file."""

    def __init__(self, env: dict[str, str], log: Path, port: int) -> None:
        self.env, self.log, self.port = env, log, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "WorkerProcess":
        exe = str(Path(sys.executable).with_name("profile-stream"))
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [exe, "worker"],
                env=self.env,
                stdout=out,  # noqa: S603
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    async def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise AssertionError(f"worker exited {self.proc.returncode}:\n{self.tail()}")
                try:
                    async with session.get(f"{self.url}/readyz") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"worker not ready after {timeout}s:\n{self.tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


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
    """Produce and read back with plain aiokafka, as an app on the other side would."""

    def __init__(self) -> None:
        self.producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")

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

    async def read(
        self,
        topic: str,
        until: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
        timeout: float = 60.0,
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """Every record of ``topic`` from the start, once ``until`` holds (or fail at timeout)."""
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=BOOTSTRAP,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
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
            bootstrap_servers=BOOTSTRAP, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            result = {}
            for p in await _partitions(consumer, topic):
                offset = await consumer.committed(TopicPartition(topic, p))
                result[p] = -1 if offset is None else offset
            return result
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
        consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=None)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in await _partitions(consumer, topic)]
            ends = await consumer.end_offsets(tps)
            return {tp.partition: off for tp, off in ends.items()}
        finally:
            await consumer.stop()

    async def rewind(self, group: str, topic: str) -> None:
        """Set the (idle) group's offsets on ``topic`` back to the beginning."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=BOOTSTRAP, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in await _partitions(consumer, topic)]
            consumer.assign(tps)
            await consumer.commit({tp: 0 for tp in tps})
        finally:
            await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client._wait_on_metadata(topic)
    return consumer.partitions_for_topic(topic) or set()


def decode(records: list[ConsumerRecord[bytes, bytes]]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records if r.value is not None]
