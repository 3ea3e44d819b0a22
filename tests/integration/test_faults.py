"""Break the running system on purpose and check the invariants against a reference.

The reference is known in advance: each message i of a user adds the item n<i> and sets the
summary s<i>, so the final profile of a user whose messages were all applied once, in order,
is exactly [n00, n01, ...] with summary s<last>.
"""

import asyncio
import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tests.fakes.llm_server import FakeLLM

from .conftest import StartWorker
from .harness import READ_TOKEN, Kafka, Names, free_port, message
from .history import all_applied, check_against_reference, explain_missing, publish, script

pytestmark = pytest.mark.faults
ROOT = Path(__file__).resolve().parents[2]
FAST_FAILOVER = {"PROFILE_STREAM_SESSION_TIMEOUT_S": "6"}


async def test_kill_nine_repeatedly_loses_nothing_and_applies_nothing_twice(
    start_worker: StartWorker,
    kafka: Kafka,
    names: Names,
    fake_llm: FakeLLM,
    request: pytest.FixtureRequest,
) -> None:
    users, per_user, kills = 12, 40, int(request.config.getoption("--fault-kills"))
    script(fake_llm, users, per_user)
    rng = random.Random(20261125)
    fake_llm.latency = lambda: rng.uniform(0.1, 0.4)
    env = FAST_FAILOVER | {
        "PROFILE_STREAM_MAX_BATCH_MESSAGES": "1",
        "PROFILE_STREAM_COALESCE_WINDOW_S": "0",
    }
    worker = await start_worker(**env)
    sent = await publish(kafka, names, users, per_user)
    mid_run = 0
    for _ in range(kills):
        await asyncio.sleep(rng.uniform(0.3, 1.5))  # a random moment, not a synchronization
        mid_run += len(fake_llm.requests) < len(sent)
        worker.kill()
        worker = await start_worker(**env)
    assert mid_run >= kills // 2, f"only {mid_run} kills hit the run while it was working"
    try:
        records = await kafka.read(names.output, all_applied(len(sent)), timeout=180)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\n{await explain_missing(kafka, names, sent, fake_llm, worker.log)}"
        ) from None
    report = check_against_reference(records, sent, per_user)
    assert report["events"] == users * per_user
    print(
        f"\nkill -9: {kills} kills ({mid_run} mid-run), {len(sent)} messages, {users} users, "
        f"lost 0, doubled 0, exact duplicate events {report['duplicates']}"
    )


