"""The clean-stop marker in a worker's data dir, and what the worker does with its local table
stores at start (:mod:`streams.core.clean_stop` says why).

:func:`prepare_local_state` runs at start, with the data dir locked and before Faust opens a
store: it takes the marker away and wipes the stores when the last stop left none.
:func:`record_clean_stop` runs at the end of a stop, when no batch runs any more: it writes the
marker once every changelog write is acknowledged.
"""

import logging
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import faust

from streams.core.clean_stop import MARKER, LocalStores, on_start
from streams.faust_glue import ProfileTable, local_table_stores

__all__ = ["changelog_settled", "prepare_local_state", "record_clean_stop"]

logger = logging.getLogger(__name__)


def prepare_local_state(app: faust.App, data_dir: Path) -> LocalStores:
    """Take the clean-stop marker out of ``data_dir``; wipe the tables' local stores when it
    was not there, so Faust restores them from the changelog. Call before the worker starts."""
    marker = data_dir / MARKER
    stores = local_table_stores(app)
    action = on_start(marker=marker.exists(), stores=bool(stores))
    # Gone before anything is written: a crash from here on finds no marker.
    marker.unlink(missing_ok=True)
    _sync(data_dir)
    if action is LocalStores.WIPED:
        started = time.monotonic()
        # No database, so no persisted offset: Faust restores each from the changelog's start.
        for path in stores:
            shutil.rmtree(path, ignore_errors=True)
        logger.warning(
            "local state wiped: no clean stop recorded; stores=%d seconds=%.2f; the tables are "
            "restored from their changelogs",
            len(stores),
            time.monotonic() - started,
        )
    else:
        logger.info("local state %s stores=%d", action.value, len(stores))
    return action


async def record_clean_stop(app: faust.App, data_dir: Path) -> bool:
    """Write the clean-stop marker in ``data_dir`` if every changelog write of the tables is
    acknowledged; whether it was written. Call once no batch can write a table any more."""
    try:
        settled = await changelog_settled(app)
    except Exception:  # a producer that never started, or one that failed: not clean
        logger.exception("cannot tell whether the changelog writes were acknowledged")
        settled = False
    if not settled:
        logger.warning("stopped with changelog writes not acknowledged: no clean-stop marker")
        return False
    marker = data_dir / MARKER
    with marker.open("w") as handle:
        handle.write(f"stopped cleanly at {datetime.now(UTC).isoformat()}\n")
        handle.flush()
        os.fsync(handle.fileno())
    _sync(data_dir)
    logger.info("clean stop recorded marker=%s", marker)
    return True


async def changelog_settled(app: faust.App) -> bool:
    """Whether every changelog write of ``app``'s tables made by this process is acknowledged:
    the producer flushed, each table's writes in flight awaited.

    Only a :class:`ProfileTable` tracks its writes; a table of another class cannot say, so it
    counts as not settled (its stores are restored at the next start: slower, never wrong).
    """
    await app.producer.flush()
    settled = True
    for table in app.tables.values():
        if not isinstance(table, ProfileTable):
            logger.warning("changelog writes untracked table=%s", table.name)
            settled = False
        elif not await table.settled():
            settled = False
    return settled


def _sync(folder: Path) -> None:
    """Make a file's creation or removal in ``folder`` durable (the folder's own entry)."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
