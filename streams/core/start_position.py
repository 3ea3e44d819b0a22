"""Where a new consumer group starts on the input topic (``PROFILE_STREAM_START_FROM``).

Only partitions the group has no committed offset for are placed here: a running deployment
resumes where it committed, whatever the setting says. For each such partition the worker reads
its retained range (and, for a timestamp, the first offset at or after it), and this module
picks the start offset and counts the messages the worker is about to extract from there.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

__all__ = ["LARGE_BACKLOG", "FirstStart", "RetainedRange", "StartFrom", "plan_first_start"]

#: A first start with this many retained messages to extract gets a hint in its log line: at
#: up to one model call per message, that is a bill worth a second look.
LARGE_BACKLOG = 10_000

_VARIABLE = "PROFILE_STREAM_START_FROM"


@dataclass(frozen=True)
class StartFrom:
    """``earliest`` (every retained message), ``latest`` (only what arrives after the worker
    starts) or a time (messages whose Kafka timestamp is at or after it)."""

    mode: Literal["earliest", "latest", "time"]
    at: datetime | None = None

    @classmethod
    def parse(cls, text: str, *, now: datetime | None = None) -> "StartFrom":
        """The setting's value; ValueError says what is accepted.

        A time must carry its offset (``Z`` or ``+02:00``) and must not lie in the future: a
        new group would then start at the end of the topic and take every message from now on,
        which is ``latest``, not what the time says.
        """
        value = text.strip()
        if value.lower() in ("earliest", "latest"):
            return cls(mode="earliest" if value.lower() == "earliest" else "latest")
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is neither earliest, latest nor an RFC 3339 time "
                "(e.g. 2026-01-31T00:00:00Z)"
            ) from None
        if at.tzinfo is None:
            raise ValueError(f"{value!r} has no UTC offset; add Z or +HH:MM")
        if at > (now or datetime.now(UTC)):
            raise ValueError(
                f"{value!r} is in the future; use latest to take only messages from now on"
            )
        return cls(mode="time", at=at)

    @property
    def at_ms(self) -> int | None:
        """The time in milliseconds since the epoch (Kafka's timestamps), or None."""
        return None if self.at is None else int(self.at.timestamp() * 1000)

    def __str__(self) -> str:
        return self.at.isoformat() if self.at is not None else self.mode


@dataclass(frozen=True)
class RetainedRange:
    """A partition without a committed offset: what it retains, as Kafka reports it."""

    #: The log start offset: the oldest message retention has kept.
    beginning: int
    #: The offset the next message will get.
    end: int
    #: The first offset whose timestamp is at or after the start time; None when no message
    #: is that recent (or no time was asked for).
    from_time: int | None = None


@dataclass(frozen=True)
class FirstStart:
    """Where each new partition starts, and what that means in messages."""

    offsets: Mapping[int, int]
    #: Retained messages from the start offsets to the end: what the worker is about to extract.
    to_extract: int
    #: Retained messages before the start offsets: skipped by the setting.
    skipped: int

    @property
    def hint(self) -> str:
        """A word about the setting when the backlog is large, else empty."""
        if self.to_extract < LARGE_BACKLOG:
            return ""
        return (
            f"; to start at the end instead (or at a time), set {_VARIABLE}=latest "
            "(or an RFC 3339 time) before the group's first start"
        )


def _start_offset(start: StartFrom, retained: RetainedRange) -> int:
    if start.mode == "earliest":
        return retained.beginning
    if start.mode == "time" and retained.from_time is not None:
        return max(retained.from_time, retained.beginning)
    return retained.end  # latest, or no message at or after the time


def plan_first_start(start: StartFrom, partitions: Mapping[int, RetainedRange]) -> FirstStart:
    """The start offset of each partition (by number) that has no committed offset."""
    offsets = {p: _start_offset(start, retained) for p, retained in partitions.items()}
    to_extract = sum(partitions[p].end - offset for p, offset in offsets.items())
    skipped = sum(offset - partitions[p].beginning for p, offset in offsets.items())
    return FirstStart(offsets=offsets, to_extract=to_extract, skipped=skipped)
