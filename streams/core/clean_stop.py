"""What a worker does with its local table stores at start, from how it last stopped.

Faust writes a table's local store (RocksDB) first and its changelog after, so a worker killed
between the two keeps local state the changelog never got. Restarted on the same data dir, it
would take that state for durable: skip a redelivered message as already applied and
acknowledge it, or announce a version no other worker will ever see (review F1, F8). Kafka
Streams trusts a task's local store only when the task was closed cleanly and restores it from
the changelog otherwise; this is the same rule for a whole worker.

A worker leaves a marker file in its data dir only after a clean stop, once every changelog
write it made is acknowledged; it removes the marker at start, before any store opens. At the
next start, local stores without the marker are wiped and restored from the changelog.
"""

from enum import Enum

__all__ = ["MARKER", "LocalStores", "on_start"]

#: The marker's file name in the data dir. Its presence is the whole message: a worker that
#: stopped cleanly; its content (when and what) is for a person reading the folder.
MARKER = "clean-stop"


class LocalStores(Enum):
    """What a starting worker does with the table stores it finds in its data dir."""

    #: There are none (a first start, or a new data dir): every partition is restored from the
    #: changelog, from its start.
    NONE = "none"
    #: The last stop was clean: the stores hold nothing the changelog lacks, so they are kept
    #: and only the changelog's tail is read.
    KEPT = "kept"
    #: No clean stop since the stores were last written (kill -9, OOM, a crash exit, a
    #: changelog write that failed): they may be ahead of the changelog, so they are deleted
    #: and restored from the changelog, from its start.
    WIPED = "wiped"


def on_start(*, marker: bool, stores: bool) -> LocalStores:
    """What to do with the local stores, given whether the clean-stop ``marker`` and any
    table ``stores`` are in the data dir."""
    if not stores:
        return LocalStores.NONE
    return LocalStores.KEPT if marker else LocalStores.WIPED
