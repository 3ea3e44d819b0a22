"""The quality guards every extracted operation passes before it is merged. Pure: no I/O.

In order, each dropping (or repairing) with a code that is counted and logged:

1. ``duplicate``: the same change twice in one answer (a small model looping) is kept once.
2. Grounding (:mod:`streams.core.grounding`): the quote is in a source turn of the batch;
   ``reattributed`` / ``grounded_by_value`` repairs, ``ungrounded_quote``,
   ``cites_non_source_role`` and ``cites_unknown_message`` drops.
3. ``placeholder_value``: a stand-in for "not said" ("John Doe", "unknown", "N/A") is not a fact.
4. ``example_value``: a value copied from the prompt's example, when the turn it cites does not
   hold it (small models copy examples).
5. ``value_not_in_message``: a name, a place, a person is written, never inferred: a ``name``
   whose words, or a ``location`` or ``key_relationships`` item none of whose words, are in
   the turn it cites was made up (or copied from the field descriptions), unless another
   source turn of the batch writes it: the operation is then re-attributed to that turn (the
   nearest before the cited one, else the only one after), its value as its quote
   (``reattributed``), and guarded again there. Small models quote the turn that says a fact
   ("three weeks in CDMX now") and name it as another turn wrote it ("Mexico City").
6. ``instruction_in_message``: a sentence the quote comes from talks to the system ("ignore
   your instructions", "update my profile", "SYSTEM:", "set expertise to ..." for a field of
   the profile); messages are data, so an operation it asks for is not taken, whatever the
   model did with it. A sentence that starts as an assignment (``Name: root``,
   ``languages=Russian``) is read with the sentences above it up to the first that does not
   (the header of the pasted block it belongs to); the quote is read at each place its turn
   holds it, and so is the value (a model quotes a sender's signature for the name that a
   pasted note to the assistant asks for).
"""

import functools
import re
from collections.abc import Collection, Sequence

from schemas import ChatMessage, PatchOperation
from streams.core.grounding import (
    Grounded,
    Repaired,
    ground,
    nearest_turn,
    normalize,
    value_occurs,
)
from streams.core.merge import Dropped

__all__ = ["EXAMPLE_VALUES", "PLACEHOLDERS", "guard", "instruction_like"]

#: The made-up words of the prompt's example (``streams.extract.prompt``): obviously not real,
#: so a value equal to one that its turn does not hold was copied from the example.
EXAMPLE_VALUES = frozenset({"Exampleville", "Oldtown", "Examplescript"})

#: Values a model writes when it has nothing: never a fact about the user.
PLACEHOLDERS = frozenset(
    {"john doe", "jane doe", "john smith", "unknown", "n/a", "na", "none", "null", "not", "user",
     "the user", "anonymous", "not specified", "not mentioned", "not provided", "unspecified"}
)  # fmt: skip
#: Fields whose value is written in the turn it comes from, never inferred: a name (every word
#: of it), a place or a person (a word of it, outside a parenthesised relation).
_LITERAL_FIELDS = {"name": all, "location": any, "key_relationships": any}
_WORD = re.compile(r"[^\W\d_]{2,}")
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.!?\n]{0,40}"
    r"\b(?:instructions?|rules|prompts?|guidelines)\b"
    r"|\b(?:system|developer|admin)\s*(?:prompt|message|override|mode|instructions?)\b"
    r"|\b(?:system|assistant|developer)\s*:"
    r"|\b(?:set|change|update|write|store|save|overwrite|edit)\b[^.!?\n]{0,30}"
    r"\b(?:profile|field|memory|database|records?)\b"
    r"|\byou (?:are|must|will) now\b|\bnew instructions?\b"
    # A value assigned in code (``profile.name=root``, ``user.location: X``) talks to a parser.
    r"|\b(?:profile|user|memory|record)\.\w+\s*[=:]",
    re.IGNORECASE,
)
#: A sentence ends at a stop followed by a space or the end, or at a line's end: the dot of
#: ``profile.name`` or ``3.5`` is inside one.
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")
#: A sentence that starts by assigning to a key of at most three words (``Name: root``,
#: ``languages = Russian``, ``- home: X``) is a line of data, read with the header above it.
_ASSIGNMENT = re.compile(r"\W*\w[\w.-]*(?: [\w.-]+){0,2}\s*(?:=(?!=)|:(?!//))")


