"""A three-broker Kafka of the fault tests' own, beside the stack ``make test`` uses, and a
watch on a topic that notes when each record arrived.

The cluster is ``deploy/stack.sh`` with a state dir and ports of its own (``STACK_DIR``,
``PROFILE_STREAM_KAFKA_PORT``) and no Redis (``STACK_REDIS=0``: the workers use the main
stack's): Kafka 4.1.1 in KRaft mode, three combined broker+controller nodes, replication factor 3
and ``min.insync.replicas=2``. Broker N listens on ``port + 10 * (N - 1)`` and is node id N.
"""

import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from tests.support import partitions

__all__ = ["Arrival", "Cluster", "Watch"]

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "deploy" / "stack.sh"
# The knobs of the main stack that must not leak into this one's calls.
_FOREIGN = ("PROFILE_STREAM_KAFKA_CONTROLLER_PORT", "PROFILE_STREAM_KAFKA_SASL_SSL_PORT")


@dataclass(frozen=True)
class Cluster:
    """The three brokers in ``folder`` (their data, logs and jars), broker 1 on ``port``."""

    folder: Path
    port: int
    version: str = "4.1.1"

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.port + 10 * n}" for n in range(3))

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("STACK_")}
        return {k: v for k, v in base.items() if k not in _FOREIGN} | {
            "STACK_DIR": str(self.folder),
            "STACK_REDIS": "0",
            "STACK_BROKERS": "3",
            "STACK_SECURE": "0",
            "STACK_KAFKA_VERSION": self.version,
            "PROFILE_STREAM_KAFKA_PORT": str(self.port),
            "STACK_PYTHON": sys.executable,  # a git worktree has no .venv of its own
        }

    async def stack(self, *args: str, timeout: float = 400, check: bool = True) -> str:
        """Run ``deploy/stack.sh ARGS`` on this cluster; its output, or fail with it."""
        proc = await asyncio.create_subprocess_exec(
            "bash",
            str(STACK),
            *args,
            env=self.env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(
                f"stack.sh {' '.join(args)} still running after {timeout}s"
            ) from None
        text = out.decode(errors="replace")
        assert proc.returncode == 0 or not check, f"stack.sh {' '.join(args)} failed:\n{text}"
        return text

    async def up(self) -> None:
        await self.stack("up")

    async def down(self) -> None:
        """Stop the brokers and delete their data (the jars stay for the next run)."""
        # SIGKILL first: the data goes anyway, and a clean stop of three brokers takes 10-20 s.
        for broker in (1, 2, 3):
            await self.stack("kill-broker", str(broker), timeout=60, check=False)
        await self.stack("down", "--wipe", timeout=120)

    async def kill(self, broker: int) -> None:
        """SIGKILL broker ``broker``; returns once it is dead."""
        await self.stack("kill-broker", str(broker), timeout=60)

    async def start(self, broker: int) -> None:
        """Start broker ``broker`` again; returns once the cluster has it registered."""
        await self.stack("start-broker", str(broker))

    async def describe(self, topics: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The partitions of ``topics`` (every topic when None), each with its ``topic``,
        ``partition``, ``leader``, ``replicas`` and ``isr``. A named topic just created may not
        have reached the answering broker's metadata yet: asked again, for up to 10 s."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10_000)
        await admin.start()
        try:
            names = list(topics) if topics is not None else await admin.list_topics()
            deadline = time.monotonic() + 10
            while True:
                described = await admin.describe_topics(names)
                unknown = [d["topic"] for d in described if d.get("error_code")]
                if topics is None or not unknown or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)  # the broker's metadata catching up: nothing to await
        finally:
            await admin.close()
        return [
            {"topic": d["topic"], **p}
            for d in described
            for p in d.get("partitions") or ()
            if not d.get("error_code")
        ]

    async def wait_in_sync(self, timeout: float = 180) -> float:
        """Wait until every partition of every topic has all its replicas in its ISR (a
        restarted broker has caught up); returns the seconds it took."""
        started = time.monotonic()
        lagging: list[str] = []
        while time.monotonic() - started < timeout:
            try:
                parts = await self.describe()
            except Exception:  # noqa: BLE001 - the cluster may be busy electing: ask again
                parts = []
            lagging = [
                f"{p['topic']}:{p['partition']} isr {p['isr']} of {p['replicas']}"
                for p in parts
                if set(p["isr"]) != set(p["replicas"])
            ]
            if parts and not lagging:
                return time.monotonic() - started
            await asyncio.sleep(1)
        raise AssertionError(f"not all partitions back in sync after {timeout}s: {lagging[:10]}")


@dataclass(frozen=True)
class Arrival:
    """One record of the watched topic, and when the watch received it (epoch seconds)."""

    received: float
    record: ConsumerRecord[bytes, bytes]

    @property
    def produced(self) -> float:
        """When the producer made it (the record's CreateTime), in epoch seconds."""
        return self.record.timestamp / 1000


@dataclass
class Watch:
    """Reads ``topic`` from the start in the background and keeps every record with the time it
    arrived, so a test can wait on the history and see when it stalled and resumed."""

    bootstrap: str
    topic: str
    arrivals: list[Arrival] = field(default_factory=list)
    _applied: set[str] = field(default_factory=set)
    _task: "asyncio.Task[None] | None" = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            consumer.assign(await partitions(consumer, self.topic))
        except BaseException:
            await consumer.stop()
            raise
        self._task = asyncio.create_task(self._run(consumer))

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=200)
                now = time.time()
                for records in batch.values():
                    for r in records:
                        self.arrivals.append(Arrival(now, r))
                        self._applied.update(orjson.loads(r.value)["source_message_ids"])
        finally:
            await consumer.stop()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def applied(self) -> int:
        """Distinct message ids the events received so far name."""
        return len(self._applied)

    def first_produced_after(self, moment: float) -> dict[int, Arrival]:
        """Per partition, the first record received that was produced after ``moment``."""
        first: dict[int, Arrival] = {}
        for a in self.arrivals:
            if a.produced > moment and a.record.partition not in first:
                first[a.record.partition] = a
        return first

    async def wait(self, until: Callable[[], bool], what: str, timeout: float) -> float:
        """Poll ``until`` (every 0.1 s) with a deadline; returns the seconds it took."""
        started = time.monotonic()
        while not until():
            if self._task is not None and self._task.done():
                self._task.result()  # the watch died: say why
            assert time.monotonic() - started < timeout, f"{what}: not within {timeout}s"
            await asyncio.sleep(0.1)
        return time.monotonic() - started
