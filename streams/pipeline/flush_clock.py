"""The due times of buffered subjects on this worker, for the flush timer.

Pure: no Faust, no clock of its own. After each batch of a subject, the updater says when its
buffer is due (or that it is empty); the worker's timer takes what is due, as many as the
scheduler has room for, and submits a flush job per subject (``streams.app``). The clock is
memory only: after a restart or a rebalance it is rebuilt from the buffers stored in the tables
(:class:`BufferScan`, fed one assigned partition at a time, in chunks, by the worker).
"""

import heapq
import logging
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field

import orjson

from streams.core.buffer_layout import LEGACY_SCANNED, subject_of
from streams.core.codecs import decode_record
from streams.core.flushing import FlushPolicy, due_at
from streams.pipeline.ownership import TopicPartition

__all__ = ["BufferScan", "FlushClock", "buffers_in"]

logger = logging.getLogger(__name__)

# In the bytes of every record of formats 4 to 6 with a buffer (an empty one is left out): most
# records are skipped without being decoded.
_HAS_BUFFER = b'"buffer":['
# Heap entries per live subject (plus a constant) beyond which stale ones are dropped.
_COMPACT_AT = 2
_COMPACT_SLACK = 1024


@dataclass
class _Ends:
    """What the triggers read of a buffer: its oldest and newest entries."""

    first_seq: int
    first: float
    tp: TopicPartition
    last_seq: int
    last: float


@dataclass
class BufferScan:
    """The buffers found in what a worker stores, fed entry by entry (so a caller can read a
    partition in chunks); :meth:`found` says when each is due.

    Entries of the buffer table are read for ``source`` and ``received`` only, not decoded as
    messages; records of the single-record release (formats 4 to 6) for their buffer. One that
    cannot be read is left out, its key logged (never its value) and kept in ``skipped``; the
    others are found all the same.
    """

    policy: FlushPolicy
    skipped: list[bytes] = field(default_factory=list)
    _ends: dict[bytes, _Ends] = field(default_factory=dict)
    _embedded: dict[bytes, tuple[TopicPartition, float]] = field(default_factory=dict)

    def entry(self, raw_key: bytes, raw: bytes) -> None:
        """One item of the buffer table."""
        if raw_key == LEGACY_SCANNED:
            return
        try:
            key, seq = subject_of(raw_key)
            data = orjson.loads(raw)
            tp, received = _partition_of(str(data["source"])), float(data["received"])
        except (ValueError, KeyError, TypeError):
            self._skip(raw_key)
            return
        ends = self._ends.get(key)
        if ends is None:
            self._ends[key] = _Ends(seq, received, tp, seq, received)
        elif seq < ends.first_seq:
            ends.first_seq, ends.first, ends.tp = seq, received, tp
        elif seq > ends.last_seq:
            ends.last_seq, ends.last = seq, received

    def record(self, key: bytes, raw: bytes) -> None:
        """One item of the profile table: a buffer inside it is found (formats 4 to 6)."""
        if _HAS_BUFFER not in raw:
            return
        try:
            buffer = decode_record(raw).buffer
            due = due_at(buffer, self.policy)
            if due is not None:
                self._embedded[key] = (_partition_of(buffer[0].source), due)
        except ValueError:  # pydantic's ValidationError is one too
            self._skip(key)

    def found(
        self, tps: Collection[TopicPartition]
    ) -> Iterator[tuple[bytes, TopicPartition, float]]:
        """The subjects of ``tps`` with a buffer: their partition (where the first buffered
        message was read) and when the buffer is due."""
        idle, age = self.policy.idle_s, self.policy.max_age_s
        for key, ends in self._ends.items():
            if ends.tp in tps:
                yield key, ends.tp, min(ends.last + idle, ends.first + age)
        for key, (tp, due) in self._embedded.items():
            # Also in the buffer table: converted, and the record's copy is left over.
            if key not in self._ends and tp in tps:
                yield key, tp, due

    @property
    def embedded(self) -> int:
        """How many buffers were found inside profile records (formats 4 to 6)."""
        return len(self._embedded)

    def _skip(self, key: bytes) -> None:
        self.skipped.append(key)
        logger.warning("undecodable buffer left out of the flush clock key=%r", key[:200])


