"""Faust's exactly-once transactions, stretched over every output of a batch
(streams.faust_glue.transactions), checked against the installed Faust and aiokafka without a
broker: the producer is a stand-in that records what it was asked."""

import asyncio
import inspect
from collections.abc import Iterator
from functools import partial
from typing import Any, cast

import faust
import faust.transport.consumer
import faust.transport.drivers.aiokafka as faust_aiokafka
import pytest
from aiokafka.producer.transaction_manager import TransactionManager as AIOKafkaTransactions
from faust.types import TP

from streams.faust_glue import (
    commit_open_transactions,
    exactly_once,
    in_source_transaction,
    make_event_current,
    outside_transactions,
    partition_event,
    start_transactions_together,
)
from streams.faust_glue.transactions import transactional_id
from tests.unit.streams.test_faust_glue import _AIOKafka, _Started


def _app(guarantee: str) -> faust.App:
    return faust.App(
        f"tx-{guarantee}",
        broker="kafka://127.0.0.1:1",
        store="memory://",
        autodiscover=False,
        processing_guarantee=guarantee,
    )


class _Producer:
    """Faust's producer as these hooks use it: ``send`` and the per-transaction maps."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []
        self._transaction_producers: dict[str, Any] = {}
        self._trn_locks: dict[str, asyncio.Lock] = {}

    async def maybe_start(self) -> None:
        return None

    async def send(self, topic: str, *args: Any, transactional_id: str | None) -> Any:
        self.sent.append((topic, transactional_id))
        return asyncio.get_running_loop().create_future()


@pytest.fixture
def eos() -> Iterator[tuple[faust.App, _Producer]]:
    app = _app("exactly_once")
    producer = _Producer()
    app.producer = cast(Any, producer)
    cast(Any, app.assignor).group_for_topic = lambda topic: 1
    yield app, producer
    make_event_current(None)


def test_at_least_once_leaves_every_topic_as_it_is() -> None:
    app = _app("at_least_once")
    topic = app.topic("out")
    assert not exactly_once(app)
    assert in_source_transaction(app, topic) is topic
    assert outside_transactions(app, topic) is topic


async def test_an_event_goes_in_the_transaction_of_the_partition_its_input_came_from(
    eos: tuple[faust.App, _Producer],
) -> None:
    app, producer = eos
    output = in_source_transaction(app, app.topic("profile-updated"))
    stand_in = partition_event(("chat", 3))  # a timer's flush: the partition's stand-in event
    make_event_current(stand_in)
    await output.send(key=b"u", value=b"{}")
    assert producer.sent == [("profile-updated", "tx-exactly_once-1-3")]
    # The id Faust gives the changelog write of that partition and its offset commit.
    assert transactional_id(app, "chat", 3) == (
        faust.transport.consumer.TransactionManager.transactional_id_format.format(
            group_id=app.conf.id, tpg=type("TPG", (), {"group": 1, "partition": 3})
        )
    )


async def test_an_event_sent_outside_any_inputs_work_is_refused(
    eos: tuple[faust.App, _Producer],
) -> None:
    app, _ = eos
    output = in_source_transaction(app, app.topic("profile-updated"))
    make_event_current(None)
    with pytest.raises(RuntimeError, match="outside any event"):
        await output.send(key=b"u", value=b"{}")


async def test_inputs_for_any_partition_go_through_the_plain_producer(
    eos: tuple[faust.App, _Producer],
) -> None:
    app, producer = eos
    make_event_current(partition_event(("chat", 3)))
    await outside_transactions(app, app.topic("chat")).send(key=b"u", value=b"{}", partition=0)
    assert producer.sent == [("chat", None)]


class _Transaction:
    """aiokafka's transactional producer, as far as a commit goes."""

    def __init__(self, holds: bool) -> None:
        self.holds, self.calls = holds, []
        self._txn_manager = self

    def is_in_transaction(self) -> bool:
        return True

    @property
    def txn_partitions(self) -> set[Any]:
        return {"p"} if self.holds else set()

    def partitions_to_add(self) -> set[Any]:
        return set()

    async def commit_transaction(self) -> None:
        self.calls.append("commit")

    async def begin_transaction(self) -> None:
        self.calls.append("begin")


async def test_open_transactions_with_records_are_committed_and_begun_again(
    eos: tuple[faust.App, _Producer],
) -> None:
    app, producer = eos
    busy, idle = _Transaction(holds=True), _Transaction(holds=False)
    producer._transaction_producers = {"a": busy, "b": idle}
    producer._trn_locks = {"a": asyncio.Lock(), "b": asyncio.Lock()}
    assert await commit_open_transactions(app) == 1
    assert busy.calls == ["commit", "begin"] and idle.calls == []


def test_fausts_producer_keeps_a_transactional_producer_and_lock_per_id() -> None:
    source = inspect.getsource(faust_aiokafka.Producer.send)
    assert "self._transaction_producers.get(transactional_id)" in source
    assert "self._trn_locks[transactional_id]" in source
    commits = inspect.getsource(faust_aiokafka.Producer.commit_transactions)
    assert "async with self._trn_locks[transactional_id]" in commits  # ours takes it too
    for name in ("is_in_transaction", "partitions_to_add", "txn_partitions"):
        assert hasattr(AIOKafkaTransactions, name), name


