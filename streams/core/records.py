"""The bookkeeping around a stored profile: what was applied, versions, and the events it yields.

Pure: no I/O, no Faust. A replay of the same input gives the same records and the same events,
byte for byte, because every timestamp comes from the input, never from the clock.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from schemas import (
    RECENT_IDS_KEPT,
    BufferedMessage,
    FieldChange,
    ModelUsage,
    ProfileEvent,
    ProfileRecord,
)
from streams.core.forget_mark import mark_of, moved_on
from streams.core.history import Trail
from streams.core.merge import MergeResult
from streams.core.stored import format_of
from streams.core.usage import charge

__all__ = [
    "Forget",
    "applied_before",
    "buffered",
    "dead_lettered",
    "unbuffered",
    "deleted_event",
    "forgotten",
    "marked_again",
    "new_record",
    "next_version",
    "rerouted_key",
    "restored",
    "settled",
    "source_key",
    "stored_form",
]


def source_key(topic: str, partition: int) -> str:
    """How a record names the input partition an offset belongs to."""
    return f"{topic}:{partition}"


def rerouted_key(topic: str, partition: int) -> str:
    """How a record names the partition a re-routed or forwarded message first came from.

    Apart from :func:`source_key`, so offsets of the original partition never mix with offsets
    of the partition the copy was read from (they are applied in different orders)."""
    return f"origin:{topic}:{partition}"


def new_record(user_id: str, schema_id: str, kind: str = "user") -> ProfileRecord:
    """An empty record for a subject seen for the first time (or again after being forgotten)."""
    return ProfileRecord(user_id=user_id, schema_id=schema_id, kind=kind)


def _event(
    record: ProfileRecord,
    type_: Literal["updated", "deleted"],
    *,
    profile: dict[str, Any] | None,
    changes: list[FieldChange],
    sources: list[str],
    at: datetime,
) -> ProfileEvent:
    """The event for the version after ``record``'s; its id is ``subject:version``."""
    version = record.version + 1
    subject = record.user_id if record.kind == "user" else f"{record.kind}/{record.user_id}"
    return ProfileEvent(
        event_id=f"{subject}:{version}",
        kind=record.kind,
        type=type_,
        user_id=record.user_id,
        version=version,
        profile=profile,
        changes=changes,
        source_message_ids=sources,
        updated_at=at,
        schema_id=record.schema_id,
    )


def applied_before(
    record: ProfileRecord,
    source: str,
    offset: int,
    message_id: str,
    origin: tuple[str, int] | None = None,
) -> bool:
    """Whether this input was already applied: a redelivered offset, a re-published message,
    or a second copy of a re-routed (or forwarded) one: ``origin`` is the key and offset of the
    input the copy was made from (:func:`rerouted_key`)."""
    for key, at in ((source, offset), origin) if origin is not None else ((source, offset),):
        last = record.applied.get(key)
        if last is not None and at <= last:
            return True
    return message_id in record.recent_message_ids


def _remember(
    record: ProfileRecord, offsets: Mapping[str, int], message_ids: Iterable[str]
) -> dict[str, object]:
    applied = dict(record.applied)
    for source, offset in offsets.items():
        applied[source] = max(offset, applied.get(source, -1))
    recent = (*record.recent_message_ids, *message_ids)[-RECENT_IDS_KEPT:]
    return {"applied": applied, "recent_message_ids": recent}


