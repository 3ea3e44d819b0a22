"""The HTTP views every worker serves. Reads are routed to the worker that owns the user's
partition; DELETE and PATCH become commands on the stream, ordered with the user's messages.
"""

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
from faust.types import TableT
from faust.web import Request, Response, View
from pydantic import ValidationError

from schemas import PatchOperation, ProfileCommand, ProfileRecord
from streams import metrics
from streams.core.codecs import COMMAND_HEADER, decode_record, encode, summarize_errors
from streams.core.kinds import USER, Kind
from streams.core.merge import merge
from streams.core.migration import migrate
from streams.core.profile_schema import ProfileSchema
from streams.extract.prompt import render_profile
from streams.faust_glue import tables_recovered
from streams.settings import Settings
from streams.web.auth import Scope, authorize
from streams.web.routing import owner_of, proxy

__all__ = ["register_views"]

logger = logging.getLogger(__name__)
_RETRY_AFTER = {"Retry-After": "1"}
_MAX_USER_ID = 256


def _json(
    view: View, body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return view.bytes(
        orjson.dumps(body),
        content_type="application/json",
        status=status,
        headers=dict(headers or {}),
    )


def _error(
    view: View, status: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    return _json(view, {"error": message}, status, headers)


def register_views(
    app: faust.App,
    kinds: Mapping[str, tuple[Kind, TableT[bytes, bytes]]],
    commands: faust.TopicT,
    settings: Settings,
) -> None:
    """Mount ``/profiles/...``, ``/healthz``, ``/readyz`` and ``/metrics`` on ``app``."""
    user_kind, table = kinds[USER]
    schema = user_kind.schema

    def denied(view: View, request: Request, need: Scope) -> Response | None:
        status = authorize(
            request.headers.get("Authorization"),
            need,
            read_tokens=settings.read_tokens,
            admin_tokens=settings.admin_tokens,
        )
        if status is None:
            return None
        message = "missing or unknown bearer token" if status == 401 else "needs an admin token"
        return _error(view, status, message, {"WWW-Authenticate": "Bearer"})

    async def routed(
        view: View,
        request: Request,
        user_id: str,
        local: Callable[[], Awaitable[Response]],
        where: TableT[bytes, bytes] = table,
    ) -> Response:
        if app.rebalancing or not tables_recovered(app):
            return _error(view, 503, "rebalancing; try again", _RETRY_AFTER)
        owner = owner_of(app, where.name, user_id.encode(), settings.partitions)
        if owner is None:
            return _error(view, 503, "partition owner unknown; try again", _RETRY_AFTER)
        if owner.rstrip("/") == str(app.conf.canonical_url).rstrip("/"):
            return await local()
        return await proxy(app, view, request, owner)

    def bad_user(view: View, user_id: str) -> Response | None:
        if len(user_id) > _MAX_USER_ID:
            return _error(view, 400, f"user id longer than {_MAX_USER_ID} characters")
        return None

    async def send_command(view: View, command: ProfileCommand) -> Response:
        sent = await commands.send(
            key=command.user_id.encode(), value=encode(command), headers=[COMMAND_HEADER]
        )
        await sent
        logger.info("command accepted type=%s user_id=%s", command.type, command.user_id)
        return _json(view, {"command_id": command.command_id, "status": "accepted"}, 202)

    async def read(view: View, request: Request, kind: str, subject: str) -> Response:
        if (problem := denied(view, request, "read") or bad_user(view, subject)) is not None:
            return problem
        if kind not in kinds:
            return _error(view, 404, f"no profile kind {kind!r}; this worker has {sorted(kinds)}")
        spec, where = kinds[kind]

        async def local() -> Response:
            record = _stored(where, subject, spec.schema)
            if record is None:
                return _error(view, 404, f"no {kind} profile for this subject")
            return _json(view, _body(record, request))

        return await routed(view, request, subject, local, where)

    class ProfileView(View):
        async def get(self, request: Request, user_id: str) -> Response:
            return await read(self, request, USER, user_id)

        async def delete(self, request: Request, user_id: str) -> Response:
            if (problem := denied(self, request, "admin") or bad_user(self, user_id)) is not None:
                return problem
            return await send_command(
                self,
                ProfileCommand(
                    command_id=str(uuid.uuid4()),
                    type="forget",
                    user_id=user_id,
                    requested_at=datetime.now(UTC),
                ),
            )

        async def patch(self, request: Request, user_id: str) -> Response:
            if (problem := denied(self, request, "admin") or bad_user(self, user_id)) is not None:
                return problem
            body = await request.read()
            if len(body) > settings.max_request_bytes:
                return _error(self, 413, f"body over {settings.max_request_bytes} bytes")
            try:
                command = _correction(body, user_id, schema)
            except ValueError as exc:
                return _error(self, 400, str(exc))
            return await send_command(self, command)

    class PromptView(View):
        async def get(self, request: Request, user_id: str) -> Response:
            if (problem := denied(self, request, "read") or bad_user(self, user_id)) is not None:
                return problem

            async def local() -> Response:
                record = _stored(table, user_id, schema)
                if record is None:
                    return _error(self, 404, "no profile for this user")
                text = render_profile(record.profile, schema)
                return self.text(text, content_type="text/plain")

            return await routed(self, request, user_id, local)

    class Health(View):
        async def get(self, request: Request) -> Response:
            return _json(self, {"status": "ok"})

    class Ready(View):
        async def get(self, request: Request) -> Response:
            assigned = bool(app.consumer.assignment()) if app.consumer else False
            ready = assigned and not app.rebalancing and tables_recovered(app)
            if not ready:
                return _error(
                    self, 503, "not ready: joining the group or recovering tables", _RETRY_AFTER
                )
            return _json(self, {"status": "ready"})

    class KindView(View):
        async def get(self, request: Request, kind: str, subject: str) -> Response:
            return await read(self, request, kind, subject)

    app.page("/profiles/{user_id}")(ProfileView)
    # Before the kind route, so a user's prompt is never taken for a kind named by a user id.
    app.page("/profiles/{user_id}/prompt")(PromptView)
    app.page("/profiles/{kind}/{subject}")(KindView)

    class Metrics(View):
        async def get(self, request: Request) -> Response:
            # Counters only: no label names a user, so scrapers need no token.
            return self.bytes(metrics.render(), content_type="text/plain")

    app.page("/healthz")(Health)
    app.page("/metrics")(Metrics)
    app.page("/readyz")(Ready)


def _body(record: ProfileRecord, request: Request) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user_id": record.user_id,
        "version": record.version,
        "updated_at": record.updated_at,
        "schema": record.schema_id,
        "profile": record.profile,
        "locked": list(record.locked),
    }
    if record.kind != USER:
        body["kind"] = record.kind
    if record.set_aside:
        body["set_aside"] = {k: v.model_dump(mode="json") for k, v in record.set_aside.items()}
    if "provenance" in request.query.get("include", "").split(","):
        body["provenance"] = {k: v.model_dump(mode="json") for k, v in record.provenance.items()}
    return body


def _stored(
    table: TableT[bytes, bytes], user_id: str, schema: ProfileSchema
) -> ProfileRecord | None:
    """The user's record as the current schema sees it; None if absent or being forgotten."""
    raw = table.get(user_id.encode())
    if raw is None:
        return None
    record = decode_record(raw)
    pending = record.pending_event
    if pending is not None and pending.type == "deleted":
        return None
    return migrate(record, schema)[0]


def _correction(body: bytes, user_id: str, schema: ProfileSchema) -> ProfileCommand:
    """An operator's PATCH body as a command; raises ValueError saying what is wrong."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ValueError("body is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError('body must be {"operations": [...], "lock": [...], "unlock": [...]}')
    try:
        ops = tuple(PatchOperation.model_validate(o) for o in data.get("operations", []))
        command = ProfileCommand(
            command_id=str(uuid.uuid4()),
            type="correct",
            user_id=user_id,
            operations=ops,
            lock=tuple(data.get("lock", ())),
            unlock=tuple(data.get("unlock", ())),
            requested_at=datetime.now(UTC),
        )
    except (ValidationError, TypeError) as exc:
        detail = summarize_errors(exc) if isinstance(exc, ValidationError) else str(exc)
        raise ValueError(f"invalid correction: {detail}") from None
    unknown = sorted({*command.lock, *command.unlock} - set(schema.fields))
    if unknown:
        raise ValueError(f"unknown fields {unknown}; the schema has {sorted(schema.fields)}")
    trial = merge(
        schema.empty(),
        {},
        (),
        ops,
        schema,
        by="operator",
        evidence={command.command_id: command.requested_at},
    )
    if trial.dropped:
        raise ValueError("; ".join(d.reason for d in trial.dropped))
    return command
