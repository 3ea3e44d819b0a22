"""Each hook into Faust internals, checked against the installed Faust: an upgrade that moves
one of them fails here, not in production."""

import asyncio
import inspect
import zlib
from collections.abc import Iterator
from typing import Any, cast

import aiokafka
import faust
import faust.stores.rocksdb
import faust.streams
import faust.tables.base
import faust.tables.recovery
import faust.transport.consumer
import faust.transport.drivers.aiokafka as faust_aiokafka
import pytest
from aiokafka import TopicPartition
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import CommitFailedError
from aiokafka.structs import OffsetAndTimestamp
from aiokafka.util import commit_structure_validate
from faust.assignor.client_assignment import ClientAssignment, ClientMetadata
from faust.types import TP
from faust.types.tuples import Message
from yarl import URL

from streams.core.start_position import RetainedRange
from streams.faust_glue import (
    BROKER_DEFAULT_REPLICATION,
    ProfileTable,
    actives_ready,
    add_web_middleware,
    consumer_lag,
    create_topics_with_broker_default_replication,
    keep_fetched_events_on_resume,
    make_event_current,
    mounted_methods,
    partition_event,
    partition_items,
    read_to_end,
    refuse_assignments_for_another_url,
    start_new_partitions,
    tables_recovered,
    wait_until_created_topics_show,
)


@pytest.fixture
def app() -> Iterator[faust.App]:
    yield faust.App(
        "glue-test", broker="kafka://127.0.0.1:1", store="memory://", autodiscover=False
    )


class _Event:
    """Stands for a consumed Faust event: a table write goes to its partition."""

    class message:  # noqa: N801 - Faust's attribute name
        topic = "chat-messages"
        partition = 3


def test_make_event_current_sets_the_event_faust_tables_route_writes_by() -> None:
    event = _Event()
    make_event_current(event)
    # The table and the RocksDB store read the current event through this function.
    assert faust.tables.base.current_event is faust.streams.current_event
    assert faust.streams.current_event() is event
    make_event_current(None)
    assert faust.streams.current_event() is None


def test_send_changelog_still_takes_partition_key_value_positionally() -> None:
    params = list(inspect.signature(faust.Table.send_changelog).parameters)
    assert params[:4] == ["self", "partition", "key", "value"]
    # on_key_set / on_key_del call it positionally with the key second: our override reads it.
    assert "self.send_changelog(self.partition_for_key(key), key, value)" in inspect.getsource(
        faust.Table.on_key_set
    )


class _Sent(asyncio.Future[Any]):
    """A changelog send's future, with the message Faust's ``on_key_set`` reads."""

    class message:  # noqa: N801 - Faust's attribute name
        partition = 3


