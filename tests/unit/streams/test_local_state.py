"""The clean-stop marker and the wipe of local table stores, on Faust's real RocksDB layout
(store paths asked of Faust's own store, so a change of layout in an upgrade fails here)."""

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import pytest

from streams import local_state
from streams.core.clean_stop import MARKER, LocalStores
from streams.faust_glue import ProfileTable, local_table_stores
from streams.local_state import changelog_settled, prepare_local_state, record_clean_stop


@pytest.fixture
def app(tmp_path: Path) -> Iterator[faust.App]:
    app = faust.App(
        "state-test",
        broker="kafka://127.0.0.1:1",
        store="rocksdb://",
        datadir=str(tmp_path),
        autodiscover=False,
    )
    # Several tables, as the split layout has: the wipe must not depend on their names.
    for name in ("profiles", "profiles-buffers", "history"):
        app.tables.add(ProfileTable(app, name=name, key_type=bytes, value_type=bytes))
    yield app


def _stores(app: faust.App, partitions: range = range(3)) -> list[Path]:
    """Partition databases of every table where Faust's RocksDB store puts them."""
    paths = [
        cast_store(table).partition_path(p) for table in app.tables.values() for p in partitions
    ]
    for path in paths:
        path.mkdir(parents=True)
        (path / "CURRENT").write_text("MANIFEST-000001\n")
    return paths


def cast_store(table: Any) -> Any:
    return table.data


def test_every_tables_partition_databases_are_its_local_stores(app: faust.App) -> None:
    made = _stores(app)
    unrelated = Path(app.conf.tabledir) / "notes.txt"
    unrelated.write_text("kept")
    found = set(local_table_stores(app))
    assert set(made) <= found and unrelated not in found
    # The rest is each table's backups folder, which Faust's store makes when it is created.
    assert sorted(p.name for p in found - set(made)) == [
        f"{name}-backups" for name in ("history", "profiles", "profiles-buffers")
    ]


def test_stores_without_a_clean_stop_are_wiped_before_they_open(
    app: faust.App, tmp_path: Path
) -> None:
    made = _stores(app)
    assert prepare_local_state(app, tmp_path) is LocalStores.WIPED
    assert not any(path.exists() for path in made)
    assert local_table_stores(app) == []


def test_stores_after_a_clean_stop_are_kept_and_the_marker_taken(
    app: faust.App, tmp_path: Path
) -> None:
    made = _stores(app)
    (tmp_path / MARKER).write_text("stopped cleanly")
    assert prepare_local_state(app, tmp_path) is LocalStores.KEPT
    assert all(path.exists() for path in made)
    # A kill -9 from now on must find no marker.
    assert not (tmp_path / MARKER).exists()


def test_a_first_start_has_nothing_to_wipe(app: faust.App, tmp_path: Path) -> None:
    assert prepare_local_state(app, tmp_path) is LocalStores.NONE


async def test_a_stop_with_every_changelog_write_acknowledged_is_recorded_clean(
    app: faust.App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _stores(app)
    monkeypatch.setattr(local_state, "changelog_settled", _settled(True))
    assert await record_clean_stop(app, tmp_path)
    assert prepare_local_state(app, tmp_path) is LocalStores.KEPT
    assert all(path.exists() for path in made)


async def test_a_stop_with_a_changelog_write_lost_leaves_no_marker(
    app: faust.App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stores(app)
    monkeypatch.setattr(local_state, "changelog_settled", _settled(False))
    assert not await record_clean_stop(app, tmp_path)
    assert prepare_local_state(app, tmp_path) is LocalStores.WIPED


def _settled(answer: bool) -> Any:
    async def settled(app: faust.App) -> bool:
        return answer

    return settled


class _Producer:
    async def flush(self) -> None:
        pass


@pytest.mark.parametrize(("outcome", "settled"), [("acked", True), ("failed", False)])
async def test_changelog_settled_waits_for_each_write_and_says_if_one_failed(
    app: faust.App, monkeypatch: pytest.MonkeyPatch, outcome: str, settled: bool
) -> None:
    sends: list[asyncio.Future[Any]] = []

    def faust_send(self: Any, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        sends.append(asyncio.get_running_loop().create_future())
        return sends[-1]

    monkeypatch.setattr(faust.Table, "send_changelog", faust_send)
    monkeypatch.setattr(app, "_producer", _Producer())
    table = next(iter(app.tables.values()))
    table.send_changelog(0, b"alice", b"v1")
    table.send_changelog(0, b"bob", b"v1")
    waiting = asyncio.create_task(changelog_settled(app))
    await asyncio.sleep(0)
    assert not waiting.done()  # bob's write is not acknowledged yet
    sends[0].set_result(None)
    if outcome == "acked":
        sends[1].set_result(None)
    else:
        sends[1].set_exception(RuntimeError("MessageSizeTooLarge"))
    assert await asyncio.wait_for(waiting, 1) is settled


async def test_a_table_that_tracks_no_writes_is_never_taken_as_settled(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app, "_producer", _Producer())
    app.Table("plain", key_type=bytes, value_type=bytes)  # Faust registers it
    assert not await changelog_settled(app)


async def test_a_stop_whose_producer_cannot_flush_leaves_no_marker(
    app: faust.App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(app: faust.App) -> bool:
        raise RuntimeError("Cannot flush: Producer not Running")

    monkeypatch.setattr(local_state, "changelog_settled", broken)
    assert not await record_clean_stop(app, tmp_path)
    assert not (tmp_path / MARKER).exists()
