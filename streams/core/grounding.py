"""Grounding: an operation changes a profile only if its words are in a source turn of the batch.

Pure: no I/O. A model's operation names the message it comes from and quotes it. Small models
cite the wrong turn (most often the assistant's answer right after the user's statement) and
retype quotes (curly quotes, other dashes, case, spacing). So:

- quote and message are compared after :func:`normalize` (case, spacing, quote and dash
  forms, surrounding punctuation), and a quote cut with an ellipsis matches its pieces in order;
- an operation whose quote occurs in the cited message, a turn of a source role (the user's
  for the default profile), applies as it is;
- otherwise, when the quote occurs in a source turn of the batch (the nearest one before the
  cited turn, or the only one), the operation is re-attributed to that turn;
- otherwise it is dropped, with the code saying why: the cited turn is not a source
  (``cites_non_source_role``: e.g. the assistant's own claim), is not in the batch
  (``cites_unknown_message``), or does not hold the quote (``ungrounded_quote``).

An empty or retyped quote may be stood in for by the value itself when the value's text occurs
in the turn (``grounded_by_value``; the recorded quote is then the value): a fact whose very
words the user wrote is as grounded as a quote, and small models often paraphrase the quote.
An inferred value (a time zone from a city, a formality) has no such text and needs its quote.
"""

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from schemas import ChatMessage, PatchOperation
from streams.core.merge import Dropped

__all__ = [
    "Grounded",
    "Repaired",
    "ground",
    "nearest_turn",
    "normalize",
    "occurs",
    "value_occurs",
]

