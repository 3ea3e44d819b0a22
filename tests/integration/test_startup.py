"""A worker that would misbehave refuses to start, and says what to change."""

from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.client.kafka_io import ensure_topics, partitions_of

from .conftest import StartWorker
from .harness import BOOTSTRAP, PARTITIONS, Names


async def test_a_partition_count_that_disagrees_with_the_topic_refuses_to_start(
    start_worker: StartWorker, names: Names
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    await admin.create_topics(
        [NewTopic(names.input, num_partitions=PARTITIONS // 2, replication_factor=1)]
    )
    await admin.close()
    worker = await start_worker(ready=False)
    assert worker.proc is not None and worker.proc.wait(60) != 0
    out = worker.tail()
    assert f"PROFILE_STREAM_PARTITIONS={PARTITIONS // 2}" in out and "Traceback" not in out


async def test_a_replication_factor_above_the_brokers_refuses_to_start_naming_it(
    start_worker: StartWorker,
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    brokers = len((await admin.describe_cluster())["brokers"])
    await admin.close()
    worker = await start_worker(ready=False, PROFILE_STREAM_REPLICATION_FACTOR=str(brokers + 1))
    assert worker.proc is not None and worker.proc.wait(60) != 0
    out = worker.tail()
    assert "PROFILE_STREAM_REPLICATION_FACTOR" in out and "Traceback" not in out


async def test_two_workers_cannot_share_a_data_dir(
    start_worker: StartWorker, tmp_path: Path
) -> None:
    await start_worker(0)
    second = await start_worker(1, ready=False, PROFILE_STREAM_DATA_DIR=str(tmp_path / "worker-0"))
    assert second.proc is not None and second.proc.wait(60) != 0
    assert "in use by another worker" in second.tail()


async def test_missing_input_topics_exist_with_their_partitions_before_the_group_forms(
    services: None, names: Names
) -> None:
    # A group formed before its topic shows in the broker's metadata gets none of its
    # partitions until the next metadata refresh, minutes later: the worker sat idle.
    topics = [names.input, f"{names.prefix}-kind-team"]
    created = await ensure_topics(topics, partitions=PARTITIONS, replication=1, bootstrap=BOOTSTRAP)
    assert created == topics
    for topic in topics:
        assert await partitions_of(topic, bootstrap=BOOTSTRAP) == list(range(PARTITIONS))
    again = await ensure_topics(topics, partitions=PARTITIONS, replication=1, bootstrap=BOOTSTRAP)
    assert again == []