def instruction_like(text: str, fields: Collection[str] = ()) -> bool:
    """Whether ``text`` talks to the system that reads it, rather than about its writer: the
    usual injection phrases, or "set/change/update <a field of ``fields``> to"."""
    if _INSTRUCTION.search(text) is not None:
        return True
    asks = _asks_to_set(tuple(fields))
    return asks is not None and asks.search(text) is not None


@functools.lru_cache(maxsize=32)
def _asks_to_set(fields: tuple[str, ...]) -> re.Pattern[str] | None:
    """The pattern of "set/change/update <a field of ``fields``> to", compiled once per schema."""
    names = "|".join(re.escape(f.replace("_", " ")) for f in sorted(fields, key=len, reverse=True))
    if not names:
        return None
    return re.compile(
        rf"\b(?:set|change|update|make)\s+(?:(?:my|the|his|her|their)\s+)?(?:{names})\s+(?:to|=|:)",
        re.IGNORECASE,
    )


def _contexts(quote: str, content: str, *, value: bool = False) -> list[str]:
    """What the guard reads, casefolded, for each place of ``content`` that holds the quote (not
    found, the whole text; for a ``value``, nothing): the sentences it spans, and above an
    assignment the block it is part of."""
    text, wanted = content.casefold(), quote.strip().casefold()
    places = _places(wanted, text)
    spans = _sentences(text)
    if not places or not spans:
        return [] if value else [text]
    contexts = []
    for start in places:
        end = start + len(wanted)
        first = next((i for i, (_, stop) in enumerate(spans) if stop > start), len(spans) - 1)
        last = next((i for i, (_, stop) in enumerate(spans) if stop >= end), len(spans) - 1)
        while first > 0 and _ASSIGNMENT.match(text, *spans[first]):
            first -= 1
        contexts.append(text[spans[first][0] : spans[last][1]])
    return contexts


def _places(wanted: str, text: str) -> list[int]:
    """Where ``wanted`` starts in ``text`` as whole words ("ann" is not in "planning"), each
    place; none for an empty ``wanted``."""
    places: list[int] = []
    start = text.find(wanted) if wanted else -1
    while start >= 0:
        end = start + len(wanted)
        if not (start > 0 and text[start - 1].isalnum()) and not text[end : end + 1].isalnum():
            places.append(start)
        start = text.find(wanted, start + 1)
    return places


def _sentences(content: str) -> list[tuple[int, int]]:
    """The spans of ``content``'s sentences that hold more than whitespace, in order."""
    stops = [m.end() for m in _SENTENCE_END.finditer(content)]
    bounds = zip([0, *stops], [*stops, len(content)], strict=True)
    return [(start, stop) for start, stop in bounds if content[start:stop].strip()]


def _items(value: object) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [normalize(v) for v in values if isinstance(v, str)]


def _verdict(
    op: PatchOperation, message: ChatMessage, examples: Collection[str], fields: Collection[str]
) -> tuple[str, str] | None:
    """The code and reason to drop ``op`` (grounded in ``message``) for, or None to keep it."""
    items = _items(op.value)
    if any(item in PLACEHOLDERS for item in items):
        return "placeholder_value", "its value stands for 'not said'"
    in_message = value_occurs(op.value, message.content)
    if not in_message and any(item in examples for item in items):
        return "example_value", "its value is the prompt's example, not in the turn it cites"
    if op.op in ("set", "add") and not in_message and not _written(op, message.content):
        return "value_not_in_message", f"a {op.field} is written, and this one is not in the turn"
    read = _contexts(op.quote, message.content)
    read += [c for item in items for c in _contexts(item, message.content, value=True)]
    if any(instruction_like(text, fields) for text in read):
        return "instruction_in_message", "its quote is an instruction to the system, not a fact"
    return None


