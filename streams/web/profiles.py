"""The profile views: read a profile of any kind (now, or as it was: ``streams.web.past``),
render a user's for a prompt, forget or correct a user's, refresh a user's (read-your-writes:
``streams.web.freshness``).

Reads go through a ``ProfileReader`` (here or at the owner). DELETE and PATCH become commands
on the input topic, keyed by the user, so they are ordered with the user's messages, and signed
with the first of ``PROFILE_STREAM_COMMAND_KEYS`` (``streams.core.signing``); without a key
they answer 503 rather than send a command every worker would refuse.
Tokens are checked before any of these runs (``streams.web.auth.bearer_auth``).

Faust builds a view as ``cls(app, web)``, so a view cannot take its dependencies in
``__init__``; ``streams.web.views`` binds them as class attributes on a subclass.
"""

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

import faust
from faust.web import Request, Response, View

from schemas import ModelUsage, ProfileCommand, ProfileRecord
from schemas.http import CommandAccepted
from streams.core.codecs import encode
from streams.core.corrections import parse_correction
from streams.core.freshness import freshness_of
from streams.core.kinds import USER
from streams.core.signing import KEYS_SETTING, CommandSigning, command_headers
from streams.extract.prompt import render_profile
from streams.web.freshness import (
    REFRESH_TIMEOUT,
    WAIT_TIMEOUT,
    Before,
    FreshReads,
    after_refresh,
    after_wait,
    timeout_of,
)
from streams.web.past import past_answer, wants_past
from streams.web.reader import ProfileReader
from streams.web.responses import error, json

__all__ = [
    "MAX_SUBJECT",
    "FlushView",
    "KindView",
    "ProfileView",
    "PromptView",
    "RefreshView",
    "bad_subject",
    "command_from_body",
    "profile_body",
    "send_command",
]

logger = logging.getLogger(__name__)

#: Longer user ids and subjects are refused with 400 before anything is looked up.
MAX_SUBJECT = 256

#: The usage shown for a profile no model call was made for yet.
_NO_USAGE = {"total": ModelUsage().model_dump(), "day": None, "today": ModelUsage().model_dump()}


class ProfileView(View):
    """``/profiles/{user_id}``: read (GET), forget (DELETE) or correct (PATCH) a user's profile."""

    reader: ClassVar[ProfileReader]  # the user kind's
    commands: ClassVar[faust.TopicT]  # the input topic, where commands go with the messages
    max_body: ClassVar[int]  # bytes of a PATCH body
    signing: ClassVar[CommandSigning]  # its first key signs each command
    fresh: ClassVar[FreshReads]  # the owner's waits for freshness

    async def get(self, request: Request, user_id: str) -> Response:
        """The user's profile as JSON (404 if there is none), now or as it was; with
        ``?wait_for=<message_id>``, once it reflects that message (504 after ``timeout_s``)."""
        if (problem := bad_subject(self, user_id)) is not None:
            return problem
        message_id = request.query.get("wait_for")
        if message_id is None:
            return await _read(self, request, self.reader, user_id)
        if wants_past(request):
            return error(self, 400, "wait_for reads the profile now: no version or as_of")
        try:
            timeout_s = timeout_of(request, WAIT_TIMEOUT)
        except ValueError as exc:
            return error(self, 400, str(exc))
        wait = after_wait(self, self.fresh, user_id, message_id, timeout_s)
        return await _read(self, request, self.reader, user_id, wait, timeout_s)

    async def delete(self, request: Request, user_id: str) -> Response:
        """Forget the user: 202 once the command is on the topic."""
        if (problem := bad_subject(self, user_id)) is not None:
            return problem
        forget = ProfileCommand(
            command_id=str(uuid.uuid4()),
            type="forget",
            user_id=user_id,
            requested_at=datetime.now(UTC),
        )
        return await self._submit(forget)

    async def patch(self, request: Request, user_id: str) -> Response:
        """Correct the user's profile (``streams.core.corrections``): 202, or 400/413."""
        if (problem := bad_subject(self, user_id)) is not None:
            return problem
        command = await command_from_body(
            self,
            request,
            self.max_body,
            lambda body: parse_correction(body, user_id, self.reader.kind.schema),
        )
        if not isinstance(command, ProfileCommand):
            return command  # the refusal
        return await self._submit(command)

    async def _submit(self, command: ProfileCommand) -> Response:
        return await send_command(self, self.commands, self.signing, command)


class RefreshView(View):
    """``/profiles/{user_id}/refresh``: extract the user's buffered messages now and answer
    with the profile once that is applied (POST, a read token)."""

    reader: ClassVar[ProfileReader]  # the user kind's
    fresh: ClassVar[FreshReads]  # the owner's waits for freshness

    async def post(self, request: Request, user_id: str) -> Response:
        """The profile after a flush of every message published before the call (at most one
        extraction; none when nothing is buffered); 504 after ``timeout_s``."""
        if (problem := bad_subject(self, user_id)) is not None:
            return problem
        try:
            timeout_s = timeout_of(request, REFRESH_TIMEOUT)
        except ValueError as exc:
            return error(self, 400, str(exc))
        refresh = after_refresh(self, self.fresh, user_id, timeout_s)
        return await _read(self, request, self.reader, user_id, refresh, timeout_s)