def _partition_of(source: str) -> TopicPartition:
    """The partition a buffer's ``source`` names (``records.source_key``). Parsed while its
    entry is read, so a damaged one is skipped there instead of ending the whole rebuild.

    Raises:
        ValueError: ``source`` names no partition number.
    """
    topic, _, partition = source.rpartition(":")
    return topic, int(partition)


def buffers_in(
    records: Iterable[tuple[bytes, bytes]],
    entries: Iterable[tuple[bytes, bytes]],
    tps: Collection[TopicPartition],
    policy: FlushPolicy,
    skipped: list[bytes] | None = None,
) -> Iterator[tuple[bytes, TopicPartition, float]]:
    """The subjects of ``tps`` with a buffer, read at once from the items of the profile table
    (``records``) and of the buffer table (``entries``); see :class:`BufferScan`."""
    scan = BufferScan(policy, skipped if skipped is not None else [])
    for raw_key, raw in entries:
        scan.entry(raw_key, raw)
    for key, raw in records:
        scan.record(key, raw)
    return scan.found(tps)


class FlushClock:
    """Subjects with a buffer: their partition and when their buffer is due.

    A heap of due times with lazy deletion, so a tick costs O(log n) per subject due and
    nothing for the others (it used to walk every buffered subject), plus the subjects of each
    partition, so a partition leaving costs its own subjects only.
    """

    def __init__(self) -> None:
        self._due: dict[bytes, tuple[TopicPartition, float]] = {}
        self._heap: list[tuple[float, bytes]] = []
        self._by_tp: dict[TopicPartition, set[bytes]] = {}

    def __len__(self) -> int:
        return len(self._due)

    def set(self, key: bytes, tp: TopicPartition, due: float | None) -> None:
        """``key``'s buffer is due at ``due`` (None: it is empty)."""
        self._remove(key)
        if due is None:
            return
        self._due[key] = (tp, due)
        self._by_tp.setdefault(tp, set()).add(key)
        heapq.heappush(self._heap, (due, key))
        if len(self._heap) > _COMPACT_AT * len(self._due) + _COMPACT_SLACK:
            self._compact()

    def take_due(self, now: float, limit: int | None = None) -> list[tuple[bytes, TopicPartition]]:
        """The subjects due at ``now`` (at most ``limit``, the earliest first), removed: their
        flush job sets them again if need be; those past ``limit`` stay due for a later tick."""
        due: list[tuple[bytes, TopicPartition]] = []
        while self._heap and self._heap[0][0] <= now and (limit is None or len(due) < limit):
            at, key = heapq.heappop(self._heap)
            held = self._due.get(key)
            if held is None or held[1] != at:
                continue  # stale: emptied, dropped or set again since
            self._remove(key)
            due.append((key, held[0]))
        return due

    def drop(self, tps: Collection[TopicPartition]) -> None:
        """Forget the subjects of partitions leaving this worker."""
        for tp in tps:
            for key in self._by_tp.pop(tp, ()):
                del self._due[key]  # its heap entry is stale from now on

    def rebuild(self, found: Iterable[tuple[bytes, TopicPartition, float]]) -> int:
        """Add the buffers found in the table (after a restart or an assignment); returns how
        many."""
        count = 0
        for key, tp, due in found:
            self.set(key, tp, due)
            count += 1
        return count

    def _remove(self, key: bytes) -> None:
        held = self._due.pop(key, None)
        if held is not None:
            keys = self._by_tp[held[0]]
            keys.discard(key)
            if not keys:
                del self._by_tp[held[0]]

    def _compact(self) -> None:
        """Drop the stale heap entries (amortised: only once they outnumber the live ones)."""
        self._heap = [(at, key) for key, (_, at) in self._due.items()]
        heapq.heapify(self._heap)
