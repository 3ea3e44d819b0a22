"""Where the buffer table keeps a subject's buffered messages, and reading them back. Pure.

An entry per buffered message at ``subject\\x1f<seq>``; a subject's buffer is the run from its
record's ``buffer_seq`` to the first missing key (docs/state.md). Reading takes any mapping of
bytes to bytes (the worker's Faust table, a dict in tests); writing is the pipeline's
(``streams.pipeline.buffer_store``), which routes and fences each write.
"""

from collections.abc import Iterator, Mapping

from schemas import BufferedMessage

__all__ = ["LEGACY_SCANNED", "SEPARATOR", "entries_of", "entry_key", "run_of", "subject_of"]

#: Between a subject's key and an entry's sequence number (a control character: no user id of
#: a chat app holds it, and the last one in a key is the separator anyway).
SEPARATOR = b"\x1f"

#: A key of its own in each partition of the buffer table: that partition's profile records
#: hold no buffer of the single-record release any more (docs/state.md), so the flush clock's
#: rebuild reads the buffer table alone.
LEGACY_SCANNED = SEPARATOR + b"single-record buffers read"


def entry_key(key: bytes, seq: int) -> bytes:
    """The buffer table's key of ``key``'s entry number ``seq``."""
    return key + SEPARATOR + str(seq).encode("ascii")


def subject_of(entry: bytes) -> tuple[bytes, int]:
    """The subject's key and the sequence number of a buffer table key."""
    key, _, seq = entry.rpartition(SEPARATOR)
    return key, int(seq)


def run_of(table: Mapping[bytes, bytes], key: bytes, start: int) -> Iterator[bytes]:
    """The stored entries of ``key``'s buffer from ``start`` to the first missing one."""
    seq = start
    while (raw := table.get(entry_key(key, seq))) is not None:
        yield raw
        seq += 1


def entries_of(table: Mapping[bytes, bytes], key: bytes, start: int) -> list[BufferedMessage]:
    """``key``'s buffer: its entries from ``start`` on, decoded."""
    return [BufferedMessage.model_validate_json(raw) for raw in run_of(table, key, start)]
