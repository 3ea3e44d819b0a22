"""A worker without a local store restores its table partitions through the bulk restore
(``streams/faust_glue/recovery.py``) and then serves every profile, a forgotten user still
forgotten; its databases hold what the changelogs say, byte for byte, deletes included, with
the offset Faust resumes from (docs/state.md, "Scale"; docs/operations.md, "After an unclean
stop"). Under exactly-once the changelogs are read committed.
"""

import asyncio
import os
import re
import signal
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rocksdict import AccessType, Options, Rdict

from schemas import ProfileRecord
from streams.core.buffer_layout import LEGACY_SCANNED
from streams.core.codecs import encode
from streams.core.partitioning import partition_for

from .conftest import StartWorker
from .harness import (
    ADMIN_TOKEN,
    BOOTSTRAP,
    PARTITIONS,
    READ_TOKEN,
    Kafka,
    Names,
    WorkerProcess,
    message,
)
from .history import script

USERS = 8
FORGOTTEN = "user-00"
#: Faust's key for a partition database's persisted changelog offset (faust/stores/rocksdb.py).
OFFSET_KEY = b"__faust\0offset__"
#: The key of a record whose transaction was aborted (exactly-once only).
ABORTED = b"user-aborted"

#: A partition's content (key to value), the offset after its last record, and its deletes.
Content = tuple[dict[bytes, bytes], int, int]


def _round(i: int) -> list[dict[str, Any]]:
    """Message ``i`` of every user, as :func:`script` answers it."""
    return [message(f"user-{u:02d}", f"note {i:02d} from user {u}") for u in range(USERS)]


async def _get(url: str, token: str = READ_TOKEN, method: str = "GET") -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as s, s.request(method, url) as r:
        body = await r.json() if r.content_type == "application/json" else None
        return r.status, body


async def _profiles(worker: WorkerProcess) -> dict[str, tuple[int, Any]]:
    return {
        f"user-{u:02d}": await _get(f"{worker.url}/profiles/user-{u:02d}") for u in range(USERS)
    }


async def _until_forgotten(worker: WorkerProcess, timeout: float = 60.0) -> None:
    for _ in range(int(timeout / 0.2)):
        worker.check()
        if (await _get(f"{worker.url}/profiles/{FORGOTTEN}"))[0] == 404:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{FORGOTTEN} still served after the forget:\n{worker.tail()}")


async def _aborted_write(topic: str) -> None:
    """A record in ``topic`` of a transaction that is aborted: no restore may apply it."""
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id=f"{topic}-aborts")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"aborted", key=ABORTED, partition=0)
            raise _Abort
    except _Abort:
        pass
    finally:
        await producer.stop()


class _Abort(Exception):
    """Ends a transaction with an abort."""


def _stored(data_dir: Path, table: str) -> dict[int, tuple[dict[bytes, bytes], int | None]]:
    """Each partition database of ``table`` under ``data_dir``: its items and persisted offset."""
    found = {}
    for path in data_dir.rglob("*.db"):
        if match := re.fullmatch(rf"{re.escape(table)}-(\d+)\.db", path.name):
            db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
            items = cast(dict[bytes, bytes], dict(db.items()))
            db.close()
            offset = items.pop(OFFSET_KEY, None)
            found[int(match[1])] = (items, None if offset is None else int(offset))
    return found


