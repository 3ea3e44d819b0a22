"""The bulk restore's hooks into Faust's recovery and RocksDB store, checked against the
installed Faust; and what it writes, against what Faust's own recovery writes."""

import asyncio
import inspect
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import faust
import faust.stores.rocksdb
import faust.tables.recovery
import pytest
from aiokafka import ConsumerRecord
from faust.types import TP

from streams.core.changelog_restore import PartitionRestore
from streams.faust_glue import ProfileTable, bulk_restore, restore_changelogs_in_bulk
from streams.faust_glue.bulk_restore import (
    BulkRestore,
    PartitionRevoked,
    RestoreTarget,
    rocksdb_store,
)

CHANGELOG = "glue-restore-profiles-changelog"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[faust.App]:
    yield faust.App(
        "glue-restore",
        broker="kafka://127.0.0.1:1",
        store="rocksdb://",
        datadir=str(tmp_path),
        autodiscover=False,
    )


def _table(app: faust.App, name: str) -> Any:
    return ProfileTable(app, name=name, key_type=bytes, value_type=bytes, partitions=4)


def _records(partition: int) -> list[ConsumerRecord[bytes, bytes]]:
    """Changelog records: two writes of one key, another key, then a delete of the first."""
    kv = [(b"alice", b"v1"), (b"bob", b"v2"), (b"alice", b"v3"), (b"alice", None)]
    kv += [(b"carol", b"\x00raw\xff")]
    return [
        cast(Any, SimpleNamespace)(topic=CHANGELOG, partition=partition, offset=o, key=k, value=v)
        for o, (k, v) in enumerate(kv)
    ]


def _as_events(records: list[Any]) -> list[Any]:
    return [
        SimpleNamespace(message=SimpleNamespace(tp=TP(r.topic, r.partition), **vars(r)))
        for r in records
    ]


def test_faust_seeks_the_actives_after_its_consistency_check_and_before_reading() -> None:
    task: Any = faust.tables.recovery.Recovery._restart_recovery
    source = " ".join(inspect.getsource(task.fun).split())
    check = source.index("recovery_consistency_check")
    seek = source.index(
        'self._wait( T(self._seek_offsets)( consumer, assigned_active_tps, active_offsets, "active"'
    )
    assert check < seek < source.index("if self.need_recovery():")


def test_faust_takes_a_step_that_times_out_for_a_stop() -> None:
    # Why the restore's step runs without Faust's request timeout: a timeout ends recovery.
    source = inspect.getsource(faust.tables.recovery.Recovery._wait)
    assert "if wait_result.stopped:" in source and "raise ServiceStopped()" in source
    assert "return WaitResults([], [], True)" in inspect.getsource(faust.App.wait_first)


