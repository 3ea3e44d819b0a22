"""Kafka look-ups that tests, the bench and the demo share: the local broker's address, a
topic's partitions and end offsets, a group's committed offsets, rewinding a group, and deleting
a run's topics."""

import os

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

__all__ = ["BOOTSTRAP", "committed", "delete_topics", "end_offsets", "partitions", "rewind"]

#: The broker of the local stack (``make up``), or PROFILE_STREAM_KAFKA_BOOTSTRAP.
BOOTSTRAP = os.environ.get("PROFILE_STREAM_KAFKA_BOOTSTRAP", "127.0.0.1:9092")


async def partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The topic's partitions, sorted, once the started ``consumer`` has its metadata."""
    await consumer._client._wait_on_metadata(topic)
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


async def end_offsets(topic: str, bootstrap: str = BOOTSTRAP) -> dict[int, int]:
    """Partition number to end offset (the offset the next record will get)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(await partitions(consumer, topic))
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await consumer.stop()


async def committed(consumer: AIOKafkaConsumer, topic: str) -> dict[int, int]:
    """The committed offsets of ``consumer``'s group on ``topic`` (-1 where none), read
    without joining the group."""
    result = {}
    for tp in await partitions(consumer, topic):
        offset = await consumer.committed(tp)
        result[tp.partition] = -1 if offset is None else offset
    return result


async def rewind(group: str, topic: str, bootstrap: str = BOOTSTRAP) -> None:
    """Set the (idle) group's committed offsets on ``topic`` back to 0."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = await partitions(consumer, topic)
        consumer.assign(tps)
        await consumer.commit({tp: 0 for tp in tps})
    finally:
        await consumer.stop()


async def delete_topics(prefix: str, bootstrap: str = BOOTSTRAP) -> list[str]:
    """Delete every topic named ``<prefix>-...`` (a run's own, Faust's changelogs included);
    returns their names. A broker holds each partition it hosts in memory: the suite run again
    and again on one local stack used to pile up topics until the broker's 512 MiB heap ran out
    (about 17,000 partitions, after a few days of runs)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        doomed = sorted(t for t in await admin.list_topics() if t.startswith(f"{prefix}-"))
        if doomed:
            await admin.delete_topics(doomed)
        return doomed
    finally:
        await admin.close()
