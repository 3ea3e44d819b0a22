"""The due times of buffered subjects on this worker, for the flush timer.

Pure: no Faust, no clock of its own. After each batch of a subject, the updater says when its
buffer is due (or that it is empty); the worker's timer takes what is due and submits a flush
job per subject (``streams.app``). The clock is memory only: after a restart or a rebalance it
is rebuilt from the buffers stored in the table (:meth:`FlushClock.rebuild`).
"""

import logging
from collections.abc import Collection, Iterable, Iterator, Mapping

from pydantic import ValidationError

from schemas import BufferedMessage
from streams.core.codecs import decode_record
from streams.core.flushing import FlushPolicy, due_at
from streams.pipeline.buffer_store import subject_of
from streams.pipeline.ownership import TopicPartition

__all__ = ["FlushClock", "buffers_in"]

logger = logging.getLogger(__name__)

# In the bytes of every record of format 4 or 5 with a buffer (an empty one is left out): most
# records are skipped without being decoded.
_HAS_BUFFER = b'"buffer":['


def buffers_in(
    records: Mapping[bytes, bytes],
    entries: Mapping[bytes, bytes],
    tps: Collection[TopicPartition],
    policy: FlushPolicy,
    skipped: list[bytes] | None = None,
) -> Iterator[tuple[bytes, TopicPartition, float]]:
    """The subjects of ``tps`` with a buffer, with its partition (where its first message was
    read) and when it is due: from the buffer table's ``entries``, and from the ``records``
    that still hold their buffer (written by the single-record release). An entry or record
    that cannot be decoded is left out, its key logged (never its value) and added to
    ``skipped``; the others are found all the same."""
    bad = skipped if skipped is not None else []
    for key, buffer in [*_split_buffers(entries, bad), *_embedded_buffers(records, bad)]:
        topic, _, partition = buffer[0].source.rpartition(":")
        tp = (topic, int(partition))
        due = due_at(buffer, policy)
        if tp in tps and due is not None:
            yield key, tp, due


def _split_buffers(
    entries: Mapping[bytes, bytes], bad: list[bytes]
) -> Iterator[tuple[bytes, list[BufferedMessage]]]:
    """Per subject, its first and last entries (the triggers read no others)."""
    ends: dict[bytes, dict[int, BufferedMessage]] = {}
    for raw_key, raw in entries.items():
        try:
            key, seq = subject_of(raw_key)
            entry = BufferedMessage.model_validate_json(raw)
        except (ValueError, ValidationError):
            _skip(raw_key, bad)
            continue
        held = ends.setdefault(key, {})
        held[seq] = entry
        if len(held) > 2:  # noqa: PLR2004 - the oldest and the newest
            del held[sorted(held)[1]]
    for key, held in ends.items():
        yield key, [held[seq] for seq in sorted(held)]


def _embedded_buffers(
    records: Mapping[bytes, bytes], bad: list[bytes]
) -> Iterator[tuple[bytes, list[BufferedMessage]]]:
    for key, raw in records.items():
        if _HAS_BUFFER not in raw:
            continue
        try:
            buffer = decode_record(raw).buffer
        except ValidationError:
            _skip(key, bad)
            continue
        if buffer:
            yield key, list(buffer)


def _skip(key: bytes, bad: list[bytes]) -> None:
    bad.append(key)
    logger.warning("undecodable buffer left out of the flush clock key=%r", key[:200])


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
