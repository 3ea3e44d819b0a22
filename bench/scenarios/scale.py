"""The scale scenario: one worker holding N profiles (100k in the short run, 1M in the full one;
``BENCH_SCALE_PROFILES`` sets another N), all in one run.

1. **Preload.** N profile records go straight into the worker's profile changelog: the history
   scenario's typical record after its first extraction (every field of the default profile
   set once, with its revision), encoded by the project's encoder and partitioned as the worker
   partitions its table (as the restart scenario does).
2. **The ceiling.** A raw aiokafka consumer (no group) reads that changelog from its start to
   its end: records/s, in the bench process.
3. **Restore.** A worker starts on an empty data dir (the local store deleted) and restores the
   N records: time to ``/readyz``. Its restore time is that minus the time to ready after a
   clean stop right after it (the interpreter's start, the topic checks and the group join,
   which every start pays); profiles/s and the ratio to the raw consumer follow. Then its RSS
   and its data dir's size on disk, per 100k profiles. The bulk restore also times itself (its
   log line at INFO, from its consumer's start to its flush), as the raw pass is timed: the
   target's ratio. Steps 2 and 3 (the view aside) make a round; each ratio is its median
   round's (short: 3 rounds, full: 1; ``BENCH_SCALE_ROUNDS`` sets another count): one round's
   times swing by seconds with the load of a shared machine.
4. **View.** ``GET /profiles/{user}`` at ``VIEW_RATE`` reads/s, open loop (each read sent on
   schedule whatever the answers do; its latency counted from its scheduled time), users drawn
   at random from the N: p50/p99 and the rate achieved.
5. **Restarts.** A clean stop and start (the baseline), then a kill -9 and start, with the local
   store present (the worker wipes it, having found no clean-stop marker, and restores).
6. **Clock.** The flush timer's tick at 10k and 1M buffered users, and the table items its
   rebuild reads on an assignment (``bench/scenarios/scale_clock.py``).
"""

import asyncio
import os
import random
import re
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer

from schemas import ProfileRecord
from streams.core.buffer_layout import LEGACY_SCANNED
from streams.core.codecs import encode
from streams.core.partitioning import partition_for
from streams.settings import Settings
from tests.support import partitions as topic_partitions

from ..progress import log
from ..sampling import proc_rss_mb
from ..topics import BOOTSTRAP, PARTITIONS, producer
from ..workers import Worker
from .history import TYPICAL, versions
from .scale_clock import DUE, LARGE, SMALL, assignment_reads, tick_us
from .stage import Config, Stage

__all__ = ["preload", "scale_run", "template"]

VIEW_RATE = 500.0
_READ_TOKEN = "bench-scale-read-token"  # noqa: S105 - the bench worker's own read token
_SEND_CHUNK = 20_000
_READ_TIMEOUT_S = 10.0
_PER = 100_000  # RSS and disk are reported per this many profiles
_ROUNDS = {True: 3, False: 1}  # restore rounds, short and full run
# The worker's own timing of a bulk restore (streams/faust_glue/recovery.py, at INFO).
_RESTORED = re.compile(r"bulk restore done partitions=\d+ records=(\d+) seconds=([\d.]+)")


def template() -> ProfileRecord:
    """A typical record after its first extraction."""
    return versions(TYPICAL, Settings.model_fields["revisions_per_field"].default, 1)[-1].record


async def preload(topic: str, count: int) -> int:
    """Put ``count`` typical records (``user-0000000``...) in the changelog ``topic``; returns
    the bytes of their values."""
    record, sent = template(), 0
    prod = producer(max_batch_size=512 * 1024)
    await prod.start()
    try:
        for first in range(0, count, _SEND_CHUNK):
            futures = []
            for i in range(first, min(first + _SEND_CHUNK, count)):
                key = _user(i).encode()
                value = encode(record.model_copy(update={"user_id": key.decode()}))
                sent += len(value)
                partition = partition_for(key, PARTITIONS)
                futures.append(await prod.send(topic, value, key=key, partition=partition))
            await asyncio.gather(*futures)
    finally:
        await prod.stop()
    return sent


async def mark_converted(topic: str) -> None:
    """Put in each partition of the buffer changelog ``topic`` the marker that its profile
    records hold no buffer of the single-record release, as a worker of this release writes
    it: the profiles are then this release's, and an assignment does not read them."""
    prod = producer()
    await prod.start()
    try:
        sends = [
            await prod.send(topic, b"1", key=LEGACY_SCANNED, partition=p) for p in range(PARTITIONS)
        ]
        await asyncio.gather(*sends)
    finally:
        await prod.stop()