async def test_a_table_write_is_acked_once_its_changelog_send_is(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    sends: list[tuple[Any, ...]] = []
    sent = _Sent()

    def faust_send(self: Any, *args: Any, **kwargs: Any) -> _Sent:
        sends.append(args)
        return sent

    monkeypatch.setattr(faust.Table, "send_changelog", faust_send)
    table = ProfileTable(app, name="glue-profiles", key_type=bytes, value_type=bytes)
    event = _Event()
    make_event_current(event)  # as a batch does before it writes, in a task of its own
    table.on_key_set(b"alice", b"v1")  # what ``table[key] = value`` calls after the store
    assert sends == [(3, b"alice", b"v1")]  # the consumed event's partition

    waiting = asyncio.create_task(table.changelog_acked(b"alice"))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # Kafka has not acknowledged the write yet
    sent.set_result(None)
    await asyncio.wait_for(waiting, 1)
    await table.changelog_acked(b"alice")  # nothing pending any more: returns at once
    await table.changelog_acked(b"bob")  # never written: returns at once


async def test_a_partition_event_routes_a_write_outside_any_input(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A timer's flush writes with no consumed event: the stand-in carries the partition.
    sends: list[tuple[Any, ...]] = []
    monkeypatch.setattr(faust.Table, "send_changelog", lambda self, *a: sends.append(a) or _Sent())
    table = ProfileTable(app, name="glue-flush", key_type=bytes, value_type=bytes)
    event = partition_event(("chat-messages", 5))
    make_event_current(event)
    # What Faust reads from the current event: the topic (to check partition counts) and
    # the partition (of the changelog send, and of the RocksDB database written).
    monkeypatch.setattr(table, "_verify_source_topic_partitions", lambda topic: None)
    assert table.partition_for_key(b"alice") == 5
    table.on_key_set(b"alice", b"v1")
    assert sends == [(5, b"alice", b"v1")]
    rocksdb_set = inspect.getsource(faust.stores.rocksdb.Store._set)
    assert "event.message.partition" in rocksdb_set
    assert event.ack() is False  # nothing was read, nothing is acknowledged
    make_event_current(None)


def test_partition_items_reads_one_rocksdb_database_as_items_does(app: faust.App) -> None:
    rocksdb = faust.stores.rocksdb.Store
    assert "self._visible_items(db)" in inspect.getsource(rocksdb._iteritems)
    assert "self._dbs" in inspect.getsource(rocksdb._db_for_partition)
    table = ProfileTable(app, name="glue-items", key_type=bytes, value_type=bytes)
    store = cast(Any, table).data
    store._dbs, store._visible_items = {3: {b"alice": b"v"}}, lambda db: iter(db.items())
    assert list(partition_items(table, 3)) == [(b"alice", b"v")]
    assert list(partition_items(table, 4)) == []  # no database: nothing stored there


class _PartitionDB(dict[bytes, bytes]):
    """Stands for a rocksdict database: ``get`` gives None for an absent key."""

    def key_may_exist(self, key: bytes) -> bool:
        return key in self


def test_a_table_get_reads_the_store_of_the_current_events_partition_once(
    tmp_path: Any,
) -> None:
    rocksdb_app = faust.App(
        "glue-get", broker="kafka://127.0.0.1:1", store="rocksdb://", datadir=str(tmp_path)
    )
    table = ProfileTable(rocksdb_app, name="glue-get", key_type=bytes, value_type=bytes)
    store = cast(Any, table).data
    assert isinstance(store, faust.stores.rocksdb.Store)
    reads: list[bytes] = []
    db = _PartitionDB({b"alice": b"v"})
    store._dbs = {3: db}
    real_get = store._get
    store._get = lambda key: reads.append(key) or real_get(key)
    make_event_current(_Event())
    try:
        assert table.get(b"alice") == b"v"
        assert table.get(b"bob") is None
        assert table.get(b"bob", b"none") == b"none"
    finally:
        make_event_current(None)
    assert reads == [b"alice", b"bob", b"bob"]  # one store read each, the absent ones included
    assert table.get(b"alice") == b"v"  # no current event: every database is looked in


def test_a_memory_table_get_is_faust_s_own(app: faust.App) -> None:
    table = ProfileTable(app, name="glue-get-memory", key_type=bytes, value_type=bytes)
    cast(Any, table).data[b"alice"] = b"v"
    assert (table.get(b"alice"), table.get(b"bob", b"none")) == (b"v", b"none")


def test_partition_items_of_a_memory_table_are_all_its_items(app: faust.App) -> None:
    table = ProfileTable(app, name="glue-memory", key_type=bytes, value_type=bytes)
    cast(Any, table).data[b"alice"] = b"v"
    assert list(partition_items(table, 0)) == [(b"alice", b"v")]


async def test_actives_ready_follows_the_rebalance(app: faust.App) -> None:
    app.tables.on_rebalance_start()
    assert actives_ready(app) is False
    app.tables.on_actives_ready()  # type: ignore[attr-defined]
    assert actives_ready(app) is True


async def test_read_to_end_compares_a_message_with_its_partitions_highwater(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer: Any = app.consumer
    tp = TP("chat-messages", 0)
    highwaters: dict[TP, int] = {}
    monkeypatch.setattr(consumer, "highwater", highwaters.get)

    def at(offset: int) -> Any:
        return Message(tp.topic, tp.partition, offset, 0.0, 0, [], b"k", b"v", None, tp=tp)

    assert read_to_end(app, at(11)) is False  # not fetched yet: no highwater known
    highwaters[tp] = 12
    assert (read_to_end(app, at(10)), read_to_end(app, at(11))) == (False, True)

    def revoked(tp: TP) -> int:
        raise AssertionError("Partition is not assigned")  # aiokafka's own check

    # aiokafka asserts the partition is assigned; an event read before a revoke is handled after.
    assert "is_assigned" in inspect.getsource(aiokafka.AIOKafkaConsumer.highwater)
    monkeypatch.setattr(consumer, "highwater", revoked)
    assert read_to_end(app, at(11)) is False


async def test_consumer_lag_reads_the_committed_offsets_faust_keeps(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer: Any = app.consumer
    tp, other = TP("chat-messages", 0), TP("profile-updated", 0)
    monkeypatch.setattr(consumer, "assignment", lambda: {tp, other})
    monkeypatch.setattr(consumer, "highwater", lambda t: 12)
    assert consumer_lag(app, "chat-messages") == 12.0  # nothing committed yet
    consumer._committed_offset[tp] = 5
    assert consumer_lag(app, "chat-messages") == 7.0


async def test_tables_recovered_reads_the_recovery_event(app: faust.App) -> None:
    completed = app.tables.recovery.completed  # type: ignore[attr-defined]
    assert isinstance(completed, asyncio.Event)
    completed.clear()
    assert tables_recovered(app) is False
    completed.set()
    assert tables_recovered(app) is True


async def test_mounted_methods_are_the_routes_faust_adds_for_a_view(app: faust.App) -> None:
    class Reader(faust.web.View):
        async def get(self, request: faust.web.Request) -> faust.web.Response:
            return self.json({})

        async def patch(self, request: faust.web.Request) -> faust.web.Response:
            return self.json({})

    app.page("/things/{name}")(Reader)
    mounted = {
        route.method
        for route in app.web.web_app.router.routes()  # type: ignore[attr-defined]
        if route.resource is not None and route.resource.canonical == "/things/{name}"
    }
    assert mounted_methods(Reader) == mounted == {"GET", "HEAD", "PATCH"}


async def test_add_web_middleware_reaches_the_aiohttp_application(app: faust.App) -> None:
    from aiohttp import web

    @web.middleware
    async def tag(request: web.Request, handler: Any) -> web.StreamResponse:
        return await handler(request)

    add_web_middleware(app, tag)
    web_app = app.web.web_app  # type: ignore[attr-defined]
    assert isinstance(web_app, web.Application)
    assert tag in web_app.middlewares


def test_faust_awaits_the_revoke_signal_before_the_partitions_go() -> None:
    # Fencing (streams/app.py, _on_revoked) relies on this: the signal's receivers are awaited
    # inside the rebalance callback, after the streams stopped and before the group moves on,
    # and with the eager protocol the revoked set is the whole assignment.
    source = inspect.getsource(faust.App._on_partitions_revoked)
    assert "await T(self.on_partitions_revoked.send)(revoked)" in source
    assert source.index("flow_control.clear") < source.index("on_partitions_revoked.send")
    assigned = inspect.getsource(faust.App._on_partitions_assigned)
    assert "await T(self.on_partitions_assigned.send)(assigned)" in assigned


def test_resuming_a_running_flow_keeps_the_events_already_queued() -> None:
    async def scenario() -> tuple[int, int, bool]:
        app = faust.App("glue-test", autodiscover=False)
        keep_fetched_events_on_resume(app)
        queue = app.FlowControlQueue(maxsize=10, clear_on_resume=True)  # as a stream's buffer
        app.flow_control.resume()  # start of recovery: the flow was suspended
        queue.put_nowait("fetched")
        app.flow_control.resume()  # end of recovery: the flow already runs
        kept = queue.qsize()
        app.flow_control.suspend()  # a rebalance
        app.flow_control.resume()
        return kept, queue.qsize(), app.flow_control.is_active()

    kept, after_rebalance, active = asyncio.run(scenario())
    assert kept == 1  # Faust's own flow control would have emptied it
    assert after_rebalance == 0  # what a suspended flow held may be for revoked partitions
    assert active


async def test_every_topic_faust_creates_asks_for_the_broker_default_replication(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests: list[tuple[str, int, int, Any]] = []

    async def really_create(
        self: Any, owner: Any, client: Any, topic: str, partitions: int, replication: int, **kw: Any
    ) -> None:
        requests.append((topic, partitions, replication, kw.get("compacting")))

    # The one method that builds Faust's CreateTopics request, below its stampede guard.
    monkeypatch.setattr(faust_aiokafka.Transport, "_really_create_topic", really_create)
    create_topics_with_broker_default_replication(app)
    assert app.conf.topic_replication_factor == 1  # the setting could not say "broker default"
    for name, transport in (("in", app.transport), ("out", app.producer_transport)):
        await transport._create_topic(None, None, f"t-{name}", 4, 1, compacting=True)  # type: ignore[attr-defined]
    assert requests == [
        ("t-in", 4, BROKER_DEFAULT_REPLICATION, True),
        ("t-out", 4, BROKER_DEFAULT_REPLICATION, True),
    ]


def test_faust_creates_every_topic_through_the_transports_create_topic() -> None:
    # The producer (topics, changelogs, the leader topic: Topic.declare) and the consumer both
    # go through Transport._create_topic, which the hook above wraps.
    assert "producer.create_topic(" in inspect.getsource(faust.Topic.declare)
    for create in (faust_aiokafka.Producer.create_topic, faust_aiokafka.Consumer.create_topic):
        assert "create_topic(" in inspect.getsource(create)
    thread = inspect.getsource(faust_aiokafka.AIOKafkaConsumerThread.create_topic)
    assert "transport._create_topic," in thread
    producer = inspect.getsource(faust_aiokafka.Producer.create_topic)
    assert "._create_topic(" in producer
    params = list(inspect.signature(faust_aiokafka.Transport._create_topic).parameters)
    assert params[:6] == ["self", "owner", "client", "topic", "partitions", "replication"]


class _AIOKafka:
    """Stands for the aiokafka consumer in Faust's consumer thread: ``chat`` partition 0 has a
    committed offset, partitions 1 and 2 and the changelog's partition 0 have none."""

    def __init__(self, commit_fails: bool = False) -> None:
        self.committed_offsets: dict[TopicPartition, int | None] = {
            TopicPartition("chat", 0): 42,
            TopicPartition("chat", 1): None,
            TopicPartition("chat", 2): None,
            TopicPartition("app-profiles-changelog", 0): None,
        }
        self.sought: dict[TopicPartition, int] = {}
        self.commits: list[dict[TopicPartition, int]] = []
        self.times_asked: dict[TopicPartition, int] = {}
        self.commit_fails = commit_fails

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.committed_offsets[tp]

    async def seek_to_committed(self) -> dict[TopicPartition, int | None]:
        return dict(self.committed_offsets)

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 10 * tp.partition for tp in tps}

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 100 * tp.partition for tp in tps}

    async def offsets_for_times(
        self, times: dict[TopicPartition, int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        self.times_asked = times
        return {tp: OffsetAndTimestamp(50, 0) if tp.partition == 1 else None for tp in times}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.sought[tp] = offset

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        commit_structure_validate(offsets)  # aiokafka's check: its own TopicPartition keys
        if self.commit_fails:
            raise CommitFailedError("rebalancing")
        self.commits.append(dict(offsets))
        self.committed_offsets.update(offsets)


NEW = {TopicPartition("chat", 1): 50, TopicPartition("chat", 2): 200}


class _Started:
    """The hook installed on ``app`` with ``kafka`` as the consumer thread's aiokafka consumer;
    ``seen`` is what the plan was given, ``faust_heard`` the assignments Faust was told of."""

    def __init__(
        self, app: faust.App, kafka: _AIOKafka, at_ms: int | None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.seen: list[dict[int, RetainedRange]] = []
        self.faust_heard: list[tuple[set[TP], dict[TopicPartition, int]]] = []
        self.fail_plan = False
        start_new_partitions(app, "chat", at_ms, self.plan)
        self.consumer: Any = app.consumer
        thread = self.consumer._thread
        thread._consumer = kafka  # what the thread creates when it starts

        async def call_thread(fun: Any, *args: Any) -> Any:  # the thread's loop is this one
            return await fun(*args)

        async def faust_on_assigned(_: Any, assigned: set[TP], generation_id: int = 0) -> None:
            self.faust_heard.append((assigned, dict(kafka.sought)))

        thread.call_thread = call_thread
        monkeypatch.setattr(
            faust.transport.consumer.ConsumerThread, "on_partitions_assigned", faust_on_assigned
        )
        self.thread = thread

    def plan(self, partitions: Any) -> dict[int, int]:
        if self.fail_plan:
            raise RuntimeError("broker away")
        self.seen.append(dict(partitions))
        return {p: r.from_time if r.from_time is not None else r.end for p, r in partitions.items()}


ASSIGNED = {TP("chat", 0), TP("chat", 1), TP("chat", 2), TP("app-profiles-changelog", 0)}


async def test_new_partitions_start_where_the_plan_says_before_faust_hears_of_them(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka = _AIOKafka()
    started = _Started(app, kafka, 1_700_000_000_000, monkeypatch)
    await started.thread.on_partitions_assigned(ASSIGNED, 3)  # aiokafka's rebalance callback

    # Only the input topic's partitions without a committed offset, with their retained range.
    assert started.seen == [{1: RetainedRange(10, 100, 50), 2: RetainedRange(20, 200, None)}]
    assert set(kafka.times_asked.values()) == {1_700_000_000_000}
    assert kafka.sought == NEW and kafka.commits == [NEW]
    assert started.faust_heard == [(ASSIGNED, NEW)]  # sought before Faust's assignment chain

    # The seek after recovery finds them committed: Faust takes them as committed, as it takes
    # any offset committed before, and nothing is planned twice.
    await started.consumer.perform_seek()
    assert len(started.seen) == 1 and kafka.commits == [NEW]
    assert started.consumer._committed_offset[TP("chat", 1)] == 50
    assert started.consumer._committed_offset[TP("chat", 2)] == 200
    assert started.consumer._read_offset[TP("chat", 1)] == 50


async def test_a_start_that_fails_at_assignment_is_made_by_the_seek_after_recovery(
    app: faust.App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    kafka = _AIOKafka()
    started = _Started(app, kafka, None, monkeypatch)
    started.fail_plan = True
    await started.thread.on_partitions_assigned(ASSIGNED, 3)
    assert [assigned for assigned, _ in started.faust_heard] == [ASSIGNED]  # Faust still hears
    assert "cannot start the new partitions of chat" in caplog.text
    assert kafka.sought == {}

    started.fail_plan = False
    await started.consumer.perform_seek()  # what Faust's recovery awaits before resuming
    assert kafka.times_asked == {}  # no time was asked for
    assert started.seen == [{1: RetainedRange(10, 100), 2: RetainedRange(20, 200)}]
    assert kafka.sought == {TopicPartition("chat", 1): 100, TopicPartition("chat", 2): 200}
    assert started.consumer._committed_offset[TP("chat", 2)] == 200
    assert started.consumer._committed_offset[TP("chat", 0)] == 42


async def test_a_start_whose_commit_fails_is_still_sought(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka = _AIOKafka(commit_fails=True)
    started = _Started(app, kafka, 1_700_000_000_000, monkeypatch)
    await started.thread.on_partitions_assigned(ASSIGNED, 3)
    assert kafka.sought == NEW and kafka.commits == []


async def test_partitions_with_a_committed_offset_are_left_to_it(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka = _AIOKafka()
    kafka.committed_offsets = {TopicPartition("chat", 0): 42, TopicPartition("chat", 1): 0}
    started = _Started(app, kafka, None, monkeypatch)
    await started.thread.on_partitions_assigned({TP("chat", 0), TP("chat", 1)}, 3)
    await started.consumer.perform_seek()
    assert started.seen == [] and kafka.commits == []
    # Committed at 0: sought there, which aiokafka's seek to the committed offsets skips (a
    # position past records fetched and dropped during recovery would lose them).
    assert kafka.sought == {TopicPartition("chat", 1): 0}


def test_aiokafka_skips_a_committed_offset_of_0_when_it_seeks_to_the_committed_ones() -> None:
    source = inspect.getsource(aiokafka.AIOKafkaConsumer.seek_to_committed)
    assert "if offset and offset > 0:" in source  # gone: the hook's own seek to 0 can go too


def test_recovery_seeks_to_the_committed_offsets_before_the_streams_resume() -> None:
    # The hook runs inside that seek: the fetched messages of a new partition start at the
    # planned offset, never at auto_offset_reset's.
    recovery = faust.tables.recovery.Recovery
    for method in (recovery._resume_streams, recovery.on_recovery_completed):
        source = inspect.getsource(method)
        assert source.index("perform_seek()") < source.index("flow_control.resume()"), method
    perform = inspect.getsource(faust.transport.consumer.Consumer.perform_seek)
    assert "await self.seek_to_committed()" in perform
    assert "self._committed_offset.update(" in perform


def _assignment_for(url: str) -> ConsumerProtocolMemberAssignment:
    """What the broker hands a member: partition 0 of ``chat``, made for the worker at ``url``."""
    metadata = ClientMetadata(
        assignment=ClientAssignment(actives={"chat": [0]}, standbys={}),
        url=url,
        changelog_distribution={},
    )
    return ConsumerProtocolMemberAssignment(0, [("chat", [0])], zlib.compress(metadata.dumps()))


class _Refused(Exception):
    """Stands for the worker's exit."""


def _refuse(url: str) -> None:
    raise _Refused(url)


def test_an_assignment_made_for_this_worker_goes_to_faust(app: faust.App) -> None:
    refuse_assignments_for_another_url(app, _refuse)
    app.assignor.on_assignment(_assignment_for(str(app.conf.canonical_url)))
    assert app.assignor.assigned_actives() == {TP("chat", 0)}


def test_an_assignment_made_for_another_worker_url_is_refused_naming_it(app: faust.App) -> None:
    refuse_assignments_for_another_url(app, _refuse)
    with pytest.raises(_Refused, match="http://profile-stream-0.example:6066"):
        app.assignor.on_assignment(_assignment_for("http://profile-stream-0.example:6066"))
    assert app.assignor.assigned_actives() == set()


def test_faust_alone_would_assert_in_aiokafkas_coordinator_routine(app: faust.App) -> None:
    # Why the hook exists: the AssertionError ends aiokafka's coordinator routine for good.
    with pytest.raises(AssertionError):
        app.assignor.on_assignment(_assignment_for("http://elsewhere:6066"))


def test_end_offsets_builds_its_consumer_with_fausts_own_helpers() -> None:
    # EndOffsets connects with the worker's credentials through these two Faust helpers.
    auth = faust_aiokafka.credentials_to_aiokafka_auth(None, None)
    assert auth == {"security_protocol": "PLAINTEXT"}
    servers = faust_aiokafka.server_list([URL("kafka://127.0.0.1:9092")], 9092)
    assert servers == ["127.0.0.1:9092"]


class _Metadata:
    def __init__(self, known: bool) -> None:
        self.known = known

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return {0, 1, 2, 3} if self.known else None


class _Client:
    """A broker that shows a created topic in its metadata from its third answer on."""

    def __init__(self, known: bool = False) -> None:
        self.cluster = _Metadata(known)  # the client's own metadata, from its last update
        self.asked = 0

    async def fetch_all_metadata(self) -> _Metadata:
        self.asked += 1
        return _Metadata(known=self.asked >= 3)


async def test_a_topic_creation_returns_once_the_broker_metadata_shows_the_topic(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[str] = []

    async def really_create(
        self: Any, owner: Any, client: Any, topic: str, *a: Any, **kw: Any
    ) -> None:
        created.append(topic)

    monkeypatch.setattr(faust_aiokafka.Transport, "_really_create_topic", really_create)
    wait_until_created_topics_show(app)
    client = _Client()
    await app.transport._create_topic(None, client, "t-changelog", 4, 1, compacting=True)  # type: ignore[attr-defined]
    assert created == ["t-changelog"] and client.asked == 3
    restarted = _Client(known=True)  # a topic the client's metadata holds asks for nothing
    await app.transport._create_topic(None, restarted, "t-changelog", 4, 1, compacting=True)  # type: ignore[attr-defined]
    assert restarted.asked == 0
