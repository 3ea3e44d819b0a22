"""What an operator command does to a stored profile: forget, correct, migrate. Pure.

streams.pipeline.apply does the I/O (purging cached answers, storing, emitting); this module decides
the record to store, the event to emit, and whether the key is then deleted.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from schemas import FieldChange, ProfileCommand, ProfileEvent, ProfileRecord
from streams.core.merge import MergeResult, merge
from streams.core.profile_schema import ProfileSchema
from streams.core.records import deleted_event, new_record, next_version
from streams.errors import InvalidEvent

__all__ = ["Outcome", "apply_command"]


@dataclass(frozen=True)
class Outcome:
    """The record to store, the event to announce it, and whether the key goes afterwards."""

    record: ProfileRecord
    event: ProfileEvent | None
    delete: bool = False


def apply_command(
    command: ProfileCommand,
    record: ProfileRecord,
    schema: ProfileSchema,
    *,
    source: str,
    offset: int,
    exists: bool,
    migration: Sequence[FieldChange] = (),
) -> Outcome | None:
    """The outcome of ``command`` on ``record`` (None: nothing to do, the profile is absent).

    Raises:
        InvalidEvent: a correction names unknown fields or values the schema refuses.
    """
    if command.type != "correct" and not exists:
        return None  # forgetting or migrating never creates a profile
    if command.type == "forget":
        # Only the announcement survives until it is delivered: no profile data, no provenance.
        stub = new_record(record.user_id, record.schema_id, record.kind).model_copy(
            update={"version": record.version}
        )
        return Outcome(
            stub, deleted_event(record, command.command_id, command.requested_at), delete=True
        )
    result, locked = None, None
    if command.type == "correct":
        result = _correction(command, record, schema)
        locked = tuple(sorted((set(record.locked) | set(command.lock)) - set(command.unlock)))
    updated, event = next_version(
        record,
        result,
        offsets={source: offset},
        message_ids=[command.command_id],
        at=command.requested_at,
        locked=locked,
        migration=migration,
    )
    return Outcome(updated, event)


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
