"""A profile's field revisions over HTTP: list them (``GET /profiles/{user_id}/history``) and
roll fields back (``POST /profiles/{user_id}/revert``).

The list is read where the profile lives (``ProfileReader``); a revert becomes a signed
``revert`` command on the input topic, applied in order with the user's messages like the other
operator commands (``streams.web.profiles.send_command``).
"""

from typing import Any, ClassVar

import faust
from faust.web import Request, Response, View

from schemas import FieldHistory, ProfileCommand, ProfileRecord
from streams.core.corrections import parse_revert
from streams.core.signing import CommandSigning
from streams.web.profiles import bad_subject, command_from_body, send_command
from streams.web.reader import ProfileReader
from streams.web.responses import error, json

__all__ = ["HistoryView", "RevertView", "history_body"]


class HistoryView(View):
    """``/profiles/{user_id}/history``: each field's revisions, oldest first (``?field=F``:
    one field's)."""

    reader: ClassVar[ProfileReader]  # the user kind's

    async def get(self, request: Request, user_id: str) -> Response:
        """The revisions as JSON (404 without a profile, 400 for a field the profile lacks)."""
        if (problem := bad_subject(self, user_id)) is not None:
            return problem
        field = request.query.get("field")
        schema = self.reader.kind.schema

        def render(record: ProfileRecord | None) -> Response:
            if record is None:
                return error(self, 404, "no profile for this user")
            if field is not None and field not in schema.fields and field not in record.history:
                known = sorted(schema.fields)
                return error(self, 400, f"no field {field!r}; the schema has {known}")
            return json(self, history_body(record, field))

        return await self.reader.answer(self, request, user_id, render)


def history_body(record: ProfileRecord, field: str | None = None) -> dict[str, Any]:
    """The JSON of ``record``'s revisions (``schemas.http.HistoryAnswer``): every field's, or
    ``field``'s alone.

    ``history_from`` is the version the history starts at (null: the record keeps none);
    ``truncated`` says the bound dropped a field's older revisions.
    """
    body: dict[str, Any] = {
        "user_id": record.user_id,
        "version": record.version,
        "history_from": record.history_from,
    }
    kept = record.history if field is None else {field: record.history.get(field, FieldHistory())}
    # ``truncated`` always in the answer: left out of the stored bytes when false only.
    fields = {
        name: h.model_dump(mode="json") | {"truncated": h.truncated} for name, h in kept.items()
    }
    return body | {"fields": fields}


class RevertView(View):
    """``/profiles/{user_id}/revert``: roll fields (or the whole profile) back to a version."""

    reader: ClassVar[ProfileReader]  # the user kind's: its schema checks the fields
    commands: ClassVar[faust.TopicT]  # the input topic, where commands go with the messages
    max_body: ClassVar[int]  # bytes of a body
    signing: ClassVar[CommandSigning]  # its first key signs each command

    async def post(self, request: Request, user_id: str) -> Response:
        """``{"version": N, "fields": [...], "lock": [...]}``: 202 once the command is on the
        topic; 400 for a body that names no version or unknown fields."""
        if (problem := bad_subject(self, user_id)) is not None:
            return problem
        command = await command_from_body(
            self,
            request,
            self.max_body,
            lambda body: parse_revert(body, user_id, self.reader.kind.schema),
        )
        if not isinstance(command, ProfileCommand):
            return command  # the refusal
        return await send_command(self, self.commands, self.signing, command)
