"""The due times of buffered subjects on this worker, for the flush timer.

Pure: no Faust, no clock of its own. After each batch of a subject, the updater says when its
buffer is due (or that it is empty); the worker's timer takes what is due and submits a flush
job per subject (``streams.app``). The clock is memory only: after a restart or a rebalance it
is rebuilt from the buffers stored in the table (:meth:`FlushClock.rebuild`).
"""

from collections.abc import Collection, Iterable, Iterator, Mapping

from streams.core.codecs import decode_record
from streams.core.flushing import FlushPolicy, due_at
from streams.pipeline.ownership import TopicPartition

__all__ = ["FlushClock", "buffers_in"]

# In the bytes of every record with a buffer (an empty one is left out): most records are
# skipped without being decoded.
_HAS_BUFFER = b'"buffer":['


def buffers_in(
    table: Mapping[bytes, bytes], tps: Collection[TopicPartition], policy: FlushPolicy
) -> Iterator[tuple[bytes, TopicPartition, float]]:
    """The subjects of ``tps`` whose record in ``table`` holds a buffer, with its partition
    (where its first message was read) and when it is due."""
    for key, raw in table.items():
        if _HAS_BUFFER not in raw:
            continue
        buffer = decode_record(raw).buffer
        if not buffer:
            continue
        topic, _, partition = buffer[0].source.rpartition(":")
        tp = (topic, int(partition))
        due = due_at(buffer, policy)
        if tp in tps and due is not None:
            yield key, tp, due


class FlushClock:
    """Subjects with a buffer: their partition and when their buffer is due."""

    def __init__(self) -> None:
        self._due: dict[bytes, tuple[TopicPartition, float]] = {}

    def __len__(self) -> int:
        return len(self._due)

    def set(self, key: bytes, tp: TopicPartition, due: float | None) -> None:
        """``key``'s buffer is due at ``due`` (None: it is empty)."""
        if due is None:
            self._due.pop(key, None)
        else:
            self._due[key] = (tp, due)

    def take_due(self, now: float) -> list[tuple[bytes, TopicPartition]]:
        """The subjects due at ``now``, removed: their flush job sets them again if need be."""
        due = [(key, tp) for key, (tp, at) in self._due.items() if at <= now]
        for key, _ in due:
            del self._due[key]
        return due

    def drop(self, tps: Collection[TopicPartition]) -> None:
        """Forget the subjects of partitions leaving this worker."""
        for key in [k for k, (tp, _) in self._due.items() if tp in tps]:
            del self._due[key]

    def rebuild(self, found: Iterable[tuple[bytes, TopicPartition, float]]) -> int:
        """Add the buffers found in the table (after a restart or an assignment); returns how
        many."""
        count = 0
        for key, tp, due in found:
            self._due[key] = (tp, due)
            count += 1
        return count
