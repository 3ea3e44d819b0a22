"""Every touch of Faust (and aiokafka) internals, in one module.

Faust 0.15.3 has no public API for a few things the worker needs; each hook here names the
private attribute it reads or overrides, and ``tests/unit/streams/test_faust_glue.py`` checks
each one against the installed Faust, so an upgrade is a one-file review.
"""

import asyncio
import functools
import weakref
from typing import Any, cast

import faust
from faust.streams import _current_event
from mode.utils.queues import FlowControlEvent

__all__ = [
    "ProfileTable",
    "actives_ready",
    "add_web_middleware",
    "consumer_lag",
    "keep_fetched_events_on_resume",
    "make_event_current",
    "mounted_methods",
    "partition_event",
    "tables_recovered",
]


def tables_recovered(app: faust.App) -> bool:
    """Whether the worker finished restoring its table partitions after the last rebalance.

    Internal: ``app.tables.recovery.completed`` (an ``asyncio.Event``), no public accessor.
    """
    return bool(cast(Any, app.tables).recovery.completed.is_set())


def actives_ready(app: faust.App) -> bool:
    """Whether the tables' active partitions are restored for the current assignment.

    Internal: ``TableManager.actives_ready``, set False when a rebalance starts and True once
    recovery resumes the streams (``recovery.completed`` is never cleared after the first).
    """
    return bool(cast(Any, app.tables).actives_ready)


def make_event_current(event: Any) -> None:
    """Make ``event`` current in this task, so a table write goes to its partition.

    Faust finds the partition of a table write from the task-local current event; our batches
    run in their own tasks, so they set it themselves. Internal: the ``ContextVar``
    ``faust.streams._current_event`` (holding a weak reference), which Faust's own stream sets.
    """
    _current_event.set(weakref.ref(event) if event is not None else None)


class _PartitionMessage:
    """What Faust's table and RocksDB store read of the current event's record."""

    def __init__(self, topic: str, partition: int) -> None:
        self.topic, self.partition = topic, partition
        self.offset, self.timestamp = -1, 0.0
        self.key = self.value = None
        self.headers: list[tuple[str, bytes]] = []


class _PartitionEvent:
    """Stands for an event of ``topic``/``partition`` when no input is being processed."""

    def __init__(self, topic: str, partition: int) -> None:
        self.message = _PartitionMessage(topic, partition)

    def ack(self) -> bool:
        return False  # nothing was read: nothing to acknowledge


def partition_event(tp: tuple[str, int]) -> Any:
    """An event that routes a table write to partition ``tp`` outside any input's processing
    (a flush the timer asks for); make it current with :func:`make_event_current`.

    Internal: Faust's ``Table.partition_for_key`` and the RocksDB store's ``_set`` read the
    current event's ``message.topic`` and ``message.partition``, nothing else.
    """
    return _PartitionEvent(*tp)


def consumer_lag(app: faust.App, topic: str) -> float:
    """Input events not yet committed, summed over this worker's partitions of ``topic``.

    Internal: ``Consumer._committed_offset`` (the last committed offset per partition).
    """
    consumer = cast(Any, app.consumer)
    lag = 0
    for tp in consumer.assignment():
        highwater = consumer.highwater(tp) if tp.topic == topic else None
        if highwater is not None:  # None until the first fetch of the partition
            committed = consumer._committed_offset.get(tp) or 0  # noqa: SLF001 - no public API
            lag += max(0, highwater - committed)
    return float(lag)


class ProfileTable(faust.Table[bytes, bytes]):
    """A table that can wait for the changelog write of one key, not for every pending send.

    A batch makes its version durable before announcing it; flushing the whole producer for
    that was too costly in CPU under load (see ``bench/README.md``).

    Internal: overrides ``Table.send_changelog(partition, key, value, ...)``, which Faust calls
    positionally from ``on_key_set`` / ``on_key_del`` and which returns the send's future.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[bytes, asyncio.Future[Any]] = {}

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        """Faust's send, remembering its future as the key's last changelog write."""
        future = super().send_changelog(*args, **kwargs)
        key = args[1] if len(args) > 1 else kwargs["key"]
        self._pending[key] = future
        future.add_done_callback(functools.partial(self._forget, key))
        return future

    def _forget(self, key: bytes, future: asyncio.Future[Any]) -> None:
        if self._pending.get(key) is future:
            del self._pending[key]

    async def changelog_acked(self, key: bytes) -> None:
        """Return once the last changelog write of ``key`` is acknowledged by Kafka."""
        future = self._pending.get(key)
        if future is not None:
            await future


def add_web_middleware(app: faust.App, middleware: Any) -> None:
    """Run ``middleware`` (an aiohttp middleware) around every request to ``app``'s web server.

    Driver-specific: Faust's web API has no middleware hook; its aiohttp driver exposes the
    ``aiohttp.web.Application`` as ``app.web.web_app``. Call before the worker starts: aiohttp
    freezes the middleware list when the server starts.
    """
    cast(Any, app.web).web_app.middlewares.append(middleware)


def mounted_methods(view: type[faust.web.View]) -> frozenset[str]:
    """The HTTP methods Faust mounts ``view`` under: HEAD (answered by GET) and each method
    the view defines over Faust's ``View``.

    Faust decides this in ``View.get_methods``, on an instance; a view is built without its
    app and web server to ask it (Faust's ``View.__init__`` only stores them).
    """
    return frozenset(view(cast(Any, None), cast(Any, None)).get_methods())


class _ResumeKeepsRunningQueues(FlowControlEvent):
    """Faust's flow control, except that resuming a flow that already runs empties nothing.

    Faust empties every stream buffer on each ``flow_control.resume()``. Recovery calls it
    again once the tables are restored, right after resuming the input partitions and awaiting
    the seek to the committed offsets (``Recovery.on_recovery_completed``; ``_resume_streams``
    likewise). The fetcher runs during that await, so the buffer then holds events that were
    fetched and marked read but not yet given to the agent: emptied, they are never acknowledged
    and never fetched again. An event lost alone on its partition leaves a gap of exactly one in
    the acknowledged offsets, which ``Consumer._new_offset`` commits past (faust #606): the
    message is gone. A resume after a suspend (a rebalance) still empties the buffers: what they
    hold may come from partitions this worker no longer owns.
    """

    def resume(self) -> None:
        if self.is_active():
            return
        super().resume()


def keep_fetched_events_on_resume(app: faust.App) -> None:
    """Stop Faust from dropping fetched input events when recovery resumes a running flow.

    Internal: replaces ``App.flow_control`` (a cached property, ``FlowControlEvent``) before any
    stream queue registers with it; call right after creating the app.
    """
    assert "flow_control" not in app.__dict__, "flow control already in use"  # noqa: S101
    # loop=None: bound on first wait, inside the worker's loop, as Faust binds its own lazily.
    cast(Any, app).flow_control = _ResumeKeepsRunningQueues()
