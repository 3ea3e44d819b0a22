"""How fresh a stored profile is, and whether it reflects a given message. Pure.

A message "is reflected" once its extraction has been applied, with or without a change. The
record knows this without remembering every message: a message's id joins
``recent_message_ids`` when it is buffered (the record's last ``RECENT_IDS_KEPT``), and leaves
``buffer`` when its flush is applied; so a message is reflected when its id is among the recent
ones and not in the buffer, or is the ``last_message`` the record names. A message
dead-lettered by a failed flush loses its id (so a re-publication is applied): it is not
reflected, and a wait for it ends at its timeout. A message older than the last
``RECENT_IDS_KEPT`` of its user is no longer known either: a wait for it also times out (the
profile has long reflected it; a plain read says so through ``last_message_at``).
"""

from enum import Enum

from schemas import Freshness, LastMessage, ProfileRecord
from streams.core.stored import format_of

__all__ = ["Waited", "freshness_of", "reflecting", "reflects"]


class Waited(Enum):
    """How a wait for freshness ended: the profile is fresh, the timeout passed first, too
    many reads wait on this worker already, or this worker no longer owns the user."""

    FRESH = "fresh"
    TIMED_OUT = "timed_out"
    BUSY = "busy"
    NOT_OWNER = "not_owner"


def freshness_of(record: ProfileRecord) -> Freshness:
    """The freshness a current answer of ``record`` carries."""
    last = record.last_message
    return Freshness(
        buffered_messages=len(record.buffer),
        last_message_id=last.message_id if last is not None else None,
        last_message_at=last.sent_at if last is not None else None,
    )


def reflects(record: ProfileRecord | None, message_id: str) -> bool:
    """Whether ``record``'s profile reflects the message ``message_id`` (see the module
    docstring); False for no record."""
    if record is None:
        return False
    last = record.last_message
    if last is not None and last.message_id == message_id:
        return True
    if message_id not in record.recent_message_ids:
        return False
    return all(entry.message.message_id != message_id for entry in record.buffer)


def reflecting(record: ProfileRecord, flushed: ProfileRecord) -> ProfileRecord:
    """``record`` (the result of extracting ``flushed``'s buffer) naming the newest message of
    that buffer, the last one buffered, as the newest it reflects."""
    if not flushed.buffer:
        return record
    newest = flushed.buffer[-1].message
    last = LastMessage(message_id=newest.message_id, sent_at=newest.sent_at)
    updated = record.model_copy(update={"last_message": last})
    return updated.model_copy(update={"format": format_of(updated)})
