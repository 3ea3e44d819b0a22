"""A worker without a local store restores its table partitions through the bulk restore
(``streams/faust_glue/recovery.py``) and then serves every profile, a forgotten user still
forgotten; its databases hold what the changelogs say, byte for byte, deletes included, with
the offset Faust resumes from (docs/state.md, "Scale"; docs/operations.md, "After an unclean
stop"). Under exactly-once the changelogs are read committed.
"""

import asyncio
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from rocksdict import AccessType, Options, Rdict

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


async def _changelog(topic: str, isolation: str) -> dict[int, Content]:
    """What Faust's recovery makes of each partition of ``topic``: the last value of each key,
    a record without a value deleting it; read as the worker reads it."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, isolation_level=isolation
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        content: dict[int, dict[bytes, bytes]] = {tp.partition: {} for tp in tps}
        deletes = dict.fromkeys(content, 0)
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for record in records:
                    assert record.key is not None
                    if record.value is None:
                        content[tp.partition].pop(record.key, None)
                        deletes[tp.partition] += 1
                    else:
                        content[tp.partition][record.key] = record.value
        return {p: (content[p], ends[TopicPartition(topic, p)], deletes[p]) for p in content}
    finally:
        await consumer.stop()


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
            items = dict(db.items())
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
        log = await _changelog(topic, isolation)
        _check_stored(data_dir, table, log)
        deletes += sum(d for _, _, d in log.values())
    assert deletes > 0, "no delete in the changelogs: the test restored none"
    assert all(ABORTED not in items for items, _ in _stored(data_dir, "profiles").values())