def _user(i: int) -> str:
    return f"user-{i:07d}"


async def _raw_read(topic: str) -> dict[str, float]:
    """A raw consumer reading ``topic`` from its start to its end: records, bytes, seconds."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = await topic_partitions(consumer, topic)
        ends = await consumer.end_offsets(tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        left = {tp for tp in tps if ends[tp] > 0}
        records = size = 0
        started = time.monotonic()
        while left:
            for tp, batch in (await consumer.getmany(timeout_ms=1000)).items():
                records += len(batch)
                size += sum(len(r.value or b"") for r in batch)
                if batch and batch[-1].offset >= ends[tp] - 1:
                    left.discard(tp)
        took = time.monotonic() - started
    finally:
        await consumer.stop()
    return {"records": records, "bytes": size, "s": round(took, 2)}


def _du_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += (Path(root) / name).stat().st_size
            except OSError:
                pass
    return total / 2**20


async def _view_load(url: str, users: int, seconds: float) -> dict[str, float]:
    """``GET /profiles/{user}`` at ``VIEW_RATE``/s for ``seconds``, open loop."""
    rng = random.Random(11)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def one(session: aiohttp.ClientSession, user: str, due: float) -> None:
        try:
            async with session.get(f"{url}/profiles/{user}") as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0  # no answer in time: a failed read, its wait counted all the same
        statuses[status] = statuses.get(status, 0) + 1
        latencies.append(time.monotonic() - due)

    count = int(VIEW_RATE * seconds)
    tasks = []
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=_READ_TIMEOUT_S)
    headers = {"Authorization": f"Bearer {_READ_TOKEN}"}
    async with aiohttp.ClientSession(
        connector=connector, headers=headers, timeout=timeout
    ) as session:
        start = time.monotonic() + 0.1
        for i in range(count):
            due = start + i / VIEW_RATE
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            user = _user(rng.randrange(users))
            tasks.append(asyncio.create_task(one(session, user, due)))
        await asyncio.gather(*tasks)
        took = time.monotonic() - start
    ordered = sorted(latencies)
    return {
        "reads": count,
        "failed": count - statuses.get(200, 0),
        "statuses": {str(k): v for k, v in statuses.items()},
        "achieved_per_s": round(count / took, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 2),
    }


async def _start(
    stage: Stage, env: dict[str, str], port: int, timeout: float
) -> tuple[Worker, float]:
    worker = Worker(env, stage.dir, "scale", port)
    stage.spawn(worker)
    return worker, await worker.wait_ready(timeout=timeout)


async def _worker_part(cfg: Config, stage: Stage, count: int, result: dict[str, Any]) -> None:
    model = await stage.fake("0")
    first = await stage.worker(
        model.url, "scale", group_instance_id="scale", read_tokens=_READ_TOKEN
    )
    env, port = first.env, first.port
    if cfg.worker_log_level in ("warning", "error"):  # its restore's own timing is at INFO
        env = {**env, "PROFILE_STREAM_LOG_LEVEL": "info"}
    await asyncio.sleep(2)
    result["base_rss_mb"] = round(proc_rss_mb(first.pid), 1)  # no profile stored yet
    await first.terminate()  # the topics exist now; the changelog is empty
    _empty(stage)  # a first start on an empty data dir: nothing stored locally
    changelog = f"{stage.names.prefix}-profiles-changelog"
    started = time.monotonic()
    sent = await preload(changelog, count)
    log(f"{count:,} records ({sent / 1e6:.0f} MB) preloaded in {time.monotonic() - started:.0f}s")
    result["changelog_mb"] = round(sent / 1e6, 1)
    await mark_converted(f"{stage.names.prefix}-profiles-buffers-changelog")
    raw = await _raw_read(changelog)
    log(f"raw consumer: {raw['records']:,} records in {raw['s']:.1f}s")
    timeout = 300 + count / 500  # at 500 profiles/s
    worker, empty_ready_s = await _start(stage, env, port, timeout)
    own = _own_restore(stage)
    log(f"restored {count:,} on an empty data dir: ready in {empty_ready_s:.1f}s ({own})")
    await asyncio.sleep(5)  # let what the restore left (compactions, buffers) settle
    result["rss_mb"] = round(proc_rss_mb(worker.pid), 1)
    assert worker.sampler is not None  # noqa: S101
    worker.sampler.sample()
    result["peak_rss_mb"] = round(worker.sampler.peak_rss_mb, 1)
    result["disk_mb"] = round(_du_mb(worker.data_dir), 1)
    log(
        f"RSS {result['rss_mb']:.0f} MiB (peak {result['peak_rss_mb']:.0f}), "
        f"disk {result['disk_mb']:.0f} MiB"
    )
    result["view"] = await _view_load(worker.url, count, 10.0 if cfg.short else 20.0)
    log(f"view: {result['view']}")
    await worker.terminate()
    worker, clean_ready_s = await _start(stage, env, port, timeout)
    log(f"after a clean stop: ready in {clean_ready_s:.1f}s")
    rounds = [_round(count, raw, empty_ready_s, clean_ready_s, own)]
    for _ in range(1, int(os.environ.get("BENCH_SCALE_ROUNDS", _ROUNDS[cfg.short]))):
        await worker.terminate()
        _empty(stage)
        raw = await _raw_read(changelog)
        worker, empty_ready_s = await _start(stage, env, port, timeout)
        own = _own_restore(stage)
        await worker.terminate()
        worker, clean_ready_s = await _start(stage, env, port, timeout)
        rounds.append(_round(count, raw, empty_ready_s, clean_ready_s, own))
        log(f"restore round {len(rounds)}: {rounds[-1]}")
    result["rounds"] = rounds
    result |= sorted(rounds, key=lambda one: one["restore_ratio"])[len(rounds) // 2]
    timed = sorted((one for one in rounds if one["own"]), key=lambda one: one["own_ratio"])
    result["own_round"] = timed[len(timed) // 2] if timed else None
    worker.kill()
    await worker.wait_exit(30)
    stored = _du_mb(worker.data_dir)
    worker, result["killed_ready_s"] = await _start(stage, env, port, timeout)
    log(f"after kill -9 ({stored:.0f} MiB stored): ready in {result['killed_ready_s']:.1f}s")
    result["killed_store_mb"] = round(stored, 1)
    await worker.terminate()


def _own_restore(stage: Stage) -> dict[str, float] | None:
    """The last bulk restore in the worker's log, as it timed itself: from its consumer's start
    to its databases' flush. None when the log has none (another restore path, a log level
    above INFO)."""
    found = _RESTORED.findall((stage.dir / "scale.log").read_text(errors="replace"))
    return {"records": int(found[-1][0]), "s": float(found[-1][1])} if found else None


def _round(
    count: int,
    raw: dict[str, float],
    empty_ready_s: float,
    clean_ready_s: float,
    own: dict[str, float] | None,
) -> dict[str, Any]:
    """One restore round's figures: its raw pass, its restore timed from the two starts, and
    the worker's own timing of it."""
    restore_s = max(empty_ready_s - clean_ready_s, 1e-3)
    restore_per_s = count / restore_s
    raw_per_s = raw["records"] / max(raw["s"], 1e-3)
    own_per_s = own["records"] / max(own["s"], 1e-3) if own else None
    return {
        "own": own,
        "own_per_s": round(own_per_s, 1) if own_per_s else None,
        "own_ratio": round(own_per_s / raw_per_s, 3) if own_per_s else None,
        "raw": raw,
        "empty_ready_s": empty_ready_s,
        "clean_ready_s": clean_ready_s,
        "restore_s": round(restore_s, 2),
        "restore_per_s": round(restore_per_s, 1),
        "raw_per_s": round(raw_per_s, 1),
        "restore_ratio": round(restore_per_s / raw_per_s, 3),
    }


def _empty(stage: Stage) -> None:
    for path in (stage.dir / "scale-data").glob("*"):
        _remove(path)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


async def scale_run(cfg: Config, results: dict[str, Any]) -> None:
    """The scale rows' measurements (see the module's docstring)."""
    count = int(os.environ.get("BENCH_SCALE_PROFILES", 100_000 if cfg.short else 1_000_000))
    result: dict[str, Any] = {"profiles": count, "record_bytes": len(encode(template()))}
    results["scale"] = result
    async with Stage("scale", cfg) as stage:
        await _worker_part(cfg, stage, count, result)
    for users in (SMALL, LARGE):
        log(f"flush timer: {users:,} buffered users, {DUE} due per tick")
        result[f"tick_us_{users}"] = await tick_us(users)
    result["tick_users"] = [SMALL, LARGE]
    result["tick_due"] = DUE
    result["assignment"] = await assignment_reads(count, 1000)
    result["done"] = True