async def test_only_the_restore_step_runs_without_the_request_timeout(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    restore_changelogs_in_bulk(app)
    recovery: Any = app.tables.recovery  # type: ignore[attr-defined]
    timeouts: list[Any] = []

    async def wait(self: Any, coro: Any, timeout: Any = None) -> None:
        timeouts.append(timeout)
        coro.close()

    monkeypatch.setattr(faust.tables.recovery.Recovery, "_wait", wait)
    consumer: Any = None
    await recovery._wait(recovery._seek_offsets(consumer, set(), Counter(), "active"), 90)
    await recovery._wait(recovery._seek_offsets(consumer, set(), Counter(), "standby"), 90)
    assert timeouts == [None, 90]


def test_rocksdb_store_accepts_faust_plain_rocksdict_tables_only(app: faust.App) -> None:
    assert faust.stores.rocksdb.Store.offset_key == b"__faust\0offset__"
    table = _table(app, "profiles")
    assert rocksdb_store(table) is table.data
    table._on_changelog_event = lambda event: None
    assert rocksdb_store(table) is None  # a callback Faust would call per record
    memory = faust.App("glue-memory", broker="kafka://127.0.0.1:1", store="memory://")
    assert rocksdb_store(_table(memory, "profiles")) is None


def test_a_bulk_write_stores_what_faust_recovery_stores(app: faust.App) -> None:
    ours, faust_own = _table(app, "ours"), _table(app, "faust")
    records = _records(2)
    faust_own.data.apply_changelog_batch(_as_events(records), lambda k: k, lambda v: v)
    progress = PartitionRestore.plan(None, len(records) - 1)
    assert progress is not None
    target = RestoreTarget.open(TP(CHANGELOG, 2), ours.data, progress)
    offsets: dict[TP, int] = {}
    restore = BulkRestore(app, [target], offsets, lambda tp: True)
    restore._write(target, records, position=len(records))
    expected = dict(faust_own.data._db_for_partition(2).items())
    assert dict(ours.data._db_for_partition(2).items()) == expected
    assert expected[b"__faust\0offset__"] == b"4" and b"alice" not in expected
    assert offsets == {target.tp: 4} and restore.records == 5


def test_a_partition_gone_from_the_store_is_not_written(app: faust.App) -> None:
    table = _table(app, "profiles")
    progress = PartitionRestore.plan(None, 4)
    assert progress is not None
    target = RestoreTarget.open(TP(CHANGELOG, 1), table.data, progress)
    table.data.revoke_partitions(table, {TP(table.changelog_topic.get_topic_name(), 1)})
    with pytest.raises(PartitionRevoked):
        BulkRestore(app, [target], {}, lambda tp: True)._write(target, _records(1), 5)
    assert dict(target.db.items()) == {}


def test_a_rebalance_stops_the_writes(app: faust.App) -> None:
    table = _table(app, "profiles")
    progress = PartitionRestore.plan(None, 4)
    assert progress is not None
    target = RestoreTarget.open(TP(CHANGELOG, 0), table.data, progress)
    with pytest.raises(PartitionRevoked):
        BulkRestore(app, [target], {}, lambda tp: False)._write(target, _records(0), 5)


def _auto_compactions(db: Any) -> bool:
    """Whether ``db`` compacts on its own, as its latest options file says."""
    latest = max(Path(db.path()).glob("OPTIONS-*"), key=lambda path: int(path.name[8:]))
    return "disable_auto_compactions=false" in latest.read_text().split()


class _NoBroker:
    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


@pytest.mark.parametrize("ends", [None, PartitionRevoked, asyncio.CancelledError])
async def test_a_large_restore_compacts_only_once_it_ends_however_it_ends(
    app: faust.App, monkeypatch: pytest.MonkeyPatch, ends: type[BaseException] | None
) -> None:
    table = _table(app, "profiles")
    large, small = PartitionRestore.plan(None, 99_999), PartitionRestore.plan(None, 99)
    assert large is not None and small is not None
    targets = [
        RestoreTarget.open(TP(CHANGELOG, 0), table.data, large),
        RestoreTarget.open(TP(CHANGELOG, 1), table.data, small),
    ]
    during: list[tuple[bool, bool]] = []

    async def read(self: BulkRestore, consumer: Any) -> None:
        during.append((_auto_compactions(targets[0].db), _auto_compactions(targets[1].db)))
        if ends is not None:
            raise ends

    monkeypatch.setattr(bulk_restore, "own_consumer", lambda *args, **kwargs: _NoBroker())
    monkeypatch.setattr(BulkRestore, "_read", read)
    restore = BulkRestore(app, targets, {}, lambda tp: True)
    if ends is None:
        await restore.run()
    else:
        with pytest.raises(ends):
            await restore.run()
    assert during == [(False, True)]  # only the large one waits
    assert _auto_compactions(targets[0].db) and _auto_compactions(targets[1].db)


def test_compactions_come_back_on_for_every_database_when_one_refuses(app: faust.App) -> None:
    table = _table(app, "profiles")
    targets = []
    for partition in range(3):
        progress = PartitionRestore.plan(None, 99_999)
        assert progress is not None
        targets.append(RestoreTarget.open(TP(CHANGELOG, partition), table.data, progress))
    restore = BulkRestore(app, targets, {}, lambda tp: True)
    restore._compactions(enabled=False)
    refusing = SimpleNamespace(set_options=_refuse)  # turned off first, fails to turn back on
    restore._bulk_loaded = {id(refusing): refusing} | restore._bulk_loaded
    with pytest.raises(OSError, match="disk full"):
        restore._compactions(enabled=True)
    assert all(_auto_compactions(target.db) for target in targets)


def _refuse(options: Any) -> None:
    raise OSError("disk full")


async def test_a_restore_that_fails_leaves_the_rest_to_faust_with_a_warning(
    app: faust.App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    recovery, tp = _recovery_holding(app)

    async def broken(self: BulkRestore) -> None:
        raise ConnectionError("broker gone")

    sought: list[Any] = []

    async def seek(self: Any, consumer: Any, tps: Any, offsets: Any, title: str) -> None:
        sought.append((set(tps), dict(offsets), title))

    monkeypatch.setattr(BulkRestore, "run", broken)
    monkeypatch.setattr(faust.tables.recovery.Recovery, "_seek_offsets", seek)
    offsets = Counter({tp: -1})
    await recovery._seek_offsets(None, {tp}, offsets, "active")
    assert sought == [({tp}, {tp: -1}, "active")]  # Faust seeks where the database is
    assert "bulk restore failed, Faust's recovery restores the rest: error=ConnectionError" in (
        caplog.text
    )


def test_a_partition_is_no_longer_restored_once_a_rebalance_starts(app: faust.App) -> None:
    restore_changelogs_in_bulk(app)
    recovery: Any = app.tables.recovery  # type: ignore[attr-defined]
    tp = TP(CHANGELOG, 0)
    recovery.active_tps.add(tp)
    assigned = recovery._assigned(app.consumer_generation_id)
    assert assigned(tp) and not assigned(TP(CHANGELOG, 1))
    app.on_rebalance_start()  # a revocation, before any new assignment
    assert not assigned(tp)


def _recovery_holding(app: faust.App) -> tuple[Any, TP]:
    restore_changelogs_in_bulk(app)
    recovery: Any = app.tables.recovery  # type: ignore[attr-defined]
    table = _table(app, "profiles")
    tp = TP(table.changelog_topic.get_topic_name(), 0)
    recovery.tp_to_table[tp], recovery.active_highwaters[tp] = table, 9
    recovery.active_tps.add(tp)
    return recovery, tp


async def test_no_seek_runs_on_offsets_a_newer_assignment_rewrote(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    recovery, tp = _recovery_holding(app)
    sought: list[str] = []

    async def seek(self: Any, consumer: Any, tps: Any, offsets: Any, title: str) -> None:
        sought.append(title)

    monkeypatch.setattr(faust.tables.recovery.Recovery, "_seek_offsets", seek)
    await recovery._seek_offsets(None, {tp}, Counter({tp: 3}), "standby")
    recovery.signal_recovery_start.set()  # Faust's on_rebalance: a standby offset is None now
    with pytest.raises(faust.tables.recovery.RebalanceAgain):
        await recovery._seek_offsets(None, {tp}, Counter({tp: None}), "standby")
    assert sought == ["standby"]


async def test_a_restore_a_revocation_stopped_waits_for_the_next_assignment(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    recovery, tp = _recovery_holding(app)
    sought: list[str] = []

    async def revoked(self: BulkRestore) -> None:
        raise PartitionRevoked

    async def seek(self: Any, consumer: Any, tps: Any, offsets: Any, title: str) -> None:
        sought.append(title)

    monkeypatch.setattr(BulkRestore, "run", revoked)
    monkeypatch.setattr(faust.tables.recovery.Recovery, "_seek_offsets", seek)
    step = asyncio.ensure_future(recovery._seek_offsets(None, {tp}, Counter({tp: -1}), "active"))
    for _ in range(10):  # every callback the loop has ready runs; the step stays parked
        await asyncio.sleep(0)
    assert not step.done() and sought == []
    recovery.signal_recovery_start.set()
    with pytest.raises(faust.tables.recovery.RebalanceAgain):
        await step
    assert sought == []
