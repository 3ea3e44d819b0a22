"""What apply needs to buffer messages and flush them: entries, chunks, dead-letter sources.

A flush sends the buffered messages to the model in chunks of one batch's bounds (a buffer
grows past them only when a batch arrives whole); a flush that gives up dead-letters each
buffered message, rebuilt as a record from what the buffer kept (the input was acknowledged
when the message was buffered).
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from schemas import BufferedMessage, ChatMessage
from streams.core.codecs import encode
from streams.core.records import source_key
from streams.pipeline.job import Job
from streams.pipeline.policy import DeadLetter

__all__ = ["BufferedSource", "chunks", "entry_of", "oversized"]


def entry_of(job: Job, message: ChatMessage, now: float) -> BufferedMessage:
    """The buffer entry for ``job``'s chat message, buffered at ``now`` (the worker's clock).

    ``received`` is the record's timestamp, set by its producer, but never later than ``now``:
    a producer's clock a year ahead must not put the idle and age triggers a year out. It is
    kept in the entry, so a replay of the buffer decides the same.
    """
    return BufferedMessage(
        message=message,
        source=source_key(*job.tp),
        offset=job.offset,
        received=min(job.work.msg.timestamp, now),
        origin=job.work.origin,
    )


#: Bytes a produce request adds around one record (batch and record headers, with room).
_WRITE_OVERHEAD = 1024


def oversized(entry: BufferedMessage, key: bytes, max_request_bytes: int) -> DeadLetter | None:
    """The dead letter for a message whose buffer entry would not fit one changelog write
    (``max_request_bytes``, Faust's ``producer_max_request_size``), else None."""
    size = len(encode(entry)) + len(key)
    if size <= max_request_bytes - _WRITE_OVERHEAD:
        return None
    reason = (
        f"buffered, the message with its metadata is {size} bytes: more than one changelog "
        f"write may carry ({max_request_bytes} bytes, Faust's producer_max_request_size, less "
        "the record's framing); send less metadata"
    )
    return DeadLetter("invalid_message", reason, user_id=entry.message.user_id)


def chunks(
    messages: Sequence[ChatMessage], max_messages: int, max_chars: int
) -> Iterator[list[ChatMessage]]:
    """``messages`` in order, cut where a model call's bounds would be passed (a message longer
    than ``max_chars`` alone is a chunk of its own)."""
    chunk: list[ChatMessage] = []
    chars = 0
    for message in messages:
        if chunk and (len(chunk) >= max_messages or chars + len(message.content) > max_chars):
            yield chunk
            chunk, chars = [], 0
        chunk.append(message)
        chars += len(message.content)
    if chunk:
        yield chunk


@dataclass
class BufferedSource:
    """A buffered message as a consumed record, for its dead letter: where it was read, its
    user's key, and the message (re-encoded: the original bytes were not kept)."""

    topic: str
    partition: int
    offset: int
    timestamp: float
    key: bytes | None
    value: bytes | None
    headers: Any = ()

    @classmethod
    def of(cls, entry: BufferedMessage, key: bytes) -> "BufferedSource":
        """The record ``entry`` was read from, keyed by its subject's ``key``."""
        topic, _, partition = entry.source.rpartition(":")
        return cls(
            topic=topic,
            partition=int(partition),
            offset=entry.offset,
            timestamp=entry.received,
            key=key,
            value=encode(entry.message),
        )