def next_version(
    record: ProfileRecord,
    result: MergeResult | None,
    *,
    offsets: Mapping[str, int],
    message_ids: list[str],
    at: datetime,
    locked: tuple[str, ...] | None = None,
    migration: Sequence[FieldChange] = (),
    spent: ModelUsage | None = None,
    sources: Sequence[str] | None = None,
    trail: Trail | None = None,
    charged_at: datetime | None = None,
) -> tuple[ProfileRecord, ProfileEvent | None]:
    """The record after a batch, and the event to emit (None when the profile did not change).

    Offsets and message ids are remembered even when nothing changed, so a replay of the batch
    is skipped without asking the model again; so is what the batch cost (``spent``), charged
    to the record's usage on the day of ``charged_at`` (else ``at``). ``migration`` lists the
    changes a schema migration made to ``record`` before the batch; they lead the event's
    changes. ``sources``
    are the messages the event names (default ``message_ids``; a flush names the buffered
    messages, remembered when they were buffered). With a ``trail``, each change's evidence
    names its input record's topic, partition and offset, and a new version adds its changes to
    the fields' revisions (``streams.core.history``).
    """
    update = _remember(record, offsets, message_ids)
    if spent is not None:
        update["usage"] = charge(record.usage, spent, charged_at or at)
    lock_changed = locked is not None and locked != record.locked
    if locked is not None:
        update["locked"] = locked
    changes = [*migration, *(result.changes if result is not None else [])]
    if trail is not None:
        changes = trail.located(changes)
    if not (changes or lock_changed):
        return _formatted(record.model_copy(update=update)), None
    version = record.version + 1
    profile = result.profile if result is not None else record.profile
    update |= {
        "version": version,
        "profile": profile,
        "provenance": result.provenance if result is not None else record.provenance,
        "updated_at": at,
        # A forgotten user's next version is a new profile: the tombstone is one no more,
        # but how far the forget reaches is kept (a tombstone of an older format says it).
        "forgotten_at": None,
        "forget_mark": mark_of(record),
    }
    if trail is not None:
        update |= trail.recorded(record, changes, version=version, at=at)
    named = list(sources) if sources is not None else message_ids
    event = _event(record, "updated", profile=profile, changes=changes, sources=named, at=at)
    return _formatted(record.model_copy(update=update)), event


def buffered(record: ProfileRecord, entries: Sequence[BufferedMessage]) -> ProfileRecord:
    """``record`` with ``entries`` appended to its buffer; their offsets (with those of the
    inputs re-routed copies came from) and ids are remembered now, so a redelivered message is
    skipped whether or not it was extracted yet."""
    update = _remember(record, _offsets(entries), [e.message.message_id for e in entries])
    update["buffer"] = (*record.buffer, *entries)
    return _formatted(record.model_copy(update=update))


def restored(record: ProfileRecord, entries: Sequence[BufferedMessage]) -> ProfileRecord:
    """``record`` as loaded with its buffer read from the buffer table: ``entries`` join its
    buffer (after those a record of formats 4 to 6 holds itself, not repeating them), and what
    they stand for is remembered as when they were buffered: the stored record is not rewritten
    per buffered message, its entries carry their share of the bookkeeping. Ids the record
    already remembers are not repeated."""
    embedded = {e.message.message_id for e in record.buffer}  # a record not converted yet
    entries = [e for e in entries if e.message.message_id not in embedded]
    known = set(record.recent_message_ids)
    ids = [e.message.message_id for e in entries if e.message.message_id not in known]
    update = _remember(record, _offsets(entries), ids)
    update["buffer"] = (*record.buffer, *entries)
    return _formatted(record.model_copy(update=update))


def _offsets(entries: Iterable[BufferedMessage]) -> dict[str, int]:
    """The highest input offset per ``applied`` key that ``entries`` stand for."""
    offsets: dict[str, int] = {}
    for entry in entries:
        places = [(entry.source, entry.offset)]
        if entry.origin is not None:
            places.append(entry.origin)
        for key, offset in places:
            offsets[key] = max(offset, offsets.get(key, -1))
    return offsets


def stored_form(record: ProfileRecord) -> ProfileRecord:
    """``record`` as the profile table stores it: without its buffer (the buffer table holds
    it, from ``buffer_seq`` on)."""
    if not record.buffer:
        return record
    return _formatted(record.model_copy(update={"buffer": ()}))


