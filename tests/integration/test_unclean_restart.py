"""A worker that dies between its local table write and the changelog's acknowledgement,
restarted on the same data dir under the same instance id within the session timeout (what
the StatefulSet with static membership does), must not take its local state for durable: once
the partitions move to another worker, the whole history still has every message applied once,
one content per event id and contiguous versions (review F1, F8; docs/operations.md, "After an
unclean stop").

A kill -9 cannot be timed into the milliseconds between Faust's RocksDB put and the changelog's
acknowledgement on a real broker, so the test widens that window on the test's own changelog
topic: a ``max.message.bytes`` too small for the next record makes Kafka refuse the write, and
the worker stops at once (``os._exit``, as for any record Kafka refuses: no shutdown runs, like
kill -9) with the write in its RocksDB and not in the changelog. The kill -9 of the flush test
lands while the flush is at the (held) model.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.core.clean_stop import MARKER
from tests.fakes.llm_server import FakeLLM

from .conftest import StartWorker
from .harness import BOOTSTRAP, READ_TOKEN, Kafka, Names, WorkerProcess, message
from .history import (
    all_applied,
    audit,
    check_against_reference,
    explain_missing,
    read_all,
    script,
)

pytestmark = pytest.mark.faults

USERS = 6
#: Messages per user: 0 is buffered durably, 1 meets the crash.
ROUNDS = 2
#: Short enough for a test, long enough for a restart on a busy machine to rejoin within it.
SESSION_TIMEOUT_S = "20"
#: Any changelog record (a buffered message, a profile) is larger: the next write is refused.
REFUSING_BYTES = 64


Restart = Callable[[WorkerProcess], WorkerProcess]


@pytest.fixture
def restart() -> Iterator[Restart]:
    """Start a worker again as it was: its data dir, instance id, and web address (the group
    hands an instance id's partitions only to the address they were assigned to)."""
    started: list[WorkerProcess] = []

    def again(worker: WorkerProcess) -> WorkerProcess:
        started.append(WorkerProcess(worker.env, worker.log, worker.port).start())
        return started[-1]

    yield again
    for worker in started:
        worker.stop()


def _round(i: int) -> list[dict[str, Any]]:
    """Message ``i`` of every user (the reference of :func:`script`: item n<i>, summary s<i>)."""
    return [
        message(
            f"user-{u:02d}", f"note {i:02d} from user {u}", sent_at=f"2026-11-25T09:{i:02d}:00Z"
        )
        for u in range(USERS)
    ]


async def _changelog_limit(names: Names, max_bytes: int | None) -> None:
    """Set (or, with None, put back to the broker default) the record size limit of both
    changelogs (profiles, buffered messages), keeping the topics' other settings (AlterConfigs
    replaces them all)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        for name in (names.changelog, names.buffer_changelog):
            topic = ConfigResource(ConfigResourceType.TOPIC, name)
            described = await admin.describe_configs([topic])
            kept = {
                key: value
                for key, value, _read_only, source, *_ in described[0].resources[0][4]
                if source == 1 and key != "max.message.bytes"  # 1: set on the topic
            }
            if max_bytes is not None:
                kept["max.message.bytes"] = str(max_bytes)
            await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, kept)])
    finally:
        await admin.close()


async def _send_round(kafka: Kafka, names: Names, i: int, sent: list[dict[str, Any]]) -> None:
    batch = _round(i)
    await kafka.send_all(names.input, batch)
    sent.extend(batch)


async def _all_committed(kafka: Kafka, names: Names, timeout: float = 90.0) -> None:
    await kafka.wait_committed(
        names.prefix, names.input, await kafka.end_offsets(names.input), timeout=timeout
    )


async def _dies_refused(worker: WorkerProcess) -> None:
    assert await worker.wait_exit(60), "the worker outlived a changelog write Kafka refused"
    assert worker.proc is not None and worker.proc.returncode == 70, worker.tail()


async def _true(value: bool) -> bool:
    return value


async def _committed_to(kafka: Kafka, names: Names, end: dict[int, int]) -> bool:
    committed = await kafka.committed(names.prefix, names.input)
    return all(committed.get(p, -1) >= offset for p, offset in end.items() if offset > 0)


async def _until(
    worker: WorkerProcess,
    condition: Callable[[], Awaitable[bool]],
    *,
    or_exit: bool = False,
    timeout: float = 90.0,
) -> None:
    """Poll ``condition`` while ``worker`` runs (its exit ends the wait too when ``or_exit``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if or_exit and not worker.alive():
            return
        worker.check()
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met in {timeout}s:\n{worker.tail()}")


async def _serves_reference(url: str) -> bool:
    """Whether the worker at ``url`` serves every user's profile with all messages applied."""
    reference = ([f"n{i:02d}" for i in range(ROUNDS)], f"s{ROUNDS - 1:02d}")
    headers = {"Authorization": f"Bearer {READ_TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for user in range(USERS):
            async with session.get(f"{url}/profiles/user-{user:02d}") as response:
                if response.status != 200:
                    return False
                body = await response.json()
            profile = body.get("profile", body)
            served = profile.get("common_topics"), profile.get("last_conversation_summary")
            if served != reference:
                return False
    return True


async def _moved_and_checked(
    start_worker: StartWorker,
    kafka: Kafka,
    names: Names,
    fake_llm: FakeLLM,
    sent: list[dict[str, Any]],
    static: dict[str, str],
) -> None:
    """Another worker (its own data dir, flushing at once) takes the partitions and serves
    every profile as the reference has it; the history must hold every message once."""
    other = await start_worker(1, **(static | {"PROFILE_STREAM_GROUP_INSTANCE_ID": "other"}))
    try:
        # Once it serves them, it has flushed all it restored: the history is complete.
        await _until(other, lambda: _serves_reference(other.url), timeout=120)
        records = await kafka.read(names.output, all_applied(len(sent)), timeout=30)
    except AssertionError:
        found = audit(await read_all(names.output), sent, ROUNDS)
        why = await explain_missing(kafka, names, sent, fake_llm, other.log)
        raise AssertionError(
            f"the new owner never served every profile with all messages applied; the "
            f"history: {found}\n{why}"
        ) from None
    check_against_reference(records, sent, per_user=ROUNDS)


async def _round_0_buffered(
    start_worker: StartWorker, kafka: Kafka, names: Names, guarantee: str
) -> tuple[WorkerProcess, list[dict[str, Any]], dict[str, str]]:
    """Worker A (instance id ``a``, flushing only after 600 s idle) with every user's message 0
    buffered and acknowledged; the messages sent, and the settings any worker of the test shares."""
    static = {
        "PROFILE_STREAM_SESSION_TIMEOUT_S": SESSION_TIMEOUT_S,
        "PROFILE_STREAM_PROCESSING_GUARANTEE": guarantee,
    }
    env = static | {"PROFILE_STREAM_GROUP_INSTANCE_ID": "a", "PROFILE_STREAM_FLUSH_IDLE_S": "600"}
    a = await start_worker(0, **env)
    sent: list[dict[str, Any]] = []
    await _send_round(kafka, names, 0, sent)
    await _all_committed(kafka, names)
    return a, sent, static


async def test_a_buffered_message_the_changelog_never_got_is_not_lost_after_a_restart(
    start_worker: StartWorker, restart: Restart, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    script(fake_llm, USERS, ROUNDS)
    # at_least_once: under exactly_once a refused write ends the transaction it was in, and the
    # broker cannot write that transaction's abort marker into a topic refusing 64 bytes; its
    # coordinator then keeps it open for good and every restart waits on it. The next test is
    # this one's exactly_once form.
    a, sent, static = await _round_0_buffered(start_worker, kafka, names, "at_least_once")

    await _changelog_limit(names, REFUSING_BYTES)
    await _send_round(kafka, names, 1, sent)
    await _dies_refused(a)  # message 1 is in A's RocksDB buffer, not in the changelog
    await _changelog_limit(names, None)

    a = restart(a)
    back_s = await a.wait_ready()
    await _all_committed(kafka, names)  # the redelivered message 1 is acknowledged

    await a.terminate()  # a clean stop is recorded: its next start would keep its stores
    assert (Path(a.env["PROFILE_STREAM_DATA_DIR"]) / MARKER).exists(), a.tail()
    await _moved_and_checked(start_worker, kafka, names, fake_llm, sent, static)
    print(
        f"\nrestart after a refused buffer write: ready in {back_s:.1f}s; {len(sent)} messages, "
        "lost 0, doubled 0, event ids with two contents 0"
    )


async def test_a_buffered_message_in_a_transaction_never_committed_is_not_lost_after_a_restart(
    start_worker: StartWorker, restart: Restart, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    """exactly_once: every write is in the local store before its transaction commits (up to
    the commit interval later), so a kill -9 right after a buffered write leaves it in RocksDB
    and aborted in the changelog, the window the test above widens by refusing the write."""
    script(fake_llm, USERS, ROUNDS)
    a, sent, static = await _round_0_buffered(start_worker, kafka, names, "exactly_once")

    await _send_round(kafka, names, 1, sent)
    # Written, as a read_uncommitted reader sees the changelog: kill -9 at once.
    await kafka.read(names.buffer_changelog, _holds(b"note 01 ", USERS), timeout=60)
    a.kill()
    aborted = await _count_committed(names.buffer_changelog, b"note 01 ") < USERS

    a = restart(a)
    back_s = await a.wait_ready()
    await _all_committed(kafka, names)
    await a.terminate()
    assert (Path(a.env["PROFILE_STREAM_DATA_DIR"]) / MARKER).exists(), a.tail()
    await _moved_and_checked(start_worker, kafka, names, fake_llm, sent, static)
    print(
        f"\nrestart after a kill -9 on an open transaction (its writes aborted: {aborted}): "
        f"ready in {back_s:.1f}s; {len(sent)} messages, lost 0, doubled 0, "
        "event ids with two contents 0"
    )


def _holds(text: bytes, count: int) -> Callable[[list[Any]], bool]:
    return lambda records: sum(text in (r.value or b"") for r in records) >= count


async def _count_committed(topic: str, text: bytes) -> int:
    """Records of ``topic`` holding ``text`` that a read_committed reader sees now (none of an
    open transaction: the killed worker's is aborted when its restart starts its producer)."""
    return sum(text in (r.value or b"") for r in await read_all(topic))


async def test_a_version_the_changelog_never_got_is_not_announced_after_a_restart(
    start_worker: StartWorker, restart: Restart, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    script(fake_llm, USERS, ROUNDS)
    # at_least_once: under exactly_once the killed worker's open transaction must be aborted
    # before the restart can start its producer, and the 64-byte limit refuses the abort
    # marker itself, so the restart waits (announcing nothing) until the limit is lifted.
    static = {
        "PROFILE_STREAM_SESSION_TIMEOUT_S": SESSION_TIMEOUT_S,
        "PROFILE_STREAM_PROCESSING_GUARANTEE": "at_least_once",
    }
    env = static | {
        "PROFILE_STREAM_GROUP_INSTANCE_ID": "a",
        "PROFILE_STREAM_FLUSH_IDLE_S": "600",
        "PROFILE_STREAM_MAX_BATCH_MESSAGES": "2",  # message 1 fills the buffer: a size flush
        "PROFILE_STREAM_LLM_TIMEOUT_S": "60",
    }
    a = await start_worker(0, **env)
    sent: list[dict[str, Any]] = []
    await _send_round(kafka, names, 0, sent)
    await _all_committed(kafka, names)

    # kill -9 while every user's flush is at the model.
    fake_llm.latency = lambda: 30.0
    await _send_round(kafka, names, 1, sent)
    await _until(a, lambda: _true(fake_llm.calls_for("note 01 ") >= USERS))
    a.kill()
    fake_llm.latency = None

    # Restarted, it flushes again; Kafka refuses the pending version's write: A dies with the
    # version in its RocksDB only.
    await _changelog_limit(names, REFUSING_BYTES)
    a = restart(a)
    await _dies_refused(a)

    # Restarted again on that data dir, while the changelog still refuses: a worker trusting
    # its local store would announce that version and acknowledge message 1.
    a = restart(a)
    end = await kafka.end_offsets(names.input)
    await _until(a, lambda: _committed_to(kafka, names, end), or_exit=True)
    a.kill()
    await _changelog_limit(names, None)
    await _moved_and_checked(start_worker, kafka, names, fake_llm, sent, static)
    print(
        f"\nrestarts after a kill -9 mid-flush and a refused version: {len(sent)} messages, "
        "lost 0, doubled 0, event ids with two contents 0"
    )
