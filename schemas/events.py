"""What goes out: profile events (topic ``profile-updated``) and dead letters."""

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from ._base import Produced
from .patch import Op

__all__ = [
    "DeadLetter",
    "DeadLetterReason",
    "Evidence",
    "FieldChange",
    "ProfileEvent",
    "RecordHeader",
]


class Evidence(Produced):
    """The message a change came from and the words in it, and where its record sits.

    ``topic``, ``partition`` and ``offset`` place the input record the change came from (a
    chat message, or the operator command that made it), so a consumer can fetch exactly that
    record; they are left out (and absent from the bytes) where no record is the source (a
    schema migration) and in events written before they existed.
    """

    message_id: str
    quote: str = ""
    topic: str | None = Field(None, exclude_if=lambda v: v is None)
    partition: int | None = Field(None, ge=0, exclude_if=lambda v: v is None)
    offset: int | None = Field(None, ge=0, exclude_if=lambda v: v is None)


class FieldChange(Produced):
    """One field's change, with what it was and what it is now.

    ``op`` is the patch operation, ``migrate`` for a step of a schema migration, or ``revert``
    for an operator's rollback, which names the version whose value came back in
    ``restored_version`` (absent from the bytes otherwise).
    """

    field: str
    op: Op | Literal["migrate", "revert"]
    old: Any = None
    new: Any = None
    evidence: Evidence
    restored_version: int | None = Field(None, ge=1, exclude_if=lambda v: v is None)


class ProfileEvent(Produced):
    """A profile changed (``updated``) or was forgotten (``deleted``).

    ``event_id`` is ``"{user_id}:{version}"``; processing the same input again gives the same id
    and the same bytes, so subscribers may deduplicate on it. For a profile of another ``kind``
    (a team, the assistant), ``user_id`` holds its subject and ids are ``"{kind}/{subject}:N"``.
    """

    event_id: str
    type: Literal["updated", "deleted"]
    kind: str = "user"
    user_id: str
    version: int = Field(ge=1)
    profile: dict[str, Any] | None
    changes: list[FieldChange] = Field(default_factory=list)
    source_message_ids: list[str] = Field(default_factory=list)
    updated_at: datetime
    schema_id: str = Field(alias="schema")


DeadLetterReason = Literal[
    "not_utf8",
    "not_json",
    "invalid_message",
    "content_too_long",
    "key_mismatch",
    "extraction_failed",
    "invalid_command",
    "internal_error",
    "over_budget",
]


class RecordHeader(Produced):
    """One Kafka record header: its name, and its value's bytes in base64."""

    name: str
    value_b64: str


class DeadLetter(Produced):
    """An input that could not be applied, with everything needed to replay it after a fix.

    ``headers`` are the original record's headers, re-published with it. ``command`` is true
    for an operator command (letters written before ``headers`` existed get back the marking
    header from it).

    A letter that would be over the producer's request size is ``truncated``: ``value_b64``
    holds the first bytes of the value only (and ``headers`` may be left out), with the whole
    value's ``original_size`` and ``original_sha256``; such a letter cannot be replayed.
    """

    reason_code: DeadLetterReason
    reason: str
    source_topic: str
    source_partition: int
    source_offset: int
    key_b64: str | None
    value_b64: str
    user_id: str | None = None
    message_id: str | None = None
    failed_at: datetime
    attempts: int = 0
    command: bool = False
    headers: list[RecordHeader] = Field(default_factory=list)
    truncated: bool = False
    #: Size in bytes and sha256 (hex) of the whole original value; set on a truncated letter.
    original_size: int | None = Field(None, ge=0)
    original_sha256: str | None = Field(None, pattern="^[0-9a-f]{64}$")