_QUOTES = str.maketrans(
    {c: "'" for c in "\u2018\u2019\u201a\u201b\u2032\u00b4`"}
    | {c: '"' for c in "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"}
    | {c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"}
    | {"\u2026": "..."}
)
_ELLIPSIS = re.compile(r"\.{3,}")
_EDGE = " \t\n\"'.,;:!?()[]{}-*_"


# One batch's guards normalize the same turns and values many times over (each operation, each
# check, each word of a name); the last few dozen are kept, not every text ever seen.
@functools.lru_cache(maxsize=64)
def normalize(text: str) -> str:
    """``text`` for comparison: compatibility forms, one quote and dash form, casefolded, one
    space between words, no punctuation around it."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold()
    return " ".join(text.split()).strip(_EDGE)


def occurs(quote: str, text: str) -> bool:
    """Whether ``quote`` is in ``text`` after normalization; a quote cut with ``...`` matches
    when its pieces occur in order. An empty quote occurs nowhere."""
    pieces = [p for p in (normalize(p) for p in _ELLIPSIS.split(normalize(quote))) if p]
    haystack, start = normalize(text), 0
    for piece in pieces:
        found = haystack.find(piece, start)
        if found < 0:
            return False
        start = found + len(piece)
    return bool(pieces)


def value_occurs(value: object, text: str) -> bool:
    """Whether every text of ``value`` (a string, or each string of a list) occurs in ``text``
    as whole words; values that are not text, or shorter than two characters, never do."""
    items = value if isinstance(value, list) else [value]
    haystack = normalize(text)
    for item in items:
        needle = normalize(item) if isinstance(item, str) else ""
        if len(needle) < 2 or not _whole_words(needle, haystack):
            return False
    return bool(items)


def _word_char(c: str) -> bool:
    """Whether ``c`` is what the regex ``\\w`` matches (a letter, a digit or ``_``)."""
    return c.isalnum() or c == "_"


def _whole_words(needle: str, haystack: str) -> bool:
    """Whether ``needle`` occurs in ``haystack`` with no word character right before or after
    it: the regex ``(?<!\\w)needle(?!\\w)`` without compiling a pattern per value (a pattern
    per value missed the ``re`` cache: 3-7 % of a busy worker's CPU, bench/README.md)."""
    start = haystack.find(needle)
    while start >= 0:
        end = start + len(needle)
        before = start == 0 or not _word_char(haystack[start - 1])
        if before and (end == len(haystack) or not _word_char(haystack[end])):
            return True
        start = haystack.find(needle, start + 1)
    return False


@dataclass(frozen=True)
class Repaired:
    """An operation kept after a repair, and the code of the repair."""

    operation: PatchOperation
    code: str


@dataclass(frozen=True)
class Grounded:
    """The operations that may apply (in the order of the turns they cite), the dropped ones,
    and the ones kept after a repair (also among ``operations``)."""

    operations: list[PatchOperation] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    repaired: list[Repaired] = field(default_factory=list)


def _support(op: PatchOperation, message: ChatMessage) -> str | None:
    """How ``message`` supports ``op``: by its quote, by its value's text, or not."""
    if occurs(op.quote, message.content):
        return "quote"
    if value_occurs(op.value, message.content):
        return "value"
    return None


def _supports(op: PatchOperation, message: ChatMessage, how: str) -> bool:
    if how == "quote":
        return occurs(op.quote, message.content)
    return value_occurs(op.value, message.content)


def _candidate(
    op: PatchOperation, messages: Sequence[ChatMessage], sources: set[int], cited: int | None
) -> tuple[int, str] | None:
    """The source turn to re-attribute ``op`` to: the nearest one before the cited turn that
    supports it (its quote before its value), else the only one that does; None if none."""
    for how in ("quote", "value"):
        found = [i for i in sorted(sources) if _supports(op, messages[i], how)]
        if found:
            chosen = nearest_turn(found, cited)
            return None if chosen is None else (chosen, how)
    return None


def nearest_turn(found: Sequence[int], cited: int | None) -> int | None:
    """Of the turns ``found`` (in order), the nearest one at or before ``cited``, else the only
    one; None if there is none, or several after it and none nearer (no guess)."""
    before = [i for i in found if cited is not None and i <= cited]
    if before:
        return before[-1]
    return found[0] if len(found) == 1 else None


def _drop_code(cited: int | None, sources: set[int]) -> str:
    if cited is None:
        return "cites_unknown_message"
    return "ungrounded_quote" if cited in sources else "cites_non_source_role"


def ground(
    operations: Sequence[PatchOperation],
    messages: Sequence[ChatMessage],
    source_roles: Sequence[str] = ("user",),
) -> Grounded:
    """Keep, re-attribute or drop each operation (see the module docstring)."""
    index = {m.message_id: i for i, m in enumerate(messages)}
    sources = {i for i, m in enumerate(messages) if m.role in source_roles}
    result = Grounded()
    placed: list[tuple[int, PatchOperation]] = []
    for op in operations:
        cited = index.get(op.message_id)
        if cited is None and not op.message_id and len(sources) == 1:
            cited = next(iter(sources))  # a batch of one turn: an uncited operation is its
        where = None
        if cited is not None and cited in sources:
            how = _support(op, messages[cited])
            where = (cited, how) if how is not None else None
        if where is None:
            where = _candidate(op, messages, sources, cited)
            if where is None:
                code = _drop_code(cited, sources)
                result.dropped.append(Dropped(op, _why(code, op, messages, cited), code))
                continue
        kept = _attributed(op, messages[where[0]], where[1])
        if where[0] != cited:
            result.repaired.append(Repaired(kept, "reattributed"))
        elif where[1] == "value" and op.quote:
            result.repaired.append(Repaired(kept, "grounded_by_value"))
        placed.append((where[0], kept))
    placed.sort(key=lambda pair: pair[0])
    result.operations.extend(op for _, op in placed)
    return result


def _attributed(op: PatchOperation, message: ChatMessage, how: str) -> PatchOperation:
    """``op`` citing ``message``; grounded by its value, it quotes the value."""
    update: dict[str, object] = {"message_id": message.message_id}
    if how == "value":
        update["quote"] = ", ".join(op.value) if isinstance(op.value, list) else str(op.value)
    return op.model_copy(update=update)


def _why(code: str, op: PatchOperation, messages: Sequence[ChatMessage], cited: int | None) -> str:
    if cited is None:
        return f"evidence names no message of this batch ({op.message_id!r})"
    if code == "cites_non_source_role":
        return (
            f"it cites a {messages[cited].role} turn, which is context only, and no source "
            "turn of the batch holds its quote"
        )
    return "its quote is neither in the turn it cites nor in one other source turn"
