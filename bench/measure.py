"""Measuring tools: worker subprocesses with CPU/RSS sampling from /proc, Kafka helpers,
percentiles and the per-user order check. No scenario logic here."""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

BOOTSTRAP = os.environ.get("PROFILE_STREAM_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
PARTITIONS = 8
_T0 = time.monotonic()
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(text: str) -> None:
    """A progress line with the seconds since the bench started."""
    print(f"[bench {time.monotonic() - _T0:6.1f}s] {text}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Names:
    """One scenario's own topics and consumer group."""

    scenario: str
    prefix: str = ""

    def __post_init__(self) -> None:
        if not self.prefix:
            self.prefix = f"bench-{self.scenario}-{uuid.uuid4().hex[:8]}"

    @property
    def input(self) -> str:
        return f"{self.prefix}-chat"

    @property
    def output(self) -> str:
        return f"{self.prefix}-updated"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}-dlq"

    def worker_env(self, model_url: str, **settings: object) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("PROFILE_STREAM_") and not k.startswith("OPENAI_")
        }
        env.update(
            {
                "PROFILE_STREAM_KAFKA_BOOTSTRAP": BOOTSTRAP,
                "PROFILE_STREAM_APP_ID": self.prefix,
                "PROFILE_STREAM_INPUT_TOPIC": self.input,
                "PROFILE_STREAM_OUTPUT_TOPIC": self.output,
                "PROFILE_STREAM_DLQ_TOPIC": self.dlq,
                "PROFILE_STREAM_PARTITIONS": str(PARTITIONS),
                "PROFILE_STREAM_EXTRACTOR": "openai",
                "PROFILE_STREAM_LOG_LEVEL": "warning",
                "OPENAI_BASE_URL": model_url,
                "OPENAI_API_KEY": "x",
            }
        )
        for name, value in settings.items():
            env[f"PROFILE_STREAM_{name.upper()}"] = str(value)
        return env


async def first_admitted(worker: "Worker", poll_s: float = 0.02) -> float:
    """Wall-clock time at which the worker's ``/metrics`` first counts an input event, to
    within ``poll_s``: where a run starts when the worker may wait before its first output."""
    url = f"http://127.0.0.1:{worker.port}/metrics"
    async with aiohttp.ClientSession() as session:
        while True:
            worker.check()
            async with session.get(url) as response:
                text = await response.text()
            for line in text.splitlines():
                if line.startswith("profile_stream_events_in_total") and float(line.split()[-1]):
                    return time.time()
            await asyncio.sleep(poll_s)


# ---------------------------------------------------------------------------------------------
# /proc sampling


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read()
    fields = raw[raw.rindex(b")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def proc_hwm_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of ``pid`` in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy (not idle, not waiting for I/O) since boot."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return (sum(parts[:8]) - idle) / _CLK_TCK


def broker_pid() -> int | None:
    """The local Kafka broker's pid (a JVM running ``kafka.Kafka``), if it runs here."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"kafka.Kafka\0" in cmdline or cmdline.endswith(b"kafka.Kafka"):
            return int(entry.name)
    return None


@dataclass
class Sampler:
    """CPU seconds and peak RSS of one process (or, with ``pid=None``, busy CPU seconds of the
    whole machine), sampled with wall-clock times."""

    pid: int | None
    interval: float = 0.1
    samples: list[tuple[float, float]] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    def sample(self) -> None:
        try:
            if self.pid is None:
                self.samples.append((time.time(), machine_busy_s()))
                return
            self.samples.append((time.time(), proc_cpu_s(self.pid)))
            self.peak_rss_mb = max(self.peak_rss_mb, proc_hwm_mb(self.pid))
        except (OSError, ValueError, IndexError):
            pass  # the process is gone

    async def _loop(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        self.sample()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def cpu_at(self, wall: float) -> float:
        """CPU seconds used up to wall-clock time ``wall`` (linear between samples)."""
        s = self.samples
        if not s:
            return 0.0
        if wall <= s[0][0]:
            return s[0][1]
        for (t0, c0), (t1, c1) in zip(s, s[1:], strict=False):
            if t0 <= wall <= t1:
                return c0 + (c1 - c0) * ((wall - t0) / (t1 - t0) if t1 > t0 else 1.0)
        return s[-1][1]

    def cpu_between(self, start: float, end: float) -> float:
        return self.cpu_at(end) - self.cpu_at(start)


# ---------------------------------------------------------------------------------------------
# subprocesses


class Process:
    """A subprocess with its output in a log file, a CPU/RSS sampler, and a sure stop."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.argv, self.env, self.log_path = argv, env, log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.sampler: Sampler | None = None
        self.started_at = 0.0

    def start(self) -> "Process":
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=str(Path(__file__).resolve().parent.parent),
            )
        self.started_at = time.time()
        self.sampler = Sampler(self.proc.pid)
        self.sampler.start()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.argv[0]} exited with {self.proc.returncode}; log {self.log_path}:\n"
                f"{self.tail()}"
            )

    async def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL to its process group after ``timeout``."""
        if self.sampler is not None:
            await self.sampler.stop()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        await self.wait_exit(timeout)
        self.kill()

    async def wait_exit(self, timeout: float) -> bool:
        """Whether the process exited within ``timeout`` seconds."""
        for _ in range(max(1, int(timeout / 0.1))):
            if self.proc is None or self.proc.poll() is not None:
                return True
            await asyncio.sleep(0.1)
        return self.proc.poll() is not None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)


class Worker(Process):
    """``profile-stream worker`` with its own web port and data dir."""

    def __init__(self, env: dict[str, str], workdir: Path, name: str = "worker") -> None:
        self.port = free_port()
        self.data_dir = workdir / f"{name}-data"
        env = {
            **env,
            "PROFILE_STREAM_WEB_PORT": str(self.port),
            "PROFILE_STREAM_DATA_DIR": str(self.data_dir),
        }
        exe = str(Path(sys.executable).with_name("profile-stream"))
        super().__init__([exe, "worker"], env, workdir / f"{name}.log")
        self.ready_at = 0.0

    async def wait_ready(self, timeout: float = 120.0) -> float:
        """Wait for /readyz; returns the seconds it took since start."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                self.check()
                try:
                    url = f"http://127.0.0.1:{self.port}/readyz"
                    async with session.get(url) as r:
                        if r.status == 200:
                            self.ready_at = time.time()
                            return self.ready_at - self.started_at
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.tail()}")


