"""Three brokers, and the one that leads the worker's partitions is killed mid-backlog: the
worker goes on with the other two, and nothing is lost or applied twice.

The cluster (``tests/integration/cluster.py``) is Kafka 4.1.1, three KRaft brokers, replication
factor 3 and ``min.insync.replicas=2``, started once for this module by ``deploy/stack.sh`` in
``.stack/cluster-faults`` on ports 19092, 19102, 19112 (``STACK_CLUSTER_PORT`` moves them), beside
the stack ``make test`` uses, and stopped with its data wiped at the end, also on failure
(``STACK_CLUSTER_KEEP=1`` leaves it running for the next run). The workers use the main stack's
Redis. ``make test`` runs the short form (one kill, 300 messages); ``make test-cluster``
(``--cluster-kills 4``) kills four times, a different leader each time, each during a backlog
of its own.
"""

import asyncio
import logging
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from streams.client.kafka_io import ensure_topics
from streams.core.partitioning import partition_for
from streams.errors import ConfigError
from tests.fakes.llm_server import FakeLLM

from .cluster import ROOT, Cluster, Watch
from .conftest import StartWorker
from .harness import Kafka, Names, WorkerProcess
from .history import all_applied, audit, explain_missing, publish, script

pytestmark = [pytest.mark.faults, pytest.mark.cluster, pytest.mark.timeout(1800)]

PORT = int(os.environ.get("STACK_CLUSTER_PORT", "19092"))
USERS, PER_USER = 12, 25  # per kill: a backlog of 300 messages, 25 in a row per user
PARTITIONS = 6  # two leaders of each topic per broker


@pytest.fixture(scope="module")
async def cluster() -> AsyncIterator[Cluster]:
    cluster = Cluster(ROOT / ".stack" / "cluster-faults", PORT)
    try:
        started = time.monotonic()
        await cluster.up()
        print(f"\nthree-broker Kafka {cluster.version} up in {time.monotonic() - started:.0f}s")
        yield cluster
    finally:
        if os.environ.get("STACK_CLUSTER_KEEP") != "1":
            await cluster.down()


@pytest.fixture(autouse=True)
def _quiet_aiokafka() -> Iterator[None]:
    # The test's own clients log every refused connection to the killed broker at ERROR (some
    # thousand lines a kill); the history and the figures say what happened.
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


@pytest.fixture
def names() -> Names:
    return Names.unique("cl", partitions=PARTITIONS)


async def test_created_topics_take_the_brokers_replication_factor_unless_it_is_set(
    cluster: Cluster, names: Names
) -> None:
    auto, two = f"{names.prefix}-auto", f"{names.prefix}-two"
    await ensure_topics([auto], partitions=3, replication=None, bootstrap=cluster.bootstrap)
    await ensure_topics([two], partitions=3, replication=2, bootstrap=cluster.bootstrap)
    assert _replication(await cluster.describe([auto, two])) == {auto: {3}, two: {2}}
    with pytest.raises(ConfigError, match="PROFILE_STREAM_REPLICATION_FACTOR"):
        await ensure_topics(
            [f"{names.prefix}-four"], partitions=1, replication=4, bootstrap=cluster.bootstrap
        )


@dataclass(frozen=True)
class Kill:
    """One kill's figures; times in seconds from the kill."""

    broker: int
    led: dict[str, list[int]]  # topic to the partitions it led
    applied_before: int  # of the backlog's messages, when it died
    backlog: int
    first_event_s: float  # the first event produced after the kill reaches a reader
    resumed_s: float  # every partition with work has emitted an event produced after the kill
    backlog_done_s: float
    back_in_sync_s: float  # from its restart until every partition has all replicas in sync

    def __str__(self) -> str:
        led = ", ".join(f"{t.rsplit('-', 1)[-1]} {p}" for t, p in self.led.items())
        return (
            f"broker {self.broker} (leading {led}) killed at {self.applied_before}/"
            f"{self.backlog}: first event after {self.first_event_s:.1f}s, all partitions "
            f"after {self.resumed_s:.1f}s, backlog done after {self.backlog_done_s:.1f}s; "
            f"back in every ISR {self.back_in_sync_s:.1f}s after its restart"
        )


async def test_killing_the_leading_broker_mid_backlog_loses_nothing_and_doubles_nothing(
    cluster: Cluster,
    start_worker: StartWorker,
    names: Names,
    fake_llm: FakeLLM,
    request: pytest.FixtureRequest,
) -> None:
    kills = int(request.config.getoption("--cluster-kills"))
    script(fake_llm, USERS, PER_USER)
    rng = random.Random(20261126)
    fake_llm.latency = lambda: rng.uniform(0.3, 0.5)  # a user's backlog: about 10 s
    kafka = Kafka(cluster.bootstrap)
    watch = Watch(cluster.bootstrap, names.output)
    await kafka.start()
    try:
        # No PROFILE_STREAM_REPLICATION_FACTOR: every topic takes the brokers' default, 3.
        worker = await start_worker(
            PROFILE_STREAM_KAFKA_BOOTSTRAP=cluster.bootstrap,
            PROFILE_STREAM_MAX_BATCH_MESSAGES="1",
            PROFILE_STREAM_COALESCE_WINDOW_S="0",
        )
        await watch.start()
        sent: list[dict[str, Any]] = []
        done = [
            await _kill_during_backlog(cluster, kafka, names, watch, worker, sent, k)
            for k in range(kills)
        ]
        created = _replication(await cluster.describe(await _topics_of(cluster, names)))
        # Faust made the output topic on the first event, the changelog and its leader topic;
        # the dead-letter topic comes with the first dead letter.
        assert set(created) >= {names.input, names.output, names.changelog}, created
        assert all(counts == {3} for counts in created.values()), created
        await _check_history(kafka, names, sent, fake_llm, worker, done, created)
    finally:
        await watch.stop()
        await kafka.stop()


