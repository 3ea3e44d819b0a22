"""A worker of this release restores a table written by the single-record release and flushes
every buffer it holds, once, converting the records as it goes.

The changelog is filled, before any worker starts, with the records of
``tests/unit/streams/pipeline/fixtures/single_record_table.json``: bytes main 89ab65a's own
pipeline wrote (format 4 and 5, each user's buffer inside the record), moved onto this run's
topic and onto the partition each user's key goes to (the only edit: the ``topic:partition``
strings they name).
"""

from pathlib import Path
from typing import Any

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.core.partitioning import partition_for
from tests.fakes.llm_server import FakeLLM

from .conftest import StartWorker
from .harness import BOOTSTRAP, Kafka, Names, decode

FIXTURE = orjson.loads(
    (
        Path(__file__).resolve().parents[1]
        / "unit/streams/pipeline/fixtures/single_record_table.json"
    ).read_bytes()
)
#: Each user's buffered messages in the fixture, and the name the flush should give them.
BUFFERED = {"alice": "Alicia", "bob": "Bob", "carol": "Caroline", "dave": "Dave"}
FAST = {"PROFILE_STREAM_FLUSH_IDLE_S": "5", "PROFILE_STREAM_FLUSH_TICK_S": "0.2"}


def _moved(raw: str, names: Names, partition: int) -> bytes:
    """A fixture record on this run's input topic and the user's partition."""
    moved = raw.replace('"chat-messages:0"', f'"{names.input}:{partition}"')
    return moved.replace('"origin:chat-messages:', f'"origin:{names.input}:').encode()


async def _old_changelog(kafka: Kafka, names: Names) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        topic = NewTopic(
            names.changelog,
            num_partitions=names.partitions,
            replication_factor=1,
            topic_configs={"cleanup.policy": "compact"},
        )
        await admin.create_topics([topic])
    finally:
        await admin.close()
    for user, raw in FIXTURE["table"].items():
        partition = partition_for(user.encode(), names.partitions)
        value = _moved(raw, names, partition)
        await kafka.send(names.changelog, value, key=user.encode(), partition=partition)


async def test_a_new_worker_flushes_every_buffer_of_a_single_record_table_once(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    for name in BUFFERED.values():
        fake_llm.on(f"name={name}", {"field": "name", "op": "set", "value": name})
    await _old_changelog(kafka, names)
    await start_worker(**FAST)

    def flushed(records: list[Any]) -> bool:
        return {e["user_id"] for e in decode(records)} >= set(BUFFERED)

    events = decode(await kafka.read(names.output, flushed, timeout=90))
    names_set = {e["user_id"]: (e["profile"] or {}).get("name") for e in events}
    assert names_set == BUFFERED
    assert len(events) == len(BUFFERED)  # one version each: no buffer flushed twice
    for name in BUFFERED.values():
        assert fake_llm.calls_for(f"name={name}") == 1
    # The records written back hold no buffer: it moved to the buffer table, then was flushed.
    changelog = await kafka.read(names.changelog, lambda r: len(r) >= 2 * len(FIXTURE["table"]))
    latest = {r.key: r.value for r in changelog}
    assert all(b'"buffer":[' not in (latest[u.encode()] or b"") for u in BUFFERED)
