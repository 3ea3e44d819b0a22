"""The stored form of one profile: the profile itself and the bookkeeping around it."""

from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, Field

from ._base import Produced
from .events import Evidence, ProfileEvent
from .messages import ChatMessage

__all__ = [
    "BUFFER_FORMAT",
    "BUFFER_STORE_FORMAT",
    "BufferedMessage",
    "FORGET_MARK_FORMAT",
    "FieldHistory",
    "ForgetMark",
    "LAST_MESSAGE_FORMAT",
    "LastMessage",
    "ModelUsage",
    "Provenance",
    "ProfileUsage",
    "ProfileRecord",
    "RECENT_IDS_KEPT",
    "RECORD_FORMAT",
    "REVISIONS_FORMAT",
    "Revision",
    "RevisionOp",
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
#: (messages accepted and not yet extracted); format 5 adds ``history`` and ``history_from``
#: (each field's revisions); format 6 adds ``last_message`` (the newest message extracted, for
#: an answer's freshness); format 7 adds ``buffer_seq``: the buffer left the record for a table
#: of its own (docs/state.md), and the record says where it starts; format 8 adds
#: ``forget_mark`` (how far the subject's forgets reach, kept past the tombstone). A record
#: claims the highest format among the features it holds (``streams.core.stored.format_of``).
RECORD_FORMAT = 8

#: The format of a tombstone (a record with ``forgotten_at``).
TOMBSTONE_FORMAT = 2

#: The format of a record that counts its model usage.
USAGE_FORMAT = 3

#: The format of a record holding buffered messages.
BUFFER_FORMAT = 4

#: The format of a record that keeps field revisions (``history``).
REVISIONS_FORMAT = 5

#: The format of a record that names the newest message extracted (``last_message``).
LAST_MESSAGE_FORMAT = 6

#: The format of a record whose buffer is in the buffer table (``buffer_seq``).
BUFFER_STORE_FORMAT = 7

#: The format of a record that keeps a forget watermark (``forget_mark``).
FORGET_MARK_FORMAT = 8

#: What made a revision: an extraction's patch operation, an operator's correction, a
#: rollback, a schema migration, or ``baseline``: the value a field held when its history began
#: (a profile stored before revisions were kept), with the field's provenance as evidence.
RevisionOp = Literal["set", "add", "remove", "unset", "correct", "revert", "migrate", "baseline"]


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
    record's timestamp in seconds (never later than the worker's clock when it was buffered),
    from which the idle and age triggers count. ``origin``: for a re-routed or forwarded copy,
    the ``applied`` key and offset of the input it was copied from (so a buffered entry alone
    says which inputs it stands for; ``streams.core.records.restored``).
    """

    message: ChatMessage
    source: str
    offset: int
    received: float
    origin: tuple[str, int] | None = Field(None, exclude_if=lambda v: v is None)


class LastMessage(Produced):
    """The newest message a profile reflects: extracted (flushed), whether or not it changed
    anything. ``sent_at`` is the message's own time."""

    message_id: str
    sent_at: AwareDatetime


class SetAside(Produced):
    """A value a schema change made invalid, kept with the reason instead of being dropped."""

    value: Any
    reason: str
    schema_id: str


class Revision(Produced):
    """One value a field took: at which version and time (the input's), how, and from what.

    ``value`` is the field's whole value from that version on (a list field's whole list).
    ``evidence`` names the message (or command) and, when it came from an input record, the
    record's topic, partition and offset. ``restored_version``: for a revert, the version whose
    value came back.
    """

    version: int = Field(ge=0)
    at: AwareDatetime
    op: RevisionOp
    value: Any = None
    evidence: Evidence
    restored_version: int | None = Field(None, ge=1, exclude_if=lambda v: v is None)


class FieldHistory(Produced):
    """A field's revisions, oldest first; ``truncated`` when the bound dropped older ones."""

    revisions: tuple[Revision, ...] = ()
    truncated: bool = Field(False, exclude_if=lambda v: not v)


class ForgetMark(Produced):
    """How far a subject's forgets reach: what was taken in before them never applies again
    (``streams.core.forget_mark`` decides). No profile data: positions and a time only.

    ``offsets``: per input partition a forget was read on (``"topic:partition"``), the offset
    of the last forget there. ``at_ms``: the record timestamp of the latest forget (ms since
    the epoch), for inputs first taken in on a partition no forget was read on.
    """

    offsets: dict[str, int] = Field(default_factory=dict)
    at_ms: int


class ProfileRecord(Produced):
    """One user's profile as the table keeps it.

    ``applied`` maps ``"topic:partition"`` to the last input offset applied, so a redelivered
    event is recognised and skipped; ``recent_message_ids`` catches a message published twice.
    ``pending_event`` is an event written with the version it announces and cleared once it is
    delivered: a worker killed in between emits it when the user's next input arrives.

    A forgotten user keeps a tombstone: ``forgotten_at`` set, no profile data (profile,
    provenance, locks, set-aside values and revisions empty), but the version and what was
    applied, so a message from before the forget that is redelivered is skipped and versions
    keep counting.

    Internal: the table's format, not a public contract. ``format`` says which release's fields
    the record holds; format 1 is left out of the bytes, and so are the later formats' fields
    while unset (``forgotten_at``, ``usage``, ``buffer``, ``history``), so a record without
    them is the bytes the releases before wrote and read (DESIGN.md invariant 7); one with
    them claims the highest format among them.
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
    #: Messages accepted and waiting for their flush, oldest first; their offsets and ids are
    #: in ``applied`` and ``recent_message_ids``. Stored here by formats 4 and 5 only; from
    #: format 7 on they live in the buffer table and are filled in when the record is loaded.
    buffer: tuple[BufferedMessage, ...] = Field((), exclude_if=lambda v: not v)
    #: Per field, its revisions (format 5), at most ``PROFILE_STREAM_REVISIONS_PER_FIELD`` each;
    #: ``streams.core.history`` writes them and reads the profile as it was.
    history: dict[str, FieldHistory] = Field(default_factory=dict, exclude_if=lambda v: not v)
    #: The version the history starts at: the profile at that version is known (empty, or the
    #: ``baseline`` revisions), earlier ones are not. None: the record keeps no history.
    history_from: int | None = Field(None, ge=0, exclude_if=lambda v: v is None)
    #: The newest message extracted (format 6): what a read's freshness names. None until the
    #: first flush, and after a forget.
    last_message: LastMessage | None = Field(None, exclude_if=lambda v: v is None)
    #: Where the buffer starts in the buffer table (format 7): the sequence number of the
    #: oldest entry not yet flushed (docs/state.md). A stored record of format 7 never holds
    #: ``buffer``; in memory, ``buffer`` is the entries read from there.
    buffer_seq: int = Field(0, ge=0, exclude_if=lambda v: v == 0)
    #: How far the subject's forgets reach (format 8). Set by a forget and kept through the
    #: tombstone, the next profile and later forgets (each moves it on), so a message taken in
    #: before a forget never applies, however late it comes back. None: never forgotten (or
    #: forgotten by a release before format 8: ``streams.core.forget_mark.mark_of``).
    forget_mark: ForgetMark | None = Field(None, exclude_if=lambda v: v is None)