def dead_lettered(record: ProfileRecord, message_ids: Iterable[str]) -> ProfileRecord:
    """``record`` once the messages ``message_ids`` went to the dead-letter topic: their ids are
    forgotten, so the same messages re-published from there are applied (their offsets stay
    remembered: those inputs are done)."""
    gone = set(message_ids)
    kept = tuple(i for i in record.recent_message_ids if i not in gone)
    return record.model_copy(update={"recent_message_ids": kept})


def unbuffered(record: ProfileRecord, next_seq: int | None = None) -> ProfileRecord:
    """``record`` with its buffer emptied (flushed, or dropped by a forget); ``next_seq``: where
    the buffer table's next entry goes (past the entries emptied)."""
    update: dict[str, object] = {"buffer": ()}
    if next_seq is not None:
        update["buffer_seq"] = next_seq
    return _formatted(record.model_copy(update=update))


def _formatted(record: ProfileRecord) -> ProfileRecord:
    """``record`` claiming the lowest format that holds its fields."""
    return record.model_copy(update={"format": format_of(record)})


def deleted_event(record: ProfileRecord, command_id: str, at: datetime) -> ProfileEvent:
    """The event that tells subscribers a profile was forgotten; it carries no profile data."""
    return _event(record, "deleted", profile=None, changes=[], sources=[command_id], at=at)


@dataclass(frozen=True)
class Forget:
    """A forget as a worker applies it: where its record was read (``source``, ``offset``),
    its id, when it was requested (``at``) and its record timestamp (``received_ms``)."""

    source: str
    offset: int
    command_id: str
    at: datetime
    received_ms: int

    def kept(self, record: ProfileRecord) -> dict[str, object]:
        """What ``record`` keeps through this forget: what was applied (the forget included)
        and its forget mark, moved on to this forget."""
        update = _remember(record, {self.source: self.offset}, [self.command_id])
        mark = moved_on(mark_of(record), self.source, self.offset, self.received_ms)
        return update | {"forget_mark": mark}


def forgotten(record: ProfileRecord, forget: Forget) -> tuple[ProfileRecord, ProfileEvent]:
    """The tombstone a forget leaves, and its ``deleted`` event.

    The tombstone holds no profile data (no profile, provenance, locks, set-aside values) but
    keeps the version of the ``deleted`` event and what was applied (the forget included), so a
    message from before the forget that comes again is skipped, and the user's next version is
    the one after the ``deleted`` event: an event id is never reused. Its forget mark moves on
    to this forget (``streams.core.forget_mark``).
    """
    event = deleted_event(record, forget.command_id, forget.at)
    update = forget.kept(record) | {
        "version": event.version,
        "updated_at": forget.at,
        "forgotten_at": forget.at,
        "buffer_seq": record.buffer_seq,
    }
    empty = new_record(record.user_id, record.schema_id, record.kind)
    return _formatted(empty.model_copy(update=update)), event


def marked_again(record: ProfileRecord, forget: Forget) -> tuple[ProfileRecord, None]:
    """A forget of a subject with no profile (absent, or a tombstone already): no event, but
    the forget is remembered as applied and the mark moves on, so what was taken in before
    this forget (a late copy of a message sent before it) never applies. An absent subject
    gets a tombstone at version 0, which reads answer as unknown."""
    update = forget.kept(record) | {"forgotten_at": record.forgotten_at or forget.at}
    return _formatted(record.model_copy(update=update)), None


def settled(record: ProfileRecord) -> ProfileRecord:
    """``record`` once its pending event is delivered.

    A pending ``deleted`` event always settles as a tombstone at the event's version: the
    release before this one stored the version before it, without ``forgotten_at``, and deleted
    the key afterwards.
    """
    event = record.pending_event
    update: dict[str, object] = {"pending_event": None}
    if event is not None and event.type == "deleted":
        update |= {
            "version": event.version,
            "forgotten_at": record.forgotten_at or event.updated_at,
            "profile": {},
            "provenance": {},
            "locked": (),
            "set_aside": {},
            "usage": None,
            "buffer": (),
            "history": {},
            "history_from": None,
            "last_message": None,
        }
    return _formatted(record.model_copy(update=update))
