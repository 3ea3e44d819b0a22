"""The buffer table: one entry per buffered chat message, apart from the profile record.

Buffering a message writes that message's entry, not the user's profile record, so the
changelog carries about the message's size (docs/state.md). A user's buffer is the run of
entries ``user\\x1f<seq>`` from the record's ``buffer_seq`` up to the first missing one, read by
point reads (at most ``PROFILE_STREAM_MAX_BUFFERED_MESSAGES`` of them), never by a scan.

Writes follow the profile table's rules: the batch's event is current (Faust routes a write to
its partition), and ownership is checked right before each write. A flush deletes its entries
only after the record that moved ``buffer_seq`` past them is acknowledged by the changelog, and
oldest first, so what a crash leaves behind is one contiguous run right below ``buffer_seq``,
which the next flush or forget deletes (:meth:`BufferStore.clear`).
"""

from collections.abc import Awaitable, Callable, Iterable, MutableMapping

from schemas import BufferedMessage, ProfileRecord
from streams.core.buffer_layout import (
    LEGACY_SCANNED,
    SEPARATOR,
    entries_of,
    entry_key,
    run_of,
    subject_of,
)
from streams.core.codecs import encode
from streams.core.records import unbuffered
from streams.pipeline.ownership import check_owned
from streams.pipeline.ports import EventHandle

__all__ = ["BufferStore", "LEGACY_SCANNED", "SEPARATOR", "entry_key", "subject_of"]


def _no_event_to_make_current(event: EventHandle | None) -> None:
    return None


async def _acked_now(key: bytes) -> None:
    return None


class BufferStore:
    """Reads and writes one kind's buffer table (see the module docstring)."""

    def __init__(
        self,
        table: MutableMapping[bytes, bytes],
        *,
        make_event_current: Callable[[EventHandle | None], None] = _no_event_to_make_current,
        changelog_acked: Callable[[bytes], Awaitable[None]] = _acked_now,
    ) -> None:
        self.table = table
        self._make_event_current = make_event_current
        self._changelog_acked = changelog_acked

    def entries(self, key: bytes, start: int) -> list[BufferedMessage]:
        """``key``'s buffer: its entries from ``start`` to the first missing one."""
        return entries_of(self.table, key, start)

    def count(self, key: bytes, start: int) -> int:
        """How many entries ``key``'s buffer holds from ``start`` on."""
        return sum(1 for _ in run_of(self.table, key, start))

    def emptied(self, key: bytes, record: ProfileRecord) -> ProfileRecord:
        """``record`` with its buffer emptied and ``buffer_seq`` past every entry the table holds
        for it: the record a flush or forget stores before :meth:`clear`."""
        return unbuffered(record, record.buffer_seq + self.count(key, record.buffer_seq))

    def write(
        self,
        key: bytes,
        handle: EventHandle | None,
        record: ProfileRecord,
        *,
        stored: int | None = None,
    ) -> list[bytes]:
        """Store the entries of ``record``'s buffer that the table does not hold yet (those past
        the ``stored`` ones, counted when not given); returns their table keys, to wait for."""
        held = self.count(key, record.buffer_seq) if stored is None else stored
        written = []
        for seq, entry in enumerate(record.buffer[held:], start=record.buffer_seq + held):
            written.append(self._set(entry_key(key, seq), handle, encode(entry)))
        return written

    async def durable(self, keys: Iterable[bytes]) -> None:
        """Return once the changelog acknowledged the last write of each of ``keys``."""
        for entry in keys:
            check_owned("the changelog wait")
            await self._changelog_acked(entry)

    def clear(self, key: bytes, handle: EventHandle | None, below: int) -> int:
        """Delete ``key``'s entries below ``below``: the run a flush or forget emptied, with any
        run a crash left under it. Oldest first, so an interrupted clear leaves a run that ends
        right below ``below`` again. Returns how many were deleted."""
        low = below
        while low > 0 and entry_key(key, low - 1) in self.table:
            low -= 1
        for seq in range(low, below):
            check_owned("a store")
            self._make_event_current(handle)
            del self.table[entry_key(key, seq)]
        return below - low

    def _set(self, entry: bytes, handle: EventHandle | None, value: bytes) -> bytes:
        check_owned("a store")
        self._make_event_current(handle)
        self.table[entry] = value
        return entry
