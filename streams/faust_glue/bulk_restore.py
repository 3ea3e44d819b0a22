"""Changelog partitions read by a consumer of our own and written straight into the partition
databases of Faust's RocksDB store, one ``WriteBatch`` per partition and fetch.

What Faust's recovery would write, the same way: a record's key and value bytes as they are in
Kafka (the tables' serializers are ``raw``), a record without a value as a delete, into the
database Faust's store keeps open for the partition (a RocksDB database opens once per process),
and the partition's persisted offset under Faust's own key. The offset goes in the batch of the
records it covers, so a database always holds exactly what its offset says, whether the restore
finishes, is cancelled between two fetches, or the process dies. Under exactly-once the consumer
is ``read_committed``, so it returns committed records only, up to the last stable offset.

Internal: the RocksDB store's ``_dbs`` (partition to open ``Rdict``), ``_db_for_partition``,
``offset_key`` and ``use_rocksdict``, and the ``WriteBatch(raw_mode=True)`` that
``Store.apply_changelog_batch`` writes (``faust/stores/rocksdb.py``).
"""

import asyncio
import time
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, cast

import faust
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP
from rocksdict import DbClosedError, WriteBatch, WriteOptions

from streams.core.changelog_restore import PartitionRestore
from streams.faust_glue.transactions import exactly_once
from streams.faust_glue.transport import own_consumer

__all__ = ["BulkRestore", "PartitionRevoked", "RestoreTarget", "rocksdb_store"]

# Records per fetch, all partitions together: one fetch's batches take the event loop for a few
# milliseconds, then it yields.
_CHUNK = 2_000
_POLL_MS = 500
# No record and no partition done for this long: give the rest to Faust's recovery.
_STALL_S = 60.0
# A partition with at least this many offsets to read has its automatic compactions off while
# it is restored: fewer and the compactions it would start are not worth the two option writes
# (RocksDB persists its options file on each change, about 1.5 ms).
_BULK_LOAD_OFFSETS = 10_000


class PartitionRevoked(Exception):
    """A partition being restored left this worker, or a rebalance started: stop writing."""


def rocksdb_store(table: Any) -> RocksDBStore | None:
    """``table``'s store when a bulk restore writes it as Faust's recovery would; else None:
    another store or driver, a global or partitioner-routed table, a table with a changelog
    callback, or one whose class applies changelog batches its own way."""
    store = getattr(table, "data", None)
    plain = type(table).apply_changelog_batch is faust.tables.base.Collection.apply_changelog_batch
    if (
        not isinstance(store, RocksDBStore)
        or not store.use_rocksdict
        or table.is_global
        or table.use_partitioner
        or table._on_changelog_event is not None  # noqa: SLF001 - no public accessor
        or not plain
    ):
        return None
    return store


@dataclass
class RestoreTarget:
    """One active changelog partition to restore, into ``store``'s database ``db``."""

    tp: TP
    store: RocksDBStore
    db: Any  # rocksdict.Rdict, as the store opened it
    progress: PartitionRestore

    @classmethod
    def open(cls, tp: TP, store: RocksDBStore, progress: PartitionRestore) -> "RestoreTarget":
        """The target, with the partition's database opened as Faust's store opens it."""
        return cls(tp, store, store._db_for_partition(tp.partition), progress)  # noqa: SLF001

    @property
    def kafka_tp(self) -> TopicPartition:
        return TopicPartition(self.tp.topic, self.tp.partition)