class FlushView(View):
    """``/profiles/{user_id}/flush``: extract the user's buffered messages now (POST)."""

    commands: ClassVar[faust.TopicT]  # the input topic, where commands go with the messages
    signing: ClassVar[CommandSigning]  # its first key signs each command

    async def post(self, request: Request, user_id: str) -> Response:
        """A ``flush`` command on the user's partition: 202 once it is in Kafka."""
        if (problem := bad_subject(self, user_id)) is not None:
            return problem
        flush = ProfileCommand(
            command_id=str(uuid.uuid4()),
            type="flush",
            user_id=user_id,
            requested_at=datetime.now(UTC),
        )
        return await send_command(self, self.commands, self.signing, flush)


async def send_command(
    view: View,
    commands: faust.TopicT,
    signing: CommandSigning,
    command: ProfileCommand,
) -> Response:
    """Sign ``command`` and send it to ``commands``: 202 once the broker has it, 503 without a
    command key."""
    if not signing.keys:
        return error(view, 503, f"commands are off on this worker: {KEYS_SETTING} is not set")
    key, value = command.user_id.encode(), encode(command)
    headers = command_headers(key, value, signing, time.time())
    sent = await commands.send(key=key, value=value, headers=headers)
    await sent  # accepted means on the topic: the broker has acknowledged it
    logger.info("command accepted type=%s user_id=%s", command.type, command.user_id)
    accepted = CommandAccepted(command_id=command.command_id, status="accepted")
    return json(view, accepted.model_dump(), 202)


class PromptView(View):
    """``/profiles/{user_id}/prompt``: the user's profile as a block for a system prompt."""

    reader: ClassVar[ProfileReader]  # the user kind's

    async def get(self, request: Request, user_id: str) -> Response:
        """The profile as ``text/plain`` (404 if there is none)."""
        if (problem := bad_subject(self, user_id)) is not None:
            return problem
        schema = self.reader.kind.schema

        def render(record: ProfileRecord | None) -> Response:
            if record is None:
                return error(self, 404, "no profile for this user")
            return self.text(render_profile(record.profile, schema), content_type="text/plain")

        return await self.reader.answer(self, request, user_id, render)


class KindView(View):
    """``/profiles/{kind}/{subject}``: the profile of ``subject`` in one of the worker's kinds."""

    readers: ClassVar[dict[str, ProfileReader]]  # by kind name, the user kind included

    async def get(self, request: Request, kind: str, subject: str) -> Response:
        """The profile as JSON (404 if the kind or the profile does not exist)."""
        if (problem := bad_subject(self, subject)) is not None:
            return problem
        if kind not in self.readers:
            known = sorted(self.readers)
            return error(self, 404, f"no profile kind {kind!r}; this worker has {known}")
        return await _read(self, request, self.readers[kind], subject)


async def _read(
    view: View,
    request: Request,
    reader: ProfileReader,
    subject: str,
    before: Before | None = None,
    wait_s: float = 0.0,
) -> Response:
    """The JSON of ``subject``'s profile in ``reader``'s kind, from wherever it lives (after
    ``before``, a wait for freshness on the owner that may take ``wait_s``)."""

    def render(record: ProfileRecord | None) -> Response:
        if record is None:
            return error(view, 404, f"no {reader.kind.name} profile for this subject")
        if wants_past(request):
            return past_answer(view, request, record, reader.kind.schema)
        return json(view, profile_body(record, request))

    return await reader.answer(view, request, subject, render, before=before, wait_s=wait_s)


async def command_from_body(
    view: View, request: Request, max_body: int, parse: Callable[[bytes], ProfileCommand]
) -> ProfileCommand | Response:
    """The command ``parse`` makes of the request's body, or the answer refusing it: 413 over
    ``max_body`` bytes, 400 with the parser's reason."""
    body = await request.read()
    if len(body) > max_body:
        return error(view, 413, f"body over {max_body} bytes")
    try:
        return parse(body)
    except ValueError as exc:
        return error(view, 400, str(exc))


def bad_subject(view: View, subject: str) -> Response | None:
    """400 for a subject longer than :data:`MAX_SUBJECT`, else None."""
    if len(subject) > MAX_SUBJECT:
        return error(view, 400, f"user id longer than {MAX_SUBJECT} characters")
    return None


def profile_body(record: ProfileRecord, request: Request) -> dict[str, Any]:
    """The JSON of a stored profile now, with its freshness; provenance and usage only when
    asked (``?include=provenance,usage``)."""
    body: dict[str, Any] = {
        "user_id": record.user_id,
        "version": record.version,
        "updated_at": record.updated_at,
        "schema": record.schema_id,
        "profile": record.profile,
        "locked": list(record.locked),
        "freshness": freshness_of(record).model_dump(mode="json"),
    }
    if record.kind != USER:
        body["kind"] = record.kind
    if record.set_aside:
        body["set_aside"] = {k: v.model_dump(mode="json") for k, v in record.set_aside.items()}
    include = request.query.get("include", "").split(",")
    if "provenance" in include:
        body["provenance"] = {k: v.model_dump(mode="json") for k, v in record.provenance.items()}
    if "usage" in include:
        # Zeros rather than null for a profile that never reached the model: a client sums.
        body["usage"] = (
            record.usage.model_dump(mode="json") if record.usage is not None else _NO_USAGE
        )
    return body
