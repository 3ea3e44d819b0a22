"""The stored form of one profile: the profile itself and the bookkeeping around it."""

from datetime import date, datetime
from typing import Any

from pydantic import AwareDatetime, Field

from ._base import Produced
from .events import ProfileEvent
from .messages import ChatMessage

__all__ = [
    "BUFFER_FORMAT",
    "BufferedMessage",
    "ModelUsage",
    "Provenance",
    "ProfileUsage",
    "ProfileRecord",
    "RECENT_IDS_KEPT",
    "RECORD_FORMAT",
    "SetAside",
    "TOMBSTONE_FORMAT",
    "USAGE_FORMAT",
]

#: How many applied message ids a record remembers, to drop producer-side duplicates.
RECENT_IDS_KEPT = 256

#: The newest stored-record format this release writes. A release that adds a field to the record
#: (or to what it embeds) raises it; readers ignore fields they do not know
#: (``streams.core.stored``). Format 2 adds ``forgotten_at`` (a forgotten user's tombstone). A
#: record says the lowest format that holds its fields: a record that is not a tombstone and has
#: no usage is format 1, byte for byte what the releases before this one write and read.
#: Format 3 adds ``usage`` (what the model cost for this profile); format 4 adds ``buffer``
#: (messages accepted and not yet extracted).
RECORD_FORMAT = 4

#: The format of a tombstone (a record with ``forgotten_at``).
TOMBSTONE_FORMAT = 2

#: The format of a record that counts its model usage.
USAGE_FORMAT = 3

#: The format of a record holding buffered messages.
BUFFER_FORMAT = 4


class Provenance(Produced):
    """Where a field's current value came from."""

    message_id: str
    at: AwareDatetime
    by: str = "extraction"


class ModelUsage(Produced):
    """Model calls and the tokens the model reported for them."""

    calls: int = Field(0, ge=0)
    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)


class ProfileUsage(Produced):
    """What extracting one profile has cost: in all, and on ``day`` (UTC, the day of the newest
    message of the last batch charged: the input's time, so a replay counts the same)."""

    total: ModelUsage = Field(default_factory=ModelUsage)
    day: date
    today: ModelUsage = Field(default_factory=ModelUsage)


class BufferedMessage(Produced):
    """A chat message accepted for its user (its offset is acknowledged) and not yet extracted.

    ``source`` and ``offset`` say where it was read (``topic:partition``); ``received`` is its
    record's timestamp in seconds, from which the idle and age triggers count.
    """

    message: ChatMessage
    source: str
    offset: int
    received: float


class SetAside(Produced):
    """A value a schema change made invalid, kept with the reason instead of being dropped."""

    value: Any
    reason: str
    schema_id: str


class ProfileRecord(Produced):
    """One user's profile as the table keeps it.

    ``applied`` maps ``"topic:partition"`` to the last input offset applied, so a redelivered
    event is recognised and skipped; ``recent_message_ids`` catches a message published twice.
    ``pending_event`` is an event written with the version it announces and cleared once it is
    delivered: a worker killed in between emits it when the user's next input arrives.

    A forgotten user keeps a tombstone: ``forgotten_at`` set, no profile data (profile,
    provenance, locks and set-aside values empty), but the version and what was applied, so a
    message from before the forget that is redelivered is skipped and versions keep counting.

    Internal: the table's format, not a public contract. ``format`` says which release's fields
    the record holds; format 1 is left out of the bytes, and so is an unset ``forgotten_at``, so
    records of this release other than tombstones are the bytes the release before it wrote and
    reads (DESIGN.md invariant 7).
    """

    format: int = Field(1, ge=1, exclude_if=lambda v: v == 1)
    user_id: str
    kind: str = "user"
    version: int = 0
    schema_id: str
    profile: dict[str, Any] = Field(default_factory=dict)
    provenance: dict[str, Provenance] = Field(default_factory=dict)
    locked: tuple[str, ...] = ()
    applied: dict[str, int] = Field(default_factory=dict)
    recent_message_ids: tuple[str, ...] = ()
    updated_at: datetime | None = None
    pending_event: ProfileEvent | None = None
    set_aside: dict[str, SetAside] = Field(default_factory=dict)
    #: When the user was forgotten (the forget command's ``requested_at``); None unless the
    #: record is a tombstone.
    forgotten_at: AwareDatetime | None = Field(None, exclude_if=lambda v: v is None)
    #: The model calls and tokens spent on this profile (format 3); None until the first call,
    #: and again after a forget.
    usage: ProfileUsage | None = Field(None, exclude_if=lambda v: v is None)
    #: Messages accepted and waiting for their flush (format 4), oldest first; their offsets
    #: and ids are already in ``applied`` and ``recent_message_ids``.
    buffer: tuple[BufferedMessage, ...] = Field((), exclude_if=lambda v: not v)