async def _kill_during_backlog(
    cluster: Cluster,
    kafka: Kafka,
    names: Names,
    watch: Watch,
    worker: WorkerProcess,
    sent: list[dict[str, Any]],
    k: int,
) -> Kill:
    """Publish a backlog for users of its own, kill the broker leading the most of the input,
    changelog and output partitions once a tenth is applied, let the worker finish it on the
    other two brokers while the killed one starts again and catches up."""
    before = len(sent)
    sent += await publish(kafka, names, USERS, PER_USER, first_user=k * USERS)
    backlog = len(sent) - before
    broker, led = await _leading_broker(cluster, [names.input, names.changelog, names.output])
    await watch.wait(lambda: watch.applied() >= before + backlog // 10, "a tenth applied", 120)
    killed_at = time.time()
    await cluster.kill(broker)
    dead_at = time.time()  # events produced later cannot have gone through the dead broker
    applied_before = watch.applied() - before
    # Most of the backlog is still to do, on every partition: the kill interrupts the run.
    assert applied_before <= backlog // 2, f"the kill came late: {applied_before}/{backlog} done"
    # The partitions of this backlog's users (keyed by user id, the output's as the input's).
    busy = {partition_for(m["user_id"].encode(), PARTITIONS) for m in sent[before:]}

    def resumed() -> bool:
        return busy <= set(watch.first_produced_after(dead_at))

    await watch.wait(resumed, "every partition emitting again after the kill", 180)
    worker.check()  # the worker went on: it did not exit
    after = watch.first_produced_after(dead_at)
    restarted = time.time()  # while the worker works off the rest of the backlog
    restarting = asyncio.create_task(cluster.start(broker))
    try:
        await watch.wait(lambda: watch.applied() >= len(sent), "the backlog applied", 300)
        backlog_done = time.time()
    finally:
        await restarting
    await cluster.wait_in_sync()
    return Kill(
        broker=broker,
        led=led,
        applied_before=applied_before,
        backlog=backlog,
        first_event_s=min(a.received for a in after.values()) - killed_at,
        resumed_s=max(after[p].received for p in busy) - killed_at,
        backlog_done_s=backlog_done - killed_at,
        back_in_sync_s=time.time() - restarted,
    )


async def _check_history(
    kafka: Kafka,
    names: Names,
    sent: list[dict[str, Any]],
    fake_llm: FakeLLM,
    worker: WorkerProcess,
    kills: list[Kill],
    created: dict[str, set[int]],
) -> None:
    """The whole event history, read again from the cluster: every message applied exactly once,
    one content per event id, contiguous versions per user, the reference's final profiles."""
    try:
        records = await kafka.read(names.output, all_applied(len(sent)), timeout=120)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\n{await explain_missing(kafka, names, sent, fake_llm, worker.log)}"
        ) from None
    found = audit(records, sent, PER_USER)
    assert found.ok, str(found)
    assert found.events == len(sent)  # one message per batch: one event each
    worker.check()
    print(f"\nthree brokers, Kafka 4.1.1; created topics' replication: {created}")
    for n, kill in enumerate(kills, start=1):
        print(f"kill {n}: {kill}")
    print(
        f"{len(kills)} kills, {len(sent)} messages, lost {len(found.lost)}, doubled "
        f"{len(found.doubled)}, exact re-emissions {found.duplicates}; recovery (every "
        f"partition emitting again) max {max(k.resumed_s for k in kills):.1f}s"
    )


async def _leading_broker(cluster: Cluster, topics: list[str]) -> tuple[int, dict[str, list[int]]]:
    """The broker leading the most partitions of ``topics``, among those leading at least one
    partition of each; with the partitions of each topic it leads."""
    parts = await cluster.describe(topics)
    count = Counter(p["leader"] for p in parts)
    leads_all = [b for b in count if {p["topic"] for p in parts if p["leader"] == b} == set(topics)]
    assert leads_all, f"no broker leads a partition of each of {topics}: {parts}"
    broker = max(leads_all, key=lambda b: (count[b], -b))
    led = {
        t: sorted(p["partition"] for p in parts if p["topic"] == t and p["leader"] == broker)
        for t in topics
    }
    return broker, led


async def _topics_of(cluster: Cluster, names: Names) -> list[str]:
    """The topics of this run's app: its own, and those Faust made (changelog, leader topic)."""
    parts = await cluster.describe()
    return sorted({p["topic"] for p in parts if p["topic"].startswith(names.prefix)})


def _replication(parts: list[dict[str, Any]]) -> dict[str, set[int]]:
    """Topic to the replica counts of its partitions."""
    out: dict[str, set[int]] = {}
    for p in parts:
        out.setdefault(p["topic"], set()).add(len(p["replicas"]))
    return out
