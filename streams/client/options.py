"""The keyword options of a read, a turn, a subscription and a correction, declared once
for the async client, the sync client and the one-shot functions
(``**options: Unpack[ReadOptions]``), so their signatures cannot drift apart and type checkers
still check each keyword."""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypedDict

from schemas import PatchOperation

__all__ = ["CorrectionOptions", "ReadOptions", "SubscribeOptions", "TurnOptions"]


class ReadOptions(TypedDict, total=False):
    """What a read asks for (every key optional).

    ``kind``: another kind's profile (a team's...), ``user_id`` then its subject;
    ``provenance`` / ``usage``: where each value came from / the model calls and tokens spent;
    ``version`` or ``as_of`` (an aware time): the profile as it was then (``fields``: only
    those); ``wait_for``: answer once the profile reflects that message id, waiting up to
    ``wait_s`` seconds (10, at most 30); nothing is flushed for it.
    """

    kind: str
    provenance: bool
    usage: bool
    version: int | None
    as_of: datetime | None
    fields: Sequence[str]
    wait_for: str | None
    wait_s: float


class TurnOptions(TypedDict, total=False):
    """How a turn is published (every key optional).

    ``conversation_id``; ``turn_id``: the messages' ids are ``{turn_id}:user`` and
    ``{turn_id}:assistant``, so a retry with the same one is applied once (random when
    absent); ``sent_at`` (an aware time, now when absent); ``metadata`` on both messages;
    ``end_of_conversation``: extract the user's buffered messages now.
    """

    conversation_id: str
    turn_id: str | None
    sent_at: datetime | None
    metadata: Mapping[str, Any] | None
    end_of_conversation: bool


class SubscribeOptions(TypedDict, total=False):
    """Which profile events a subscription delivers, and from where (every key optional).

    ``group_id``: a consumer group, to resume where it stopped; ``kind``: one kind's events
    (``"user"`` by default, None for every kind's); ``user_id``: one user's (or subject's);
    ``from_beginning``: start a new group at the oldest event; ``idle_timeout_s``: end the
    iteration after that long without an event.
    """

    group_id: str | None
    kind: str | None
    user_id: str | None
    from_beginning: bool
    idle_timeout_s: float | None


class CorrectionOptions(TypedDict, total=False):
    """What an operator's correction changes (give at least one).

    ``values``: each field set to its value (``None`` unsets it); ``operations``: any patch
    operations (``{"field": "languages", "op": "add", "value": "Basque"}``); ``lock``: fields
    extraction must no longer change; ``unlock``: fields released.
    """

    values: Mapping[str, Any] | None
    operations: Iterable[PatchOperation | Mapping[str, Any]]
    lock: Iterable[str]
    unlock: Iterable[str]
