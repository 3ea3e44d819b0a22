"""Health check for the local Kafka: one real produce/consume round trip.

An open port is not enough: a KRaft broker accepts connections before it has a
controller quorum and before it can create topics. Exit 0 only when a unique
value written to the health-check topic is read back.

Usage: roundtrip.py [--bootstrap HOST:PORT] [--topic NAME] [--timeout S] [--kafka-version V]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError


async def ensure_topic(bootstrap: str, topic: str, timeout_ms: int) -> dict[str, Any]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            try:
                await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
            except TopicAlreadyExistsError:
                pass  # another checker won the race
        cluster: dict[str, Any] = await admin.describe_cluster()
        return cluster
    finally:
        await admin.close()


async def roundtrip(bootstrap: str, topic: str, timeout_s: float) -> str:
    timeout_ms = int(timeout_s * 1000)
    cluster = await ensure_topic(bootstrap, topic, timeout_ms)
    value = uuid.uuid4().hex.encode()

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", request_timeout_ms=timeout_ms
    )
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()

    # A group id plus an explicit commit makes the broker create __consumer_offsets
    # now, so the first real consumer group does not pay for it; manual assignment
    # avoids waiting for a rebalance.
    tp = TopicPartition(topic, meta.partition)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id="_stack_healthcheck",
        enable_auto_commit=False,
        request_timeout_ms=timeout_ms,
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        msg = await asyncio.wait_for(consumer.getone(tp), timeout_s)
        if msg.value != value:
            raise RuntimeError(f"read back {msg.value!r} at offset {msg.offset}, wrote {value!r}")
        await consumer.commit({tp: meta.offset + 1})
    finally:
        await consumer.stop()
    where = f"{topic}@{meta.partition}:{meta.offset}"
    return f"cluster {cluster.get('cluster_id')} round trip ok ({where})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--topic", default="_stack_healthcheck")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds for the whole check")
    ap.add_argument(
        "--kafka-version", default="", help="version the stack started, for the message"
    )
    args = ap.parse_args()
    # aiokafka logs every transient retry (e.g. coordinator not yet elected) as an
    # error; the single outcome printed below is what the caller needs.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        msg = asyncio.run(
            asyncio.wait_for(roundtrip(args.bootstrap, args.topic, args.timeout), args.timeout)
        )
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"; the caller retries
        print(f"kafka {args.bootstrap} not ready: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    version = f"kafka {args.kafka_version} " if args.kafka_version else "kafka "
    print(f"{version}{args.bootstrap}: {msg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
