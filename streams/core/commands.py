"""What an operator command does to a stored profile: forget, correct, migrate, revert. Pure.

streams.pipeline.apply does the I/O (purging cached answers, storing, emitting); this module decides
the record to store, the event to emit, and whether the subject's cached answers are purged.
A forget leaves a tombstone (:func:`streams.core.records.forgotten`), never an absent key.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace

from schemas import FieldChange, ProfileCommand, ProfileEvent, ProfileRecord
from streams.core.history import Trail
from streams.core.merge import MergeResult, merge
from streams.core.past import reverted
from streams.core.profile_schema import ProfileSchema
from streams.core.records import Forget, applied_before, forgotten, marked_again, next_version
from streams.errors import InvalidEvent

__all__ = ["SIGNED_KEY", "Outcome", "apply_command"]

#: The entry of a record's ``applied`` that holds when the last command applied to the subject
#: was signed (ms since the epoch): a command signed at or before it is a replay, or late.
SIGNED_KEY = "commands:signed_ms"


@dataclass(frozen=True)
class Outcome:
    """The record to store, the event to announce it, and whether the subject is forgotten
    (its cached answers purged before the record is stored)."""

    record: ProfileRecord
    event: ProfileEvent | None
    forgets: bool = False


def apply_command(
    command: ProfileCommand,
    record: ProfileRecord,
    schema: ProfileSchema,
    *,
    source: str,
    offset: int,
    exists: bool,
    migration: Sequence[FieldChange] = (),
    trail: Trail | None = None,
    signed_ms: int | None = None,
    received_ms: int | None = None,
) -> Outcome | None:
    """The outcome of ``command`` on ``record`` (None: nothing to do, the profile is absent).

    ``exists``: the table holds a record (or a buffer) for the subject. A tombstone counts as
    absent, unless it holds a buffer and the command is a forget (:func:`_live`). ``trail``: the
    revisions to keep and where the command's record sits (``streams.core.history``).
    ``signed_ms``: when the command was signed; the record keeps the latest (:data:`SIGNED_KEY`).
    ``received_ms``: the command record's timestamp, where a forget's mark puts it
    (``streams.core.forget_mark``; default: ``requested_at``). A forget of a subject without a
    profile announces nothing but still moves the mark on (:func:`marked_again`).

    Raises:
        InvalidEvent: a correction names unknown fields or values the schema refuses; a revert
            names a version or values the profile's history does not hold; the command was
            signed at or before the last command applied to the subject (a replay).
    """
    if applied_before(record, source, offset, command.command_id):
        return None  # redelivered: a forget replayed after a new profile began must not end it
    _refuse_replay(command, record, signed_ms)
    live = exists and _live(command, record)
    if command.type not in ("correct", "forget") and not live:
        return None  # migrating or reverting never creates a profile
    record = _stamped(record, signed_ms)
    if command.type == "forget":
        return _forget(command, record, live, source, offset, received_ms)
    result, locked = None, None
    if command.type in ("correct", "revert"):
        if command.type == "correct":
            result = _correction(command, record, schema)
        else:
            result = reverted(command, record, schema)
        locked = tuple(sorted((set(record.locked) | set(command.lock)) - set(command.unlock)))
    if trail is not None:
        trail = replace(trail, operator=command.type == "correct")
    updated, event = next_version(
        record,
        result,
        offsets={source: offset},
        message_ids=[command.command_id],
        at=command.requested_at,
        locked=locked,
        migration=migration,
        trail=trail,
    )
    return Outcome(updated, event)


def _forget(
    command: ProfileCommand,
    record: ProfileRecord,
    live: bool,
    source: str,
    offset: int,
    received_ms: int | None,
) -> Outcome:
    """A forget of a profile (``live``) leaves a tombstone and announces it; of a subject
    without one, it only moves the forget mark on: nothing to delete, nothing to announce, but
    what came before it stays out."""
    if received_ms is None:
        received_ms = int(command.requested_at.timestamp() * 1000)
    forget = Forget(source, offset, command.command_id, command.requested_at, received_ms)
    kept, deleted = (forgotten if live else marked_again)(record, forget)
    # A tombstone holds no profile data, no provenance: only the version, what was applied
    # and the mark.
    return Outcome(kept, deleted, forgets=live)


def _live(command: ProfileCommand, record: ProfileRecord) -> bool:
    """Whether ``command`` finds a profile to act on: not a tombstone, except that a tombstone
    holding a buffer (forgotten, then chatted again) is forgotten again: its messages were sent
    before this forget and must never become a profile."""
    return record.forgotten_at is None or (command.type == "forget" and bool(record.buffer))


def _stamped(record: ProfileRecord, signed_ms: int | None) -> ProfileRecord:
    """``record`` remembering when the command applied to it was signed; ``applied`` is kept
    through the tombstone and the next version."""
    if signed_ms is None:
        return record
    return record.model_copy(update={"applied": {**record.applied, SIGNED_KEY: signed_ms}})


def _refuse_replay(command: ProfileCommand, record: ProfileRecord, signed_ms: int | None) -> None:
    if signed_ms is not None and signed_ms <= record.applied.get(SIGNED_KEY, -1):
        # Its id may have left the recent ids, so only its signing time tells a replay.
        raise InvalidEvent(
            "invalid_command",
            "the command was signed at or before the last command applied to this subject: a "
            "copy produced again, or its signer's clock is behind; send it again",
            user_id=command.user_id,
        )


def _correction(
    command: ProfileCommand, record: ProfileRecord, schema: ProfileSchema
) -> MergeResult:
    ops = [
        op.model_copy(update={"message_id": op.message_id or command.command_id})
        for op in command.operations
    ]
    result = merge(
        record.profile,
        record.provenance,
        record.locked,
        ops,
        schema,
        evidence={command.command_id: command.requested_at},
        by="operator",
    )
    unknown = [f for f in (*command.lock, *command.unlock) if f not in schema.fields]
    problems = [d.reason for d in result.dropped]
    if unknown:
        problems.append(f"cannot lock unknown fields {unknown}")
    if problems:
        raise InvalidEvent("invalid_command", "; ".join(problems), user_id=command.user_id)
    return result
