"""A stand-in for a worker's RocksDB table and its changelog, for what durability needs (the
review's proofs p03 and p04): a write reaches the local store at once and the changelog only
when its send is acknowledged; :meth:`DurableTable.crash` drops the sends in flight (kill -9);
:meth:`DurableTable.restarted` is the table a worker starts with on the same data dir, decided
as the worker decides (:func:`streams.core.clean_stop.on_start`)."""

import asyncio
from typing import Any

from streams.core.clean_stop import LocalStores, on_start

__all__ = ["DurableTable"]


class DurableTable(dict[bytes, bytes]):
    def __init__(
        self, local: dict[bytes, bytes] | None = None, changelog: dict[bytes, bytes] | None = None
    ) -> None:
        super().__init__(local or {})
        self.changelog: dict[bytes, bytes] = changelog if changelog is not None else {}
        self._pending: dict[bytes, asyncio.Future[Any]] = {}
        #: True: sends stay in flight (a kill -9 then finds them unacknowledged).
        self.hold = False
        #: Set once a held send is in flight.
        self.in_flight = asyncio.Event()
        self.clean = True

    def __setitem__(self, key: bytes, value: bytes) -> None:
        super().__setitem__(key, value)
        future = asyncio.get_running_loop().create_future()
        if self.hold:
            self._pending[key] = future  # a kill -9 cancels it: never in the changelog
            self.in_flight.set()
        else:
            self.changelog[key] = value
            future.set_result(None)

    async def changelog_acked(self, key: bytes) -> None:
        """Like ``ProfileTable.changelog_acked``: the last send of this process, if any."""
        future = self._pending.get(key)
        if future is not None:
            await future

    def crash(self) -> None:
        """kill -9: the sends in flight never reach Kafka, and no clean stop is recorded."""
        for future in list(self._pending.values()):
            future.cancel()
        self._pending.clear()
        self.clean = False

    def restarted(self) -> "DurableTable":
        """The table of a worker started again on this data dir."""
        action = on_start(marker=self.clean, stores=bool(self))
        local = dict(self) if action is LocalStores.KEPT else dict(self.changelog)
        return DurableTable(local, self.changelog)

    def moved(self) -> "DurableTable":
        """The table of another worker taking the partition: restored from the changelog."""
        return DurableTable(dict(self.changelog), self.changelog)
