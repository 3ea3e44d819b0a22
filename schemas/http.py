"""The bodies of the workers' HTTP views: what ``GET /profiles/...`` (now or as it was) and
``GET /profiles/{user_id}/history`` answer, what a ``PATCH`` or a revert sends, and the small
answers of commands, probes and errors.

The OpenAPI document the workers serve (``/openapi.json``) takes its schemas from these
models; the views' tests check that what they answer validates against them.
"""

from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from ._base import Consumed, Produced
from .patch import PatchOperation
from .record import ModelUsage, Provenance, Revision, SetAside

__all__ = [
    "CommandAccepted",
    "Correction",
    "ErrorAnswer",
    "FieldRevisions",
    "Freshness",
    "HistoryAnswer",
    "Liveness",
    "ProfileAnswer",
    "Readiness",
    "Revert",
    "UsageAnswer",
]


class UsageAnswer(Produced):
    """What extracting a profile has cost (`?include=usage`): in all, and on `day` (the UTC day
    the worker made the newest call, the day the daily budget is checked on), zeros and no day
    for a profile no model call was made for."""

    total: ModelUsage
    day: date | None
    today: ModelUsage


class Freshness(Produced):
    """How far a current profile answer is behind the user's messages."""

    buffered_messages: int = Field(
        ge=0,
        description="The user's messages accepted and not yet extracted: they wait in the "
        "buffer for a flush trigger (PROFILE_STREAM_FLUSH_IDLE_S of quiet, by default 60 s), "
        "or for `POST /profiles/{user_id}/refresh`.",
    )
    last_message_id: str | None = Field(
        description="The newest message the profile reflects (extracted, whether or not it "
        "changed anything); null before the first extraction."
    )
    last_message_at: datetime | None = Field(
        description="When that message was sent; null with it."
    )


def _absent(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class ProfileAnswer(Produced):
    """One stored profile, as `GET /profiles/{user_id}` (or `/profiles/{kind}/{subject}`)
    answers it."""

    user_id: str = Field(description="The user (or, for another kind, the subject).")
    version: int = Field(description="+1 per applied change; the event `user_id:version`.")
    updated_at: datetime | None = Field(description="When the last change was applied.")
    schema_id: str = Field(alias="schema", description="The profile schema, `name/vN`.")
    profile: dict[str, Any] = Field(
        description="The profile, valid against the kind's profile schema."
    )
    locked: list[str] = Field(
        description="Fields an operator locked against extraction (now: an as-of read shows "
        "today's locks, which are not versioned)."
    )
    # Absent rather than null when they do not apply: null is kept out of the published
    # schema (the type and the default), so a generated client types them as optional.
    kind: str | SkipJsonSchema[None] = Field(
        None,
        description="The profile kind; absent for a user's profile.",
        json_schema_extra=_absent,
    )
    set_aside: dict[str, SetAside] | SkipJsonSchema[None] = Field(
        None,
        description="Values a schema change refused, by field; absent when none.",
        json_schema_extra=_absent,
    )
    provenance: dict[str, Provenance] | SkipJsonSchema[None] = Field(
        None,
        description="Where each field's value came from; only with `?include=provenance`.",
        json_schema_extra=_absent,
    )
    usage: UsageAnswer | SkipJsonSchema[None] = Field(
        None,
        description="Model calls and tokens; only with `?include=usage`.",
        json_schema_extra=_absent,
    )
    current_version: int | SkipJsonSchema[None] = Field(
        None,
        description="Only in an as-of read (`?version` or `?as_of`): the version the profile is "
        "at now; `version`, `updated_at` and `profile` are then the past version's.",
        json_schema_extra=_absent,
    )
    freshness: Freshness | SkipJsonSchema[None] = Field(
        None,
        description="In a current read: how far the profile is behind the user's messages "
        "(absent in an as-of read).",
        json_schema_extra=_absent,
    )
    as_of: datetime | SkipJsonSchema[None] = Field(
        None,
        description="Only with `?as_of`: the time asked for.",
        json_schema_extra=_absent,
    )


class FieldRevisions(Produced):
    """One field's kept revisions, oldest first."""

    revisions: list[Revision] = Field(
        description="Each value the field took: the version and time it took effect, the "
        "operation, and the evidence (message or command id, quote, and the input record's "
        "topic, partition and offset)."
    )
    truncated: bool = Field(
        description="PROFILE_STREAM_REVISIONS_PER_FIELD dropped older revisions of this field."
    )


class HistoryAnswer(Produced):
    """What `GET /profiles/{user_id}/history` answers: each field's revisions."""

    user_id: str
    version: int = Field(description="The version the profile is at now.")
    history_from: int | None = Field(
        description="The version the history starts at (earlier ones cannot be read); null "
        "when the profile keeps no revisions."
    )
    fields: dict[str, FieldRevisions] = Field(
        description="By field: every field with revisions, or only the one `?field` names."
    )


class Revert(Consumed):
    """The body of `POST /profiles/{user_id}/revert`. Other keys are ignored."""

    version: int = Field(ge=1, description="The version whose values come back.")
    fields: list[str] = Field(
        default_factory=list, description="The fields to revert; none: every field."
    )
    lock: list[str] = Field(
        default_factory=list, description="Fields to lock against extraction afterwards."
    )


class Correction(Consumed):
    """The body of `PATCH /profiles/{user_id}`: an operator's correction. Other keys are
    ignored."""

    operations: list[PatchOperation] = Field(
        default_factory=list, description="Changes, applied as extraction's are (`by` operator)."
    )
    lock: list[str] = Field(
        default_factory=list, description="Fields extraction must no longer change."
    )
    unlock: list[str] = Field(default_factory=list, description="Fields to release.")


class CommandAccepted(Produced):
    """A `PATCH` or `DELETE` is in Kafka; it applies in order with the user's messages."""

    command_id: str
    status: Literal["accepted"]


class ErrorAnswer(Produced):
    """Every error status's body: what went wrong, and what to do when there is something."""

    error: str


class Liveness(Produced):
    """`/healthz`: the process serves HTTP."""

    status: Literal["ok"]


class Readiness(Produced):
    """`/readyz`: partitions assigned, no rebalance, tables recovered."""

    status: Literal["ready"]