@dataclass
class BulkRestore:
    """Restores ``targets``, keeping ``offsets`` (Faust's recovery offsets) equal to what each
    database holds. ``assigned(tp)`` says whether ``tp`` is still this worker's to restore.

    The batches skip RocksDB's write-ahead log (a quarter of the write time, bench/README.md),
    and every database written is flushed to its files before the restore returns, however it
    ends: Faust's own writes after it go through the log, and a crash before that flush finds
    a store no clean stop was recorded for, which the worker wipes (``streams.local_state``).
    A flush keeps the memtables' order, so even then a database holds a prefix of the batches
    with its offset.

    A database that takes many records has its automatic compactions off until the restore
    ends, however it ends (RocksDB's advice for a bulk load): each compaction of level 0 into
    the last level rewrites everything written before it, so during the restore they took a
    third as much CPU as the raw consumer's whole read, on two cores that the fetches need
    (bench/README.md). Turned back on, they merge the level-0 files once, in the background.
    A compaction changes how a database stores its data, never what it holds. The option is
    kept in the database's options file, which a reopening reads: a process killed during the
    restore leaves it off, but it also leaves no clean-stop marker, so the next start wipes the
    stores (``streams.local_state``).
    """

    app: faust.App
    targets: list[RestoreTarget]
    offsets: MutableMapping[TP, int]
    assigned: Callable[[TP], bool]
    records: int = 0
    slowest_write_s: float = 0.0
    _written: dict[int, Any] = field(default_factory=dict, init=False)  # by id: to flush
    _bulk_loaded: dict[int, Any] = field(default_factory=dict, init=False)  # compactions off

    async def run(self) -> None:
        """Read every target to its highwater. Raises :class:`PartitionRevoked` when one is
        no longer this worker's, and whatever the consumer or RocksDB raise."""
        conf = self.app.conf
        consumer = own_consumer(
            self.app,
            "restore",
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # a start compacted away: the oldest record kept
            isolation_level="read_committed" if exactly_once(self.app) else "read_uncommitted",
            # As Faust's consumer reads: its CRC check and fetch size.
            check_crcs=conf.broker_check_crcs,
            max_partition_fetch_bytes=conf.consumer_max_fetch_size,
        )
        await consumer.start()
        try:
            self._compactions(enabled=False)
            await self._read(consumer)
        finally:
            try:
                self._flush()
            finally:
                try:
                    self._compactions(enabled=True)
                finally:
                    await asyncio.shield(consumer.stop())  # a cancelled restore still closes it

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        left = {target.kafka_tp: target for target in self.targets}
        consumer.assign(list(left))
        for kafka_tp, target in left.items():
            consumer.seek(kafka_tp, target.progress.first)
        progressed = time.monotonic()
        while left:
            fetched = await consumer.getmany(*left, timeout_ms=_POLL_MS, max_records=_CHUNK)
            finished = []
            for kafka_tp, target in left.items():
                position = await consumer.position(kafka_tp)
                self._write(target, fetched.get(kafka_tp, ()), position)
                if target.progress.done(position):
                    finished.append(kafka_tp)
            for kafka_tp in finished:
                del left[kafka_tp]
                consumer.pause(kafka_tp)  # nothing more to fetch for it
            if fetched or finished:
                progressed = time.monotonic()
            elif time.monotonic() - progressed > _STALL_S:
                raise TimeoutError(f"no changelog record in {_STALL_S:.0f}s")

    def _write(
        self, target: RestoreTarget, records: Iterable[ConsumerRecord[Any, Any]], position: int
    ) -> None:
        """Apply ``records`` with the offset they bring the partition to, the reader being at
        ``position``; the highwater alone once passed (markers and aborted records after the
        last record, under exactly-once)."""
        batch, last, count = WriteBatch(raw_mode=True), None, 0
        for record in records:
            if not target.progress.wants(record.offset):
                continue
            if record.key is None:  # Faust's recovery cannot apply it either
                raise ValueError(f"a changelog record without a key: {target.tp}@{record.offset}")
            if record.value is None:
                batch.delete(record.key)
            else:
                batch.put(record.key, record.value)
            last, count = record.offset, count + 1
        partition = target.tp.partition
        still_open = target.store._dbs.get(partition) is target.db  # noqa: SLF001
        if not still_open or not self.assigned(target.tp):
            raise PartitionRevoked(f"{target.tp} left this worker during its restore")
        offset = target.progress.to_persist(last, position)
        if offset is None:
            return
        batch.put(target.store.offset_key, str(offset).encode())
        started = time.monotonic()
        self._written[id(target.db)] = target.db
        target.db.write(batch, _NO_WAL)  # the records and their offset, atomically
        self.slowest_write_s = max(self.slowest_write_s, time.monotonic() - started)
        self.offsets[target.tp] = offset
        self.records += count

    def _flush(self) -> None:
        for db in self._written.values():
            db.flush(True)

    def _compactions(self, *, enabled: bool) -> None:
        """Turn automatic compactions off for the databases that take many records, or back on
        for those turned off."""
        if not enabled:
            large = (t.db for t in self.targets if t.progress.offsets >= _BULK_LOAD_OFFSETS)
            self._bulk_loaded = {id(db): db for db in large}
        value, failed = ("false" if enabled else "true"), None
        for db in self._bulk_loaded.values():
            try:
                db.set_options({"disable_auto_compactions": value})
            except DbClosedError:  # closed for good: no write reaches it any more
                if not enabled:
                    raise
            except Exception as exc:  # noqa: BLE001 - the others are turned back on first
                if not enabled:
                    raise
                failed = failed or exc
        if enabled:
            self._bulk_loaded = {}
        if failed is not None:
            raise failed


def _no_wal() -> WriteOptions:
    options = WriteOptions()
    cast(Any, options).disable_wal = True  # a property (the stub says a method)
    return options


_NO_WAL = _no_wal()