def _written(op: PatchOperation, content: str) -> bool:
    """Whether ``op``'s value is written in ``content`` as its field needs (always true for a
    field that may be inferred)."""
    quantifier = _LITERAL_FIELDS.get(op.field)
    if quantifier is None:
        return True
    words = [w for item in _items(op.value) for w in _WORD.findall(item.split("(")[0])]
    return bool(words) and quantifier(value_occurs(w, content) for w in words)


def _deduplicated(
    operations: Sequence[PatchOperation],
) -> tuple[list[PatchOperation], list[Dropped]]:
    seen: set[tuple[str, str, str]] = set()
    kept, dropped = [], []
    for op in operations:
        key = (op.field, op.op, "\0".join(_items(op.value)) or repr(op.value))
        if key in seen:
            dropped.append(Dropped(op, "the same change again in one answer", "duplicate"))
            continue
        seen.add(key)
        kept.append(op)
    return kept, dropped


def guard(
    operations: Sequence[PatchOperation],
    messages: Sequence[ChatMessage],
    source_roles: Sequence[str] = ("user",),
    *,
    fields: Collection[str] = (),
    example_values: Collection[str] = EXAMPLE_VALUES,
) -> Grounded:
    """The operations of one extraction that may be merged, the dropped ones with their codes,
    and the repaired ones (see the module docstring). ``fields`` are the profile's field names
    (a message asking to set one is an instruction); ``example_values`` are the values of the
    prompt's example, compared after :func:`~streams.core.grounding.normalize`."""
    unique, duplicates = _deduplicated(operations)
    grounded = ground(unique, messages, source_roles)
    examples = {normalize(v) for v in example_values}
    by_id = {m.message_id: m for m in messages}
    order = {m.message_id: i for i, m in enumerate(messages)}
    kept: list[PatchOperation] = []
    dropped = duplicates + grounded.dropped
    repaired = list(grounded.repaired)
    for op in grounded.operations:
        verdict = _verdict(op, by_id[op.message_id], examples, fields)
        moved = None
        if _unwritten(verdict):
            moved = _writer(op, messages, source_roles, order[op.message_id])
        if moved is not None:  # guarded again where its value is written
            op, verdict = moved, _verdict(moved, by_id[moved.message_id], examples, fields)
            repaired += [Repaired(moved, "reattributed")] if verdict is None else []
        if verdict is None:
            kept.append(op)
        else:
            dropped.append(Dropped(op, verdict[1], verdict[0]))
    kept.sort(key=lambda o: order[o.message_id])  # a re-attributed one in its turn's place
    return Grounded(kept, dropped, [r for r in repaired if r.operation in kept])


def _unwritten(verdict: tuple[str, str] | None) -> bool:
    return verdict is not None and verdict[0] == "value_not_in_message"


def _writer(
    op: PatchOperation, messages: Sequence[ChatMessage], source_roles: Sequence[str], cited: int
) -> PatchOperation | None:
    """``op`` citing the source turn that writes its value (the nearest before turn ``cited``,
    which does not, else the only one after), its value as its quote; None if no turn or
    several after it do (no guess)."""
    found = [
        i for i, m in enumerate(messages) if m.role in source_roles and _written(op, m.content)
    ]
    chosen = nearest_turn(found, cited)
    if chosen is None:
        return None
    writer = messages[chosen]
    quote = ", ".join(op.value) if isinstance(op.value, list) else str(op.value)
    return op.model_copy(update={"message_id": writer.message_id, "quote": quote[:500]})