async def test_sigterm_stops_in_seconds_mid_backlog_and_the_next_worker_finishes_it(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    users, per_user = 12, 40  # one batch at a time per user: 40 x 0.5 s = 20 s of backlog
    script(fake_llm, users, per_user)
    fake_llm.latency = lambda: 0.5
    env = {"PROFILE_STREAM_MAX_BATCH_MESSAGES": "1", "PROFILE_STREAM_COALESCE_WINDOW_S": "0"}
    worker = await start_worker(**env)
    sent = await publish(kafka, names, users, per_user)
    await kafka.read(names.output, lambda records: len(records) >= 2 * users, timeout=60)
    assert worker.proc is not None
    started = time.monotonic()
    worker.proc.terminate()  # SIGTERM, as a rolling update sends it
    # In a thread: worker.stop() would block this loop, and the fake model with it.
    await asyncio.to_thread(worker.proc.wait, 60)
    took = time.monotonic() - started
    assert worker.proc.returncode == 0, worker.tail()
    assert took < 10, f"stopping took {took:.1f}s"
    assert len(fake_llm.requests) < len(sent), "the backlog was worked off before the stop"
    problems = [
        line
        for line in worker.log.read_text(errors="replace").splitlines()
        if any(word in line for word in ("ERROR", "CRITICAL", "Traceback", "Unclosed"))
    ]
    assert problems == []
    await start_worker(1, **env)
    records = await kafka.read(names.output, all_applied(len(sent)), timeout=120)
    report = check_against_reference(records, sent, per_user)
    assert report["events"] == users * per_user
    print(f"\nSIGTERM mid-backlog: stopped in {took:.1f}s, lost 0, doubled 0")


async def not_served(url: str, users: list[str]) -> dict[str, str]:
    """The users whose profile ``url`` does not serve, with the answer it gave."""
    headers = {"Authorization": f"Bearer {READ_TOKEN}"}
    missing = {}
    async with aiohttp.ClientSession(headers=headers) as s:
        for user in users:
            async with s.get(f"{url}/profiles/{user}") as r:
                if r.status != 200:
                    missing[user] = f"{r.status} {(await r.text())[:200]}"
    return missing


async def get_all(url: str, users: list[str]) -> bool:
    return not await not_served(url, users)


async def test_a_killed_workers_profiles_are_served_by_the_other_and_come_back(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    users, per_user = 16, 3
    script(fake_llm, users, per_user)
    a = await start_worker(0, **FAST_FAILOVER)
    b = await start_worker(1, **FAST_FAILOVER)
    sent = await publish(kafka, names, users, per_user)
    await kafka.read(names.output, all_applied(len(sent)))
    user_ids = [f"user-{u:02d}" for u in range(users)]
    assert await get_all(a.url, user_ids) and await get_all(b.url, user_ids)

    b.kill()
    killed_at = time.monotonic()
    while missing := await not_served(a.url, user_ids):
        assert time.monotonic() - killed_at < 60, f"not served 60 s after the kill: {missing}"
        await asyncio.sleep(0.2)
    failover_s = time.monotonic() - killed_at

    b = await start_worker(1, **FAST_FAILOVER)
    more = [message(u, f"note {per_user:02d} again") for u in user_ids]
    fake_llm.on(
        f"note {per_user:02d} again", {"field": "common_topics", "op": "add", "value": "again"}
    )
    for m in more:
        await kafka.send(names.input, m)
    await kafka.read(names.output, all_applied(len(sent) + len(more)))
    assert await get_all(a.url, user_ids) and await get_all(b.url, user_ids)
    print(f"\nfailover: all {users} profiles served again {failover_s:.1f}s after kill -9")


async def test_a_deleted_rocksdb_folder_is_rebuilt_from_the_changelog(
    start_worker: StartWorker,
    kafka: Kafka,
    names: Names,
    fake_llm: FakeLLM,
    tmp_path: Any,
) -> None:
    users, per_user = 6, 3
    script(fake_llm, users, per_user)
    worker = await start_worker()
    sent = await publish(kafka, names, users, per_user)
    await kafka.read(names.output, all_applied(len(sent)))
    user_ids = [f"user-{u:02d}" for u in range(users)]
    before = await profiles(worker.url, user_ids)
    worker.stop()
    shutil.rmtree(tmp_path / "worker-0")

    worker = await start_worker()
    assert await profiles(worker.url, user_ids) == before


async def profiles(url: str, users: list[str]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {READ_TOKEN}"}
    out = {}
    async with aiohttp.ClientSession(headers=headers) as s:
        for user in users:
            async with s.get(f"{url}/profiles/{user}?include=provenance") as r:
                assert r.status == 200, user
                out[user] = await r.json()
    return out


@pytest.mark.serial  # every other test would lose its broker too
async def test_kafka_and_redis_restarted_mid_run_the_worker_reconnects_and_finishes(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    users, per_user = 8, 20
    script(fake_llm, users, per_user)
    rng = random.Random(7)
    fake_llm.latency = lambda: rng.uniform(0.05, 0.2)
    # at_least_once: under exactly_once a whole cluster gone stops the worker (exit 70, for its
    # supervisor to restart) instead: aiokafka's transactional sender fails every batch in
    # flight on a connection error to the coordinator ("Unexpected error during batch
    # delivery"). One broker of three lost is survived under either (test_cluster_faults.py).
    worker = await start_worker(
        PROFILE_STREAM_MAX_BATCH_MESSAGES="1",
        PROFILE_STREAM_COALESCE_WINDOW_S="0",
        PROFILE_STREAM_PROCESSING_GUARANTEE="at_least_once",
    )
    sent = await publish(kafka, names, users, per_user)
    await kafka.read(names.output, lambda r: len(r) >= 5)
    assert len(fake_llm.requests) < len(sent), "the run ended before the restart"
    mode = _stack_mode()  # `up` must bring back the same stack (e.g. its TLS/SASL listeners)
    await stack("down")
    assert not _listening(9092), "Kafka still answers after `stack.sh down`: not ours to stop"
    await stack("up", mode)

    records = await kafka.read(names.output, all_applied(len(sent)), timeout=180)
    check_against_reference(records, sent, per_user)
    assert worker.proc is not None and worker.proc.poll() is None, worker.tail()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _stack_mode() -> dict[str, str]:
    """The running stack's knobs, from the file ``stack.sh up`` writes."""
    path = ROOT / ".stack" / "kafka" / "stack.env"
    lines = path.read_text().splitlines() if path.exists() else []
    pairs = dict(line.split("=", 1) for line in lines if "=" in line)
    knobs = ("STACK_SECURE", "STACK_BROKERS", "STACK_KAFKA_VERSION")
    return {k: v for k, v in pairs.items() if k in knobs}


async def stack(command: str, mode: dict[str, str] | None = None) -> None:
    proc = await asyncio.create_subprocess_exec(
        "bash",
        str(ROOT / "deploy" / "stack.sh"),
        command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=os.environ | (mode or {}),
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()


class OwnRedis:
    """A redis-server of this test's own, to stop and start without touching the shared one."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self) -> None:
        server = shutil.which("redis-server")
        assert server, "redis-server is missing: `make up` installs it"
        args = [
            server,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.folder),
        ]
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,  # noqa: S603
            stderr=subprocess.DEVNULL,
        )

    async def start(self) -> None:
        self._spawn()
        client = aioredis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                await client.ping()
                break
            except RedisError:
                assert time.monotonic() < deadline, "own redis-server did not start"
                await asyncio.sleep(0.1)
        await client.aclose()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    await server.start()
    yield server
    server.stop()


async def test_without_redis_processing_goes_on_and_the_cache_is_used_again_when_it_returns(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM, own_redis: OwnRedis
) -> None:
    fake_llm.on("I speak", {"field": "languages", "op": "add", "value": "Welsh"})
    await start_worker(PROFILE_STREAM_REDIS_URL=own_redis.url)
    client = aioredis.from_url(own_redis.url)
    pattern = f"{names.prefix}:extraction:*"

    await kafka.send(names.input, message("rhys", "I speak Welsh"))
    await kafka.read(names.output, lambda r: len(r) >= 1)
    assert len([k async for k in client.scan_iter(pattern)]) == 1
    await client.aclose()
    own_redis.stop()

    await kafka.send(names.input, message("nia", "I speak Welsh too"))
    await kafka.read(names.output, lambda r: len(r) >= 2)  # no Redis: still processed

    await own_redis.start()  # an empty Redis comes back
    await kafka.send(names.input, message("owen", "I speak Welsh as well"))
    await kafka.read(names.output, lambda r: len(r) >= 3)
    client = aioredis.from_url(own_redis.url)  # the old connection died with the old server
    assert [k async for k in client.scan_iter(pattern)], "the cache was not used again"
    await client.aclose()