def _check_stored(data_dir: Path, table: str, log: dict[int, Content]) -> None:
    stored = _stored(data_dir, table)
    for partition, (items, end, _) in log.items():
        if end == 0:
            continue  # nothing to restore: Faust may not even open the database
        held, offset = stored[partition]
        assert held == items, f"{table} partition {partition} differs from its changelog"
        # The last offset read (a commit marker under exactly-once): Faust resumes after it.
        assert offset == end - 1, (partition, offset, end)


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
async def test_a_worker_without_its_store_restores_every_profile_in_bulk(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: Any, guarantee: str
) -> None:
    script(fake_llm, USERS, 2)
    env = {
        "PROFILE_STREAM_PROCESSING_GUARANTEE": guarantee,
        # Message 0 is buffered, message 1 flushes both: the buffer changelog gets deletes.
        "PROFILE_STREAM_FLUSH_IDLE_S": "600",
        "PROFILE_STREAM_MAX_BATCH_MESSAGES": "2",
    }
    first = await start_worker(0, **env)
    for i in range(2):
        await kafka.send_all(names.input, _round(i))
        await kafka.wait_committed(names.prefix, names.input, await kafka.end_offsets(names.input))
    forget = f"{first.url}/profiles/{FORGOTTEN}"
    assert (await _get(forget, ADMIN_TOKEN, "DELETE"))[0] == 202
    await _until_forgotten(first)
    served = await _profiles(first)
    assert sum(status == 200 for status, _ in served.values()) == USERS - 1, served
    await first.terminate()
    if guarantee == "exactly_once":
        await _aborted_write(names.changelog)

    # Another data dir: nothing stored locally, every partition restored from the changelogs.
    second = await start_worker(1, **env)
    assert await _profiles(second) == served
    await second.terminate()
    log = second.log.read_text()
    assert re.search(r"bulk restore done partitions=\d+ records=[1-9]", log), second.tail()
    assert "bulk restore failed" not in log, second.tail()

    isolation = "read_committed" if guarantee == "exactly_once" else "read_uncommitted"
    data_dir = Path(second.env["PROFILE_STREAM_DATA_DIR"])
    deletes = 0
    for table, topic in (
        ("profiles", names.changelog),
        ("profiles-buffers", names.buffer_changelog),
    ):
        changelog = await _changelog(topic, isolation)
        _check_stored(data_dir, table, changelog)
        deletes += sum(d for _, _, d in changelog.values())
    assert deletes > 0, "no delete in the changelogs: the test restored none"
    assert all(ABORTED not in items for items, _ in _stored(data_dir, "profiles").values())


#: Records preloaded for the rebalance test: enough for a restore that outlasts a join.
PRELOADED = 400_000
#: Users whose last record is a delete.
DELETED = 20


async def _preload(kafka: Kafka, names: Names) -> None:
    """``PRELOADED`` small profile records, each user's on its partition as the worker puts it,
    then a delete of the first ``DELETED`` users; and the buffer changelog's marker that the
    profiles hold no buffer of the single-record release (else an assignment reads them all)."""
    sends = []
    for i in range(PRELOADED):
        key = f"user-{i:07d}".encode()
        record = ProfileRecord(user_id=key.decode(), schema_id="UserProfile/v1", version=1)
        value = encode(record.model_copy(update={"profile": {"name": f"n{i}"}}))
        part = partition_for(key, PARTITIONS)
        sends.append(await kafka.producer.send(names.changelog, value, key=key, partition=part))
    for i in range(DELETED):
        key = f"user-{i:07d}".encode()
        part = partition_for(key, PARTITIONS)
        sends.append(await kafka.producer.send(names.changelog, None, key=key, partition=part))
    for p in range(PARTITIONS):
        sends.append(
            await kafka.producer.send(names.buffer_changelog, b"1", key=LEGACY_SCANNED, partition=p)
        )
    await asyncio.gather(*sends)


#: Every record of a topic by partition: offset, key, value.
Records = dict[int, list[tuple[int, bytes, bytes | None]]]