def test_faust_picks_a_records_transaction_by_its_destination_partition() -> None:
    """The gap this module closes: a topic the worker does not consume gets no partition from
    the consumer, so no transaction (the plain producer sends it)."""
    source = inspect.getsource(faust.transport.consumer.TransactionManager.send)
    assert "self.consumer.key_partition(topic, key, partition)" in source
    assert "if p is not None:" in source


async def test_recovery_reads_the_brokers_end_offsets_not_the_last_fetched_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Faust's exactly-once highwaters are the fetcher's last stable offsets, -1 for a
    changelog partition not fetched yet: recovery then skipped the partition, or crashed on its
    persisted offset (ConsistencyError), in the rebalance fault test. The consumer thread the
    worker installs asks the broker (a read_committed consumer's end offsets are the LSO)."""
    assert "last_stable_offset(tp)" in inspect.getsource(
        faust_aiokafka.AIOKafkaConsumerThread._highwaters
    )
    app = _app("exactly_once")
    kafka = _AIOKafka()
    cast(Any, kafka).last_stable_offset = lambda tp: None  # aiokafka's, before a fetch
    started = _Started(app, kafka, None, monkeypatch)
    started.consumer.in_transaction = True  # a worker's, under exactly-once
    changelog = TP("app-profiles-changelog", 3)
    assert await started.consumer.highwaters(changelog) == {changelog: 300}


class _SlowStarts:
    """Faust's producer as a rebalance uses it: each start waits for every other one, as each
    waits for the coordinator to abort a killed worker's transaction."""

    def __init__(self, expected: int) -> None:
        self.everyone = asyncio.Barrier(expected)
        self.started: list[str] = []
        self.stopped: list[str] = []

    async def maybe_begin_transaction(self, tid: str) -> None:
        await asyncio.wait_for(self.everyone.wait(), timeout=5)  # serial starts never get there
        self.started.append(tid)

    async def stop_transaction(self, tid: str) -> None:
        await asyncio.wait_for(self.everyone.wait(), timeout=5)
        self.stopped.append(tid)


async def test_a_rebalance_starts_its_transactional_producers_together() -> None:
    app = _app("exactly_once")
    start_transactions_together(app)
    producer = _SlowStarts(expected=4)
    manager = app.transport.create_transaction_manager(
        consumer=cast(Any, None), producer=cast(Any, producer)
    )
    tids = [f"tx-{n}" for n in range(4)]
    await cast(Any, manager)._start_transactions(tids)
    assert sorted(producer.started) == tids
    await cast(Any, manager)._stop_transactions(tids)
    assert sorted(producer.stopped) == tids


def test_at_least_once_keeps_fausts_transaction_manager() -> None:
    app = _app("at_least_once")
    start_transactions_together(app)
    assert app.transport.TransactionManager is faust.transport.consumer.TransactionManager


def test_faust_starts_a_rebalances_producers_through_the_hooks_overridden() -> None:
    source = inspect.getsource(faust.transport.consumer.TransactionManager.on_rebalance)
    assert "self._start_transactions" in source and "self._stop_transactions" in source


class _Rebalanced:
    """Faust's producer through a rebalance: the producers it holds, what it starts and stops."""

    def __init__(self, held: list[str]) -> None:
        self._transaction_producers: dict[str, Any] = dict.fromkeys(held)
        self.started: list[str] = []
        self.stopped: list[str] = []

    async def maybe_begin_transaction(self, tid: str) -> None:
        self.started.append(tid)
        self._transaction_producers.setdefault(tid)

    async def stop_transaction(self, tid: str) -> None:
        self.stopped.append(tid)
        self._transaction_producers.pop(tid, None)


async def test_a_partition_kept_only_as_a_standby_loses_its_producer() -> None:
    """Partition 1 moved to another worker and stays here as a standby: Faust leaves its
    (now fenced) producer, and would "begin" on it when the partition comes back, instead of
    starting one that aborts the other owner's open transaction."""
    app = _app("exactly_once")
    start_transactions_together(app)
    cast(Any, app.assignor).group_for_topic = lambda topic: 1
    tid = partial(transactional_id, app, "chat")
    producer = _Rebalanced(held=[tid(0), tid(1)])
    manager = app.transport.create_transaction_manager(
        consumer=cast(Any, None), producer=cast(Any, producer)
    )
    chat = [TP("chat", 0), TP("chat", 1)]
    cast(Any, app.assignor)._standby_tps = {chat[1]}  # what Faust's revoke then skips
    await manager.on_rebalance({chat[0]}, {chat[1]}, set())
    assert producer.stopped == [tid(1)]
    cast(Any, app.assignor)._standby_tps = set()
    await manager.on_rebalance(set(chat), set(), {chat[1]})  # back: a new producer
    assert tid(1) in producer.started and set(producer._transaction_producers) == {
        tid(0),
        tid(1),
    }
