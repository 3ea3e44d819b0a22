"""The forget watermark: how far a subject's forgets reach, and whether an input was taken in
before them. Pure.

A forget is final (DESIGN invariant 6): nothing taken in before it may build the profile again,
however it comes back: a dead letter replayed, a late re-routed or forwarded copy, a redelivery
whose applied-bookkeeping is gone. ``sent_at`` cannot decide (it is the chat app's clock), so
the decision rests on what the system itself records:

- **Where a message was first taken in** (:class:`FirstSeen`): the input topic, partition and
  offset of its first record, and the earliest time the system has for it: that record's
  timestamp, or the worker's clock when it first handled the record if that is earlier. A
  plain input is its own first record. A re-routed or forwarded copy carries its original's in
  the header :data:`FIRST_SEEN_HEADER`, set by the worker that made the copy; a dead letter
  replayed by ``profile-stream dlq replay`` carries the letter's source position and its
  ``failed_at`` (or the first-seen header the letter's record already had).
- **Where the forgets sat** (:class:`schemas.ForgetMark`, kept in the record past the
  tombstone and the next profile): per partition a forget was read on, the last forget's
  offset there, and the latest forget's record timestamp.

A message first taken in on a partition that holds a forget is before it exactly when its
offset is lower: one partition is one order. A message first taken in on another partition
(a misplaced original, a forwarded copy on a kind's lane, a partition count changed since)
has no offset to compare: it counts as before the forget when its first-seen time is at most
the forget's record timestamp plus a margin for clock skew (``PROFILE_STREAM_MAX_FUTURE_SKEW_S``).
The margin goes to the forget: such a copy sent within the margin after a forget is dropped
too, never one sent before it kept (unless a clock is off by more than the margin).

Trust. The first-seen header is not sealed: it decides only about the record that carries it,
and can make it count as older (dropped, which its producer could do by not sending it) or
newer (which a producer gets anyway by sending the content again as a new message).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemas import ForgetMark, ProfileRecord

__all__ = [
    "FIRST_SEEN_HEADER",
    "FirstSeen",
    "before_forget",
    "first_seen_in",
    "mark_of",
    "moved_on",
    "with_first_seen",
]

#: Header of a copy or a replayed dead letter: ``topic:partition:offset:ms`` of its first record
#: (ASCII); see the module docstring.
FIRST_SEEN_HEADER = "profile-stream-first-seen"


@dataclass(frozen=True)
class FirstSeen:
    """Where a message was first taken in (``source`` is ``"topic:partition"``) and the
    earliest time (ms since the epoch) the system has for it."""

    source: str
    offset: int
    at_ms: int

    @classmethod
    def of(cls, topic: str, partition: int, offset: int, at_s: float) -> "FirstSeen":
        """The first record at ``topic``/``partition``/``offset``, taken in at ``at_s``."""
        return cls(f"{topic}:{partition}", offset, int(at_s * 1000))

    def header(self) -> tuple[str, bytes]:
        """This as the header a copy or a replayed letter carries."""
        return FIRST_SEEN_HEADER, f"{self.source}:{self.offset}:{self.at_ms}".encode("ascii")


def first_seen_in(headers: Any) -> FirstSeen | None:
    """The first-seen header of a record (a list of pairs or a mapping); None when absent,
    repeated or not ours."""
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    found = [value for name, value in pairs if name == FIRST_SEEN_HEADER]
    if len(found) != 1 or not isinstance(found[0], bytes):
        return None
    try:
        topic, partition, offset, at_ms = found[0].decode("ascii").rsplit(":", 3)
        return FirstSeen(f"{topic}:{int(partition)}", int(offset), int(at_ms))
    except (UnicodeDecodeError, ValueError):
        return None


def with_first_seen(headers: list[tuple[str, bytes]], seen: FirstSeen) -> list[tuple[str, bytes]]:
    """``headers`` saying where their message was first taken in: as they say already (the
    record was a copy, or replayed before), else ``seen``."""
    kept = first_seen_in(headers) or seen
    return [*(pair for pair in headers if pair[0] != FIRST_SEEN_HEADER), kept.header()]


def mark_of(record: ProfileRecord) -> ForgetMark | None:
    """The record's forget mark. A tombstone of a release before format 8 has none: its
    ``applied`` offsets (which stop at the forget's, while it is a tombstone) and
    ``forgotten_at`` stand in for one; without such offsets (a forget of a release that
    deleted the key) nothing does."""
    if record.forget_mark is not None or record.forgotten_at is None:
        return record.forget_mark
    offsets = {key: at for key, at in record.applied.items() if _is_source(key)}
    if not offsets:
        return None
    return ForgetMark(offsets=offsets, at_ms=int(record.forgotten_at.timestamp() * 1000))


def _is_source(key: str) -> bool:
    """Whether an ``applied`` key names an input partition (``topic:partition``), not a copy's
    original partition nor a command's signing time."""
    return not key.startswith("origin:") and key.rpartition(":")[2].isdigit()


def moved_on(mark: ForgetMark | None, source: str, offset: int, at_ms: int) -> ForgetMark:
    """``mark`` after one more forget, read at ``source``/``offset`` with record timestamp
    ``at_ms``: a later forget reaches further, never less far."""
    offsets = dict(mark.offsets) if mark is not None else {}
    offsets[source] = max(offset, offsets.get(source, -1))
    latest = max(at_ms, mark.at_ms) if mark is not None else at_ms
    return ForgetMark(offsets=offsets, at_ms=latest)


def before_forget(mark: ForgetMark | None, seen: FirstSeen, *, margin_ms: int) -> bool:
    """Whether the message ``seen`` was taken in before a forget ``mark`` records: by offset on
    the forget's partition, else by time within ``margin_ms`` (the module docstring)."""
    if mark is None:
        return False
    forget_offset = mark.offsets.get(seen.source)
    if forget_offset is not None:
        return seen.offset < forget_offset
    return seen.at_ms <= mark.at_ms + margin_ms
