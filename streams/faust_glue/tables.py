"""Faust tables: recovery state, the current event a write is made under, a table's items per
partition, changelog acknowledgements, and where a table's local stores live.
"""

import asyncio
import functools
import re
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import faust
from faust.stores.base import SerializedStore
from faust.streams import _current_event

__all__ = [
    "ProfileTable",
    "actives_ready",
    "local_table_stores",
    "make_event_current",
    "partition_event",
    "partition_items",
    "tables_recovered",
]


def tables_recovered(app: faust.App) -> bool:
    """Whether the worker finished restoring its table partitions after the last rebalance.
    Internal: ``app.tables.recovery.completed`` (an ``asyncio.Event``), no public accessor."""
    return bool(cast(Any, app.tables).recovery.completed.is_set())


def actives_ready(app: faust.App) -> bool:
    """Whether the tables' active partitions are restored for the current assignment.
    Internal: ``TableManager.actives_ready``, set False when a rebalance starts and True once
    recovery resumes the streams (``recovery.completed`` is never cleared after the first)."""
    return bool(cast(Any, app.tables).actives_ready)


def make_event_current(event: Any) -> None:
    """Make ``event`` current in this task, so a table write goes to its partition.
    Faust finds the partition of a table write from the task-local current event; our batches
    run in their own tasks, so they set it themselves. Internal: the ``ContextVar``
    ``faust.streams._current_event`` (holding a weak reference: keep ``event`` alive)."""
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
    (a flush the timer asks for); make it current with :func:`make_event_current`. Internal:
    Faust's ``Table.partition_for_key`` and the RocksDB store's ``_set`` read the current
    event's ``message.topic`` and ``message.partition``, nothing else."""
    return _PartitionEvent(*tp)


def partition_items(table: faust.Table[bytes, bytes], p: int) -> Iterator[tuple[bytes, bytes]]:
    """What this worker stores for ``table``'s partition ``p``, read lazily (``items()`` walks
    every active partition at once). Internal: the RocksDB store's ``_dbs`` (partition to open
    database) and ``_visible_items(db)``; a store without them (``memory://``) gives all."""
    store = cast(Any, table).data
    if not hasattr(store, "_dbs"):
        return iter(table.items())
    db = store._dbs.get(p)  # noqa: SLF001 - no public API
    return iter(()) if db is None else cast(Iterator[Any], store._visible_items(db))  # noqa: SLF001


class ProfileTable(faust.Table[bytes, bytes]):
    """A table that can wait for the changelog write of one key, not for every pending send
    (flushing the whole producer for that was too costly in CPU: ``bench/README.md``), and
    reads a key with one store lookup.

    Internal: overrides ``Table.send_changelog(partition, key, value, ...)``, which Faust calls
    positionally from ``on_key_set`` / ``on_key_del`` and which returns the send's future; and
    ``get``, reading the serialized store's ``_get`` (``None`` when the key is absent).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[bytes, asyncio.Future[Any]] = {}
        #: A changelog write failed or was cancelled: the local store may hold what it lacks.
        self.lost_a_write = False

    def get(self, key: bytes, default: Any = None) -> Any:
        """The value of ``key``, else ``default``. ``Mapping.get`` through Faust's dict reads the
        store twice for a key it holds (``in``, then the read) and raises ``KeyError`` through
        three frames for one it lacks: a batch reads its buffer's absent next entry every time."""
        store = self.data
        if not isinstance(store, SerializedStore):  # memory://
            return super().get(key, default)
        self.on_key_get(key)
        value = store._get(store._encode_key(key))  # noqa: SLF001 - no public single read
        return default if value is None else store._decode_value(value)  # noqa: SLF001

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        """Faust's send, remembering its future as the key's last changelog write."""
        future = super().send_changelog(*args, **kwargs)
        key = args[1] if len(args) > 1 else kwargs["key"]
        self._pending[key] = future
        future.add_done_callback(functools.partial(self._forget, key))
        return future

    def _forget(self, key: bytes, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            self.lost_a_write = True
        if self._pending.get(key) is future:
            del self._pending[key]

    async def changelog_acked(self, key: bytes) -> None:
        """Return once the last changelog write of ``key`` is acknowledged by Kafka."""
        future = self._pending.get(key)
        if future is not None:
            await future

    async def settled(self) -> bool:
        """Wait for every changelog write in flight; whether all this process made were
        acknowledged (none failed or was cancelled)."""
        await asyncio.gather(*self._pending.values(), return_exceptions=True)
        return not self.lost_a_write


# A partition's database (it holds the changelog offset recovery resumes from) or the backups.
_STORE_FOLDER = re.compile(r"(?P<table>.+)-(?:\d+\.db|backups)")


def local_table_stores(app: faust.App) -> list[Path]:
    """The local store folders of every table of ``app`` in its data dir, whatever its name.
    Internal: Faust's RocksDB store keeps table ``name``'s partition ``n`` in
    ``<tabledir>/<name>-<n>.db`` (``Store.partition_path``) and its backups in
    ``<tabledir>/<name>-backups``; ``tabledir`` is ``<datadir>/v<version>/tables``.
    """
    tabledir = Path(app.conf.tabledir)
    if not tabledir.is_dir():
        return []
    tables = {table.name for table in app.tables.values()}
    return sorted(
        path
        for path in tabledir.iterdir()
        if (found := _STORE_FOLDER.fullmatch(path.name)) and found["table"] in tables
    )