async def _records(
    topic: str, isolation: str = "read_uncommitted"
) -> tuple[Records, dict[int, int]]:
    """Every record of ``topic``, read as a worker with ``isolation`` reads it, and the offset
    after each partition's last."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, isolation_level=isolation
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        found: Records = {p: [] for p in range(PARTITIONS)}
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                found[tp.partition] += [(r.offset, r.key or b"", r.value) for r in batch]
        return found, {tp.partition: ends[tp] for tp in tps}
    finally:
        await consumer.stop()


def _up_to(records: list[tuple[int, bytes, bytes | None]], offset: int) -> dict[bytes, bytes]:
    """What Faust's recovery makes of ``records`` up to ``offset``: the last value of each key,
    a record without a value deleting it."""
    content: dict[bytes, bytes] = {}
    for at, key, value in records:
        if at > offset:
            break
        if value is None:
            content.pop(key, None)
        else:
            content[key] = value
    return content


async def _changelog(topic: str, isolation: str) -> dict[int, Content]:
    records, ends = await _records(topic, isolation)
    return {
        p: (_up_to(found, ends[p] - 1), ends[p], sum(v is None for _, _, v in found))
        for p, found in records.items()
    }


async def _log_says(worker: WorkerProcess, text: str, timeout: float = 90.0) -> None:
    for _ in range(int(timeout / 0.1)):
        worker.check()
        if text in worker.log.read_text(errors="replace"):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {text!r} in the log:\n{worker.tail()}")


async def _rebalancing(group: str, timeout: float = 60.0) -> None:
    """Return once ``group`` waits for its members to join again."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        for _ in range(int(timeout / 0.1)):
            response = (await admin.describe_consumer_groups([group]))[0]
            if response.groups[0][2] == "PreparingRebalance":
                return
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    raise AssertionError(f"{group} never started a rebalance")


async def _answers(url: str, expected: tuple[int, str | None], timeout: float = 60.0) -> None:
    """Poll ``url`` until it answers ``expected`` (status, profile name): reads are refused
    while the group rebalances."""
    answer: tuple[int, Any] = (0, None)
    for _ in range(int(timeout / 0.2)):
        status, body = await _get(url)
        answer = (status, body["profile"]["name"] if status == 200 else None)
        if answer == expected:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{url} answered {answer}, not {expected}")


async def test_a_rebalance_during_a_bulk_restore_leaves_each_database_as_its_offset_says(
    start_worker: StartWorker, kafka: Kafka, names: Names
) -> None:
    env = {"PROFILE_STREAM_SESSION_TIMEOUT_S": "20"}
    await (await start_worker(0, **env)).terminate()  # the topics exist, changelogs empty
    await _preload(kafka, names)
    a = await start_worker(1, ready=False, **env)
    await _log_says(a, "Highwater for active changelog partitions")  # its restore starts
    # Frozen mid-restore (within its session) while B joins; thawed, A's first heartbeat
    # hears of the rebalance, and the revocation stops its restore.
    os.killpg(a.pid, signal.SIGSTOP)
    try:
        b = await start_worker(2, ready=False, **env)
        await _rebalancing(names.prefix)
    finally:
        os.killpg(a.pid, signal.SIGCONT)
    await a.wait_ready(timeout=120)
    await b.wait_ready(timeout=120)
    for i in (*range(DELETED + 5), PRELOADED // 2, PRELOADED - 1):
        expected = (404, None) if i < DELETED else (200, f"n{i}")
        await _answers(f"{a.url}/profiles/user-{i:07d}", expected)  # routed to the owner
    await a.terminate()
    await b.terminate()

    records, _ = await _records(names.changelog)
    newest = dict.fromkeys(records, -1)
    for worker in (a, b):
        data_dir = Path(worker.env["PROFILE_STREAM_DATA_DIR"])
        for partition, (items, offset) in _stored(data_dir, "profiles").items():
            assert offset is not None
            assert items == _up_to(records[partition], offset), (worker.log, partition, offset)
            newest[partition] = max(newest[partition], offset)
    assert newest == {p: records[p][-1][0] for p in records}  # each partition fully restored
    # Faust cancels the restore's step, or the restore sees the revocation first.
    interrupted = re.compile(r"bulk restore (cancelled: a rebalance|stopped: a rebalance)")
    assert interrupted.search(a.log.read_text()), a.tail()