def workdir(scenario: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"bench-{scenario}-"))


def remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Kafka


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
                    tps = await _partitions(consumer, name)
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


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    await consumer._client._wait_on_metadata(topic)
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


async def end_offsets(topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(await _partitions(consumer, topic))
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await consumer.stop()


@dataclass
class Record:
    partition: int
    offset: int
    timestamp: float
    key: bytes | None
    value: bytes


async def read_all(topic: str, timeout: float = 60.0) -> list[Record]:
    """Every record of ``topic`` up to its current end, in (partition, offset) order."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    out: list[Record] = []
    try:
        tps = await _partitions(consumer, topic)
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
        result = {}
        for tp in await _partitions(self._consumer, self.topic):
            off = await self._consumer.committed(tp)
            result[tp.partition] = -1 if off is None else off
        return result

    async def wait_for(
        self,
        target: dict[int, int],
        timeout: float,
        watch: Sequence[Process] = (),
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


async def rewind(group: str, topic: str) -> None:
    """Set the (idle) group's committed offsets on ``topic`` back to 0."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = await _partitions(consumer, topic)
        consumer.assign(tps)
        await consumer.commit({tp: 0 for tp in tps})
    finally:
        await consumer.stop()


# ---------------------------------------------------------------------------------------------
# analysis


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


@dataclass
class Events:
    """Decoded profile events of an output topic, with their record timestamps."""

    records: list[Record]
    events: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.events = [orjson.loads(r.value) for r in self.records]

    def first_ts(self) -> float:
        return min(r.timestamp for r in self.records)

    def last_ts(self) -> float:
        return max(r.timestamp for r in self.records)

    def emitted_at(self) -> dict[str, float]:
        """Source message id to the record timestamp of the event that names it first."""
        at: dict[str, float] = {}
        for r, e in zip(self.records, self.events, strict=True):
            for mid in e.get("source_message_ids") or ():
                at.setdefault(mid, r.timestamp)
        return at


def after_model(events: Events, answered: dict[str, float]) -> dict[str, float]:
    """Seconds from the model's answer to the event naming the message (merge, table write,
    changelog flush, event delivery): p50, p95, max over messages."""
    emitted = events.emitted_at()
    gaps = [emitted[mid] - t for mid, t in answered.items() if mid in emitted]
    return {
        "p50_s": percentile(gaps, 0.5),
        "p95_s": percentile(gaps, 0.95),
        "max_s": max(gaps) if gaps else float("nan"),
    }


def order_violations(events: Events, published: dict[str, list[str]]) -> dict[str, Any]:
    """Check every user's events: versions 1, 2, 3... and source messages in publish order.

    ``published`` maps a user id to its message ids in publish order. Events are taken in
    partition offset order (one user's events are on one partition).
    """
    by_user: dict[str, list[dict[str, Any]]] = {}
    for e in events.events:
        by_user.setdefault(e["user_id"], []).append(e)
    version_gaps = out_of_order = repeated = unknown = 0
    examples: list[str] = []
    seen_total: set[str] = set()
    for user, evs in by_user.items():
        versions = [e["version"] for e in evs]
        if versions != list(range(1, len(evs) + 1)):
            version_gaps += 1
            examples.append(f"{user}: versions {versions[:10]}")
        index = {mid: i for i, mid in enumerate(published.get(user, []))}
        last = -1
        seen: set[str] = set()
        for e in evs:
            for mid in e.get("source_message_ids") or ():
                if mid in seen:
                    repeated += 1
                    examples.append(f"{user}: {mid} applied twice")
                    continue
                seen.add(mid)
                i = index.get(mid)
                if i is None:
                    unknown += 1
                    continue
                if i < last:
                    out_of_order += 1
                    examples.append(f"{user}: {mid} after a later message")
                last = max(last, i)
        seen_total |= seen
    expected = {mid for mids in published.values() for mid in mids}
    missing = len(expected - seen_total)
    return {
        "users": len(by_user),
        "events": len(events.events),
        "version_violations": version_gaps,
        "out_of_order": out_of_order,
        "repeated": repeated,
        "unknown_sources": unknown,
        "missing_messages": missing,
        "violations": version_gaps + out_of_order + repeated,
        "examples": examples[:5],
    }
