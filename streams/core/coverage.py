"""Coverage follow-ups: the user turns a model call did not reach, asked again.

Pure. Given a batch of several user turns, a small model answers with the facts of the first
and few after it (docs/evaluation.md, "What was tried against buffering's recall loss"). After
a call, the turns after the last source turn its kept operations cite are what it did not
reach: a flush asks them again as a call of their own, with the profile as the calls before
left it, until a call cites nothing, no source turn is left after the last one cited, or the
flush's follow-ups (``PROFILE_STREAM_FOLLOW_UP_CALLS``) are spent. A call that covered its
whole batch costs nothing more; calls are added only where the model stopped early.

The other way round (``PROFILE_STREAM_EXTRACT_PER_TURN``): a flush asks about one source turn
at a time (:func:`per_turn`), each call given the batch's messages before it as context, so the
flush keeps its grouping but the model never has more than one turn to answer.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from schemas import ChatMessage, PatchOperation

__all__ = ["Ask", "Coverage", "per_turn", "uncited_rest"]


@dataclass(frozen=True)
class Ask:
    """One call's messages: those to answer, and the earlier ones shown as context only."""

    messages: list[ChatMessage]
    context: list[ChatMessage] = field(default_factory=list)


def per_turn(messages: Sequence[ChatMessage], source_roles: Collection[str]) -> list[Ask]:
    """One ask per source turn of ``messages``: the turn with the messages since the source
    turn before it (the assistant's question it answers), the messages before those as
    context. Messages after the last source turn are asked about in none (nothing to learn)."""
    asks: list[Ask] = []
    start = 0
    for i, m in enumerate(messages):
        if m.role in source_roles:
            asks.append(Ask(list(messages[start : i + 1]), list(messages[:start])))
            start = i + 1
    return asks


def uncited_rest(
    messages: Sequence[ChatMessage], cited: Collection[str], source_roles: Collection[str]
) -> list[ChatMessage]:
    """The messages after the last source turn of ``messages`` whose id is in ``cited``, when
    a source turn is among them; empty when no source turn is cited or none is left after it.

    What follows the last cited turn is kept whole, the assistant's reply to it included: the
    question a user's next turn answers ("Where are you from?") is its context."""
    last = max(
        (i for i, m in enumerate(messages) if m.role in source_roles and m.message_id in cited),
        default=None,
    )
    if last is None:
        return []
    rest = list(messages[last + 1 :])
    return rest if any(m.role in source_roles for m in rest) else []


class Coverage:
    """One flush's follow-ups: what to ask next after each call, within ``budget`` calls."""

    def __init__(self, budget: int, source_roles: Collection[str]) -> None:
        self._left = budget
        self._roles = frozenset(source_roles)

    @property
    def left(self) -> int:
        """The follow-up calls this flush may still make."""
        return self._left

    def next_ask(
        self, asked: Sequence[ChatMessage], kept: Sequence[PatchOperation]
    ) -> list[ChatMessage]:
        """The follow-up after a call on ``asked`` whose kept operations are ``kept`` (one of
        the budget is spent on it), or empty: nothing is left to ask, or the budget is spent."""
        if self._left <= 0:
            return []
        rest = uncited_rest(asked, {op.message_id for op in kept}, self._roles)
        if rest:
            self._left -= 1
        return rest
