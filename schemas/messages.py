"""What comes in: chat messages (topic ``chat-messages``) and operator commands."""

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, StringConstraints, field_validator, model_validator

from ._base import Consumed, Produced
from .patch import PatchOperation

__all__ = ["ChatMessage", "ProfileCommand", "Role", "UserId"]

Role = Literal["user", "assistant", "system"]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
_Id = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class ChatMessage(Consumed):
    """One message of a conversation, keyed by ``user_id`` on the input topic.

    ``content`` is never cut: over the worker's limit it is refused (dead-lettered).
    ``end_of_conversation`` asks for the user's buffered messages, this one included, to be
    extracted now rather than when the conversation goes idle.
    """

    message_id: _Id
    user_id: UserId
    conversation_id: Annotated[str, StringConstraints(max_length=256)] = ""
    role: Role
    content: Annotated[str, StringConstraints(min_length=1)]
    sent_at: AwareDatetime
    metadata: dict[str, Any] = Field(default_factory=dict)
    end_of_conversation: bool = False

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("content is blank")
        if "\x00" in value:
            raise ValueError("content contains a NUL character")
        return value

    @field_validator("user_id", "message_id")
    @classmethod
    def _printable_id(cls, value: str) -> str:
        if not value.isprintable() or value != value.strip():
            raise ValueError("must be printable text without leading or trailing spaces")
        return value


class ProfileCommand(Produced):
    """An operator's change, sent through the stream so it is ordered with the user's messages.

    ``forget`` removes the profile; ``correct`` applies operations that outrank extraction and
    can lock fields against it (``lock``) or release them (``unlock``); ``migrate`` brings a
    stored profile to the current schema now rather than at its next message; ``flush``
    extracts the user's buffered messages now; ``revert`` gives ``fields`` (all of them when
    empty) back the values they had at ``version``, from the revisions the record keeps, and
    may lock them (``lock``). For a profile of another kind, ``user_id`` holds its subject.

    ``version`` and ``fields`` are left out of the bytes when unset, so the other commands are
    the bytes the release before this one reads.
    """

    command_id: _Id
    type: Literal["forget", "correct", "migrate", "flush", "revert"]
    user_id: UserId
    operations: tuple[PatchOperation, ...] = ()
    lock: tuple[str, ...] = ()
    unlock: tuple[str, ...] = ()
    requested_at: AwareDatetime
    version: int | None = Field(None, ge=1, exclude_if=lambda v: v is None)
    fields: tuple[str, ...] = Field((), exclude_if=lambda v: not v)

    @model_validator(mode="after")
    def _revert_names_a_version(self) -> "ProfileCommand":
        if (self.type == "revert") != (self.version is not None):
            raise ValueError("a revert names the version to restore, and only a revert does")
        if self.fields and self.type != "revert":
            raise ValueError("only a revert names fields")
        return self
