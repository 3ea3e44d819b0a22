"""What each view method does, in the words and shapes of the OpenAPI document: a summary,
the body it takes, the query parameters it reads, and its answers with their contracts.

Keyed by the view class and the method's name, as the route table mounts them (a view bound
to its dependencies is a subclass, and finds its entry through its bases); a view
method missing here makes the document refuse to build (``streams.web.openapi``), so a new
method cannot ship undocumented. Statuses that every guarded route shares (401, 403) come
from the route's scopes, not from here.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from faust.web import View
from pydantic import BaseModel

from schemas.http import (
    CommandAccepted,
    Correction,
    ErrorAnswer,
    HistoryAnswer,
    Liveness,
    ProfileAnswer,
    Readiness,
    Revert,
)
from streams.web.freshness import REFRESH_TIMEOUT, WAIT_TIMEOUT
from streams.web.history import HistoryView, RevertView
from streams.web.probes import Health, Metrics, OpenAPIDocument, Ready
from streams.web.profiles import FlushView, KindView, ProfileView, PromptView, RefreshView

__all__ = ["OPERATIONS", "PATH_PARAMETERS", "Answer", "Operation", "QueryParameter"]


@dataclass(frozen=True)
class Answer:
    """One status of an operation: why it comes, and its body (a contract, or a media type
    with a plain-text body, or nothing)."""

    description: str
    body: type[BaseModel] | str | None = ErrorAnswer


@dataclass(frozen=True)
class QueryParameter:
    """A query parameter that takes a comma-separated list of ``values``, or (``schema``) a
    value of that JSON Schema (an array: comma-separated)."""

    name: str
    description: str
    values: tuple[str, ...] = ()
    schema: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Operation:
    operation_id: str
    summary: str
    answers: Mapping[int, Answer]
    description: str = ""
    body: type[BaseModel] | None = None
    query: tuple[QueryParameter, ...] = ()
    tags: tuple[str, ...] = field(default=("profiles",))
    #: The 200 answer's ``profile`` follows the user kind's profile model.
    typed_profile: bool = False


#: How each path parameter is described; every one is percent-quoted by the client.
PATH_PARAMETERS: Mapping[str, str] = {
    "user_id": "The user id, percent-encoded (`acme%2Falice` for `acme/alice`); at most 256 "
    "characters.",
    "kind": "A profile kind the deployment declares (PROFILE_STREAM_KINDS_FILE).",
    "subject": "The kind's subject, percent-encoded (a team id, `assistant`...); at most 256 "
    "characters.",
}

_BAD_ID = Answer("The id is longer than 256 characters.")
_BUSY = Answer(
    "A rebalance or a table recovery is in progress, or the owner changed while the request "
    "was forwarded; retry after `Retry-After` seconds."
)
_OWNER_SLOW = Answer("The worker that owns the profile did not answer in time.")
_READ_ANSWERS: Mapping[int, Answer] = {400: _BAD_ID, 503: _BUSY, 504: _OWNER_SLOW}
_ACCEPTED = Answer(
    "The command is in Kafka; it applies in order with the user's messages.", CommandAccepted
)
_NO_KEYS = Answer("Commands are off on this worker: PROFILE_STREAM_COMMAND_KEYS is not set.")
_INCLUDE = QueryParameter(
    "include",
    "Comma-separated: `provenance` adds where each field's value came from, `usage` what "
    "extracting the profile has cost.",
    ("provenance", "usage"),
)

_PAST = (
    QueryParameter(
        "version",
        "The profile as it was at this version, from the revisions the worker keeps.",
        schema={"type": "integer", "minimum": 1},
    ),
    QueryParameter(
        "as_of",
        "The profile as it was at this time (RFC 3339 with an offset): at the highest version "
        "whose time (its input's) is at or before it.",
        schema={"type": "string", "format": "date-time"},
    ),
    QueryParameter(
        "fields",
        "With `version` or `as_of`: only these fields (only they need to be kept).",
        schema={"type": "array", "items": {"type": "string"}},
    ),
)
_WAIT_FOR = (
    QueryParameter(
        "wait_for",
        "A message id: answer once the profile reflects that message (its extraction is "
        "applied, with or without a change). Does not flush: a buffered message waits for its "
        "trigger, or for `POST /profiles/{user_id}/refresh`. Not with `version` or `as_of`.",
        schema={"type": "string"},
    ),
    QueryParameter(
        "timeout_s",
        f"With `wait_for`: seconds to wait (default {WAIT_TIMEOUT.default_s:g}); then 504.",
        schema={"type": "number", "minimum": 0, "maximum": WAIT_TIMEOUT.most_s},
    ),
)
_NOT_FRESH = Answer(
    "The worker that owns the profile did not answer in time; or, with `wait_for`, the "
    "message is not reflected within `timeout_s` (the message says what to do: refresh, or a "
    "longer timeout)."
)
_WAITERS_FULL = Answer(
    "A rebalance or a table recovery is in progress, the owner changed while the request was "
    "forwarded, or too many reads wait on the worker (PROFILE_STREAM_MAX_WAITING_READS); retry "
    "after `Retry-After` seconds."
)

_PAST_ANSWERS: Mapping[int, Answer] = {
    400: Answer(
        "The id is longer than 256 characters, or `version`, `as_of` or `fields` is not valid."
    ),
    410: Answer(
        "An as-of read the kept revisions no longer hold: names the field and why "
        "(PROFILE_STREAM_REVISIONS_PER_FIELD dropped them, or the history starts later)."
    ),
}

OPERATIONS: Mapping[tuple[type[View], str], Operation] = {
    (ProfileView, "get"): Operation(
        "getProfile",
        "Read a user's profile, now or as it was",
        {
            200: Answer("The profile.", ProfileAnswer),
            404: Answer(
                "No profile for this user (never seen, or forgotten); or no such version, or "
                "none yet at that time."
            ),
            **_READ_ANSWERS,
            **_PAST_ANSWERS,
            503: _WAITERS_FULL,
            504: _NOT_FRESH,
        },
        description="Any worker answers: one that does not own the user's partition forwards "
        "the request to the owner, once. A current read carries `freshness`: the messages "
        "still buffered and the newest message the profile reflects.",
        query=(_INCLUDE, *_PAST, *_WAIT_FOR),
        typed_profile=True,
    ),
    (RefreshView, "post"): Operation(
        "refreshProfile",
        "Extract a user's buffered messages now and read the profile",
        {
            200: Answer("The profile once the flush is applied.", ProfileAnswer),
            400: Answer("The id is longer than 256 characters, or `timeout_s` is not valid."),
            404: Answer("No profile for this user (never seen, or forgotten)."),
            503: _WAITERS_FULL,
            504: Answer(
                "The flush was not applied within `timeout_s` (the user's partition is "
                "behind, or the model is slow); retry with a longer timeout."
            ),
        },
        description="Read-your-writes with a read token: every message of the user published "
        "before the call is extracted (one extraction, at most one model call; none when "
        "nothing is buffered), then the profile is answered as `GET` answers it. Costs what "
        "the idle trigger (PROFILE_STREAM_FLUSH_IDLE_S) would have cost a little later, unless "
        "more messages follow: those then go in a call of their own.",
        query=(
            QueryParameter(
                "timeout_s",
                f"Seconds to wait (default {REFRESH_TIMEOUT.default_s:g}); then 504.",
                schema={"type": "number", "minimum": 0, "maximum": REFRESH_TIMEOUT.most_s},
            ),
            _INCLUDE,
        ),
        typed_profile=True,
    ),
    (HistoryView, "get"): Operation(
        "getProfileHistory",
        "Each field's revisions of a user's profile",
        {
            200: Answer("The revisions, oldest first.", HistoryAnswer),
            400: Answer("The id is longer than 256 characters, or `field` names no field."),
            404: Answer("No profile for this user (never seen, or forgotten)."),
            503: _BUSY,
            504: _OWNER_SLOW,
        },
        query=(QueryParameter("field", "Only this field's revisions.", schema={"type": "string"}),),
    ),
    (RevertView, "post"): Operation(
        "revertProfile",
        "Roll a user's fields back to their values at a version",
        {
            202: _ACCEPTED,
            400: Answer("No version from 1, or fields the schema does not have."),
            413: Answer("The body is over PROFILE_STREAM_MAX_REQUEST_BYTES."),
            503: _NO_KEYS,
        },
        description="Becomes a signed `revert` command on the input topic, applied in order "
        "with the user's messages: the event lists each changed field with op `revert` and "
        "`restored_version`. One the kept revisions cannot satisfy is dead-lettered "
        "`invalid_command`; read `?version=N&fields=...` first.",
        body=Revert,
    ),
    (ProfileView, "patch"): Operation(
        "correctProfile",
        "Correct a user's profile, lock or unlock fields",
        {
            202: _ACCEPTED,
            400: Answer("The correction is not valid for the profile schema; says why."),
            413: Answer("The body is over PROFILE_STREAM_MAX_REQUEST_BYTES."),
            503: _NO_KEYS,
        },
        description="Becomes a signed `correct` command on the input topic. Locked fields are "
        "never changed by extraction.",
        body=Correction,
    ),
    (ProfileView, "delete"): Operation(
        "forgetProfile",
        "Forget a user",
        {202: _ACCEPTED, 400: _BAD_ID, 503: _NO_KEYS},
        description="Removes the profile data and emits a `deleted` event, in order with the "
        "user's messages.",
    ),
    (FlushView, "post"): Operation(
        "flushProfile",
        "Extract a user's buffered messages now",
        {202: _ACCEPTED, 400: _BAD_ID, 503: _NO_KEYS},
        description="Becomes a signed `flush` command on the input topic: the messages the "
        "user's buffer holds when it is applied go to the model at once, instead of when the "
        "conversation goes idle (PROFILE_STREAM_FLUSH_IDLE_S). Nothing buffered: nothing "
        "happens.",
    ),
    (PromptView, "get"): Operation(
        "getPrompt",
        "A user's profile as a `<User Profile>` block for a system prompt",
        {
            200: Answer("The block.", "text/plain"),
            404: Answer("No profile for this user."),
            **_READ_ANSWERS,
        },
    ),
    (KindView, "get"): Operation(
        "getKindProfile",
        "Read a profile of another kind (a team's, the assistant's...)",
        {
            200: Answer("The profile.", ProfileAnswer),
            404: Answer("No such kind on this worker, or no profile for the subject."),
            **_READ_ANSWERS,
            **_PAST_ANSWERS,
        },
        query=(_INCLUDE, *_PAST),
    ),
    (Health, "get"): Operation(
        "getHealth", "Liveness", {200: Answer("Serving.", Liveness)}, tags=("operations",)
    ),
    (Ready, "get"): Operation(
        "getReady",
        "Readiness: partitions assigned, no rebalance, tables recovered",
        {
            200: Answer("Ready.", Readiness),
            503: Answer("Joining the group or recovering tables; retry after `Retry-After`."),
        },
        tags=("operations",),
    ),
    (Metrics, "get"): Operation(
        "getMetrics",
        "Prometheus counters and gauges (no label names a user)",
        {200: Answer("Prometheus text format.", "text/plain")},
        tags=("operations",),
    ),
    (OpenAPIDocument, "get"): Operation(
        "getOpenAPI",
        "This document",
        {200: Answer("The OpenAPI 3.1 document of this worker's views.", "application/json")},
        tags=("operations",),
    ),
}
