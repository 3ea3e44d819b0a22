"""When a user's buffered messages go to the model: the flush triggers.

Pure. Messages are buffered in the user's record (``ProfileRecord.buffer``) and extracted
together in one flush, when the first of these holds:

- ``size``: the buffer holds ``max_messages`` messages or ``max_chars`` characters (one model
  call's worth, the batch bounds), or the next message would take it past them (flushed
  before that message joins, so a flush is one call);
- ``end_of_conversation``: the message says its conversation ended (a message after it, in
  the same batch, starts the next buffer);
- ``new_conversation``: a message of another conversation arrives (the buffer is flushed before
  the new message joins it, so one call never mixes two conversations);
- ``idle``: no new message for ``idle_s``;
- ``max_age``: the oldest buffered message waited ``max_age_s``;

(the worker leaves these two alone while a message of the user is already read and waiting
for its turn: that user was not idle, the worker was behind, and the message joins first);
- ``command``: an operator's ``flush`` (or a correction or migration, which must follow the
  messages before it);
- ``refresh``: a reader's ``POST /profiles/{user_id}/refresh`` (read-your-writes).

Times are record timestamps in seconds (``BufferedMessage.received``) against the worker's
clock; ``idle_s = 0`` makes every buffer due at once: messages are extracted as they come, as
before buffers existed (those of a user already waiting join the same call).

A user whose profile spent ``daily_tokens`` today (UTC, by the worker's clock) is over budget:
the triggers above wait until the next UTC day (:func:`over_budget`, :func:`next_day`); an
operator's command still flushes.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from schemas import BufferedMessage, ChatMessage, ProfileUsage

__all__ = [
    "FlushPolicy",
    "FlushReason",
    "due_at",
    "next_day",
    "over_budget",
    "reason_after",
    "reason_before",
    "splits_conversation",
]


class FlushReason(StrEnum):
    """Why a buffer was flushed (the ``reason`` label of the flush metric)."""

    SIZE = "size"
    END_OF_CONVERSATION = "end_of_conversation"
    NEW_CONVERSATION = "new_conversation"
    IDLE = "idle"
    MAX_AGE = "max_age"
    COMMAND = "command"
    REFRESH = "refresh"


@dataclass(frozen=True)
class FlushPolicy:
    """The trigger settings (``PROFILE_STREAM_FLUSH_*``)."""

    idle_s: float = 30.0
    max_age_s: float = 300.0
    max_messages: int = 20
    max_chars: int = 12_000
    #: Prompt and completion tokens a user may spend per UTC day; 0: no budget.
    daily_tokens: int = 0
    #: Messages a user over budget may keep buffered; more are dead-lettered (``over_budget``).
    max_buffered: int = 200
    #: Calls a flush may add to ask again the turns a call did not reach (``follow_ups``
    #: of :mod:`streams.core.coverage`; ``PROFILE_STREAM_FOLLOW_UP_CALLS``); 0: none.
    follow_ups: int = 0
    #: One call per source turn, the batch's messages before it as context (``per_turn`` of
    #: :mod:`streams.core.coverage`; ``PROFILE_STREAM_EXTRACT_PER_TURN``).
    per_turn: bool = False


def splits_conversation(buffer: Sequence[BufferedMessage], message: ChatMessage) -> bool:
    """Whether ``message`` starts another conversation than the buffered ones."""
    return bool(buffer) and buffer[-1].message.conversation_id != message.conversation_id


def due_at(buffer: Sequence[BufferedMessage], policy: FlushPolicy) -> float | None:
    """When the buffer must be flushed at the latest (idle or age), None when it is empty."""
    if not buffer:
        return None
    return min(buffer[-1].received + policy.idle_s, buffer[0].received + policy.max_age_s)


def reason_before(
    buffer: Sequence[BufferedMessage], message: ChatMessage, policy: FlushPolicy
) -> FlushReason | None:
    """Why ``buffer`` must be flushed before ``message`` joins it, or None: ``message``
    starts another conversation, the buffer's conversation ended, or with ``message`` the
    buffer would pass one model call's bounds. Decided message by message, so a user's flushes
    are the same however the scheduler cut the messages into batches."""
    if not buffer:
        return None
    if splits_conversation(buffer, message):
        return FlushReason.NEW_CONVERSATION
    if buffer[-1].message.end_of_conversation:
        return FlushReason.END_OF_CONVERSATION
    chars = sum(len(b.message.content) for b in buffer) + len(message.content)
    if len(buffer) >= policy.max_messages or chars > policy.max_chars:
        return FlushReason.SIZE
    return None


def reason_after(
    buffer: Sequence[BufferedMessage], policy: FlushPolicy, now: float, *, waiting: bool = False
) -> FlushReason | None:
    """Why ``buffer`` must be flushed now (its newest message just joined it), or None.

    ``waiting``: an input of the subject is read and waits for its turn. Then neither idle nor
    max_age holds: the times are record timestamps, so a worker behind (a slow model, a
    backlog) would take a user in mid-conversation for idle and flush the conversation in as
    many pieces as its batches; the waiting input joins first, and the triggers are checked
    again after it."""
    if not buffer:
        return None
    if buffer[-1].message.end_of_conversation:
        return FlushReason.END_OF_CONVERSATION
    chars = sum(len(b.message.content) for b in buffer)
    if len(buffer) >= policy.max_messages or chars >= policy.max_chars:
        return FlushReason.SIZE
    if waiting:
        return None
    if now >= buffer[-1].received + policy.idle_s:
        return FlushReason.IDLE
    if now >= buffer[0].received + policy.max_age_s:
        return FlushReason.MAX_AGE
    return None


def over_budget(usage: ProfileUsage | None, policy: FlushPolicy, now: float) -> bool:
    """Whether the profile spent its daily token budget on ``now``'s UTC day."""
    if policy.daily_tokens <= 0 or usage is None:
        return False
    if usage.day != datetime.fromtimestamp(now, UTC).date():
        return False
    return usage.today.prompt_tokens + usage.today.completion_tokens >= policy.daily_tokens


def next_day(now: float) -> float:
    """The start of the UTC day after ``now``, when a spent budget is new again."""
    day = datetime.fromtimestamp(now, UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
