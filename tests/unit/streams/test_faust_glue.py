"""Each hook into Faust internals, checked against the installed Faust: an upgrade that moves
one of them fails here, not in production."""

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import faust
import faust.stores.rocksdb
import faust.streams
import faust.tables.base
import pytest
from faust.types import TP

from streams.faust_glue import (
    ProfileTable,
    actives_ready,
    add_web_middleware,
    consumer_lag,
    keep_fetched_events_on_resume,
    make_event_current,
    mounted_methods,
    partition_event,
    tables_recovered,
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


async def test_actives_ready_follows_the_rebalance(app: faust.App) -> None:
    app.tables.on_rebalance_start()
    assert actives_ready(app) is False
    app.tables.on_actives_ready()  # type: ignore[attr-defined]
    assert actives_ready(app) is True


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
