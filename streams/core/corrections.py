"""An operator's correction, from the body of ``PATCH /profiles/{user_id}`` (or of
``POST /profiles/{user_id}/revert``) to a command. Pure.

The body is ``{"operations": [...], "lock": [...], "unlock": [...]}``, or for a revert
``{"version": N, "fields": [...], "lock": [...]}``; other keys are ignored. The checks
``commands.apply_command`` makes when the command arrives are made here as well, as far as they
need no stored profile, so the operator hears about a bad correction in the HTTP answer, not in
the dead letters.
"""

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from schemas import PatchOperation, ProfileCommand
from streams.core.codecs import summarize_errors
from streams.core.merge import merge
from streams.core.profile_schema import ProfileSchema

__all__ = ["REVERT_SHAPE", "SHAPE", "parse_correction", "parse_revert"]

#: What a correction body looks like, quoted when the body is not a JSON object.
SHAPE = '{"operations": [...], "lock": [...], "unlock": [...]}'
#: What a revert body looks like.
REVERT_SHAPE = '{"version": N, "fields": [...], "lock": [...]}'


def parse_correction(
    body: bytes,
    user_id: str,
    schema: ProfileSchema,
    *,
    command_id: str | None = None,
    at: datetime | None = None,
) -> ProfileCommand:
    """The ``correct`` command an operator's PATCH body asks for.

    Args:
        body: the raw request body.
        user_id: the subject from the URL.
        schema: the profile schema the fields and values must fit.
        command_id: the new command's id; a random UUID unless given (tests give one).
        at: when the command was requested; now unless given.

    Raises:
        ValueError: the body is not a JSON object, does not validate, names fields the schema
            does not have, or holds operations the schema refuses. The message says which, and
            is meant for the operator (the view answers 400 with it).
    """
    command = _command(
        _json_object(body),
        user_id,
        command_id=command_id or str(uuid.uuid4()),
        at=at or datetime.now(UTC),
    )
    _check_fields(command, schema)
    _check_operations(command, schema)
    return command


def parse_revert(
    body: bytes,
    user_id: str,
    schema: ProfileSchema,
    *,
    command_id: str | None = None,
    at: datetime | None = None,
) -> ProfileCommand:
    """The ``revert`` command an operator's body asks for: ``fields`` (every field when none)
    back to their values at ``version``, and ``lock`` locked.

    Whether the profile's revisions still hold that version is known only where it is stored:
    a revert they cannot satisfy is dead-lettered ``invalid_command`` with the reason.

    Raises:
        ValueError: the body is not a JSON object, has no version from 1, or names fields the
            schema does not have. The message is meant for the operator.
    """
    data = _json_object(body, REVERT_SHAPE)
    try:
        command = ProfileCommand(
            command_id=command_id or str(uuid.uuid4()),
            type="revert",
            user_id=user_id,
            version=data.get("version"),
            fields=tuple(data.get("fields", ())),
            lock=tuple(data.get("lock", ())),
            requested_at=at or datetime.now(UTC),
        )
    except (ValidationError, TypeError) as exc:
        detail = summarize_errors(exc) if isinstance(exc, ValidationError) else str(exc)
        raise ValueError(f"invalid revert: {detail}") from None
    unknown = sorted({*command.fields, *command.lock} - set(schema.fields))
    if unknown:
        raise ValueError(f"unknown fields {unknown}; the schema has {sorted(schema.fields)}")
    return command


def _json_object(body: bytes, shape: str = SHAPE) -> Mapping[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ValueError("body is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError(f"body must be {shape}")
    return data


def _command(
    data: Mapping[str, Any], user_id: str, *, command_id: str, at: datetime
) -> ProfileCommand:
    try:
        # Iterating a non-list (a number, a string) is refused with a TypeError or, item by
        # item, by pydantic; both become the same 400.
        operations = tuple(PatchOperation.model_validate(o) for o in data.get("operations", []))
        return ProfileCommand(
            command_id=command_id,
            type="correct",
            user_id=user_id,
            operations=operations,
            lock=tuple(data.get("lock", ())),
            unlock=tuple(data.get("unlock", ())),
            requested_at=at,
        )
    except (ValidationError, TypeError) as exc:
        detail = summarize_errors(exc) if isinstance(exc, ValidationError) else str(exc)
        raise ValueError(f"invalid correction: {detail}") from None


def _check_fields(command: ProfileCommand, schema: ProfileSchema) -> None:
    unknown = sorted({*command.lock, *command.unlock} - set(schema.fields))
    if unknown:
        raise ValueError(f"unknown fields {unknown}; the schema has {sorted(schema.fields)}")


def _check_operations(command: ProfileCommand, schema: ProfileSchema) -> None:
    # A trial merge on an empty profile catches what the schema refuses whatever is stored:
    # unknown fields, values of the wrong type, ops the field does not take.
    trial = merge(
        schema.empty(),
        {},
        (),
        command.operations,
        schema,
        by="operator",
        evidence={command.command_id: command.requested_at},
    )
    if trial.dropped:
        raise ValueError("; ".join(d.reason for d in trial.dropped))
