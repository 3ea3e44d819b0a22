"""Reading a model's answer that is almost JSON. Pure: no I/O.

Structured output keeps a server's answer to the grammar, but not every server honours it, and
a small model stuck repeating itself is cut at the output-token bound in the middle of the
array. What can be read is read, and the repair is named (a metric label):

- ``code_fence``: the JSON inside a Markdown code fence;
- ``trailing_text``: the first JSON object, with text after it;
- ``cut_off``: an answer cut off inside its list of operations keeps the operations that are
  complete before the cut (an operation cut in half is never guessed at).

Anything else is not an answer: :class:`~streams.errors.InvalidModelOutput`.
"""

import json
import re
from typing import Any

import orjson

from streams.errors import InvalidModelOutput

__all__ = ["loads_answer"]

_FENCE = re.compile(r"```(?:json)?\s*(.*?)(?:```|$)", re.S | re.IGNORECASE)
_OPERATIONS = re.compile(r'\{\s*"operations"\s*:\s*\[')
_DECODER = json.JSONDecoder()


def loads_answer(content: str | None) -> tuple[Any, str | None]:
    """The answer's JSON value and the repair it needed (None: none).

    Raises:
        InvalidModelOutput: nothing readable (the message names the JSON error).
    """
    text = content or ""
    try:
        return orjson.loads(text), None
    except orjson.JSONDecodeError as exc:
        error = exc.msg
    fenced = _FENCE.search(text)
    if fenced is not None:
        try:
            return orjson.loads(fenced.group(1)), "code_fence"
        except orjson.JSONDecodeError:
            text = fenced.group(1)
    start = text.find("{")
    if start >= 0:
        try:
            value, _ = _DECODER.raw_decode(text, start)
        except json.JSONDecodeError:
            pass
        else:
            return value, "trailing_text"
    operations = _complete_operations(text)
    if operations:
        return {"operations": operations}, "cut_off"
    raise InvalidModelOutput(f"model answer is not JSON ({error})")


def _complete_operations(text: str) -> list[Any]:
    """The items of an ``{"operations": [`` array that are complete before the text ends."""
    found = _OPERATIONS.search(text)
    if found is None:
        return []
    items: list[Any] = []
    at = found.end()
    while True:
        at = _skip(text, at)
        if at >= len(text) or text[at] == "]":
            return items
        try:
            item, at = _DECODER.raw_decode(text, at)
        except json.JSONDecodeError:
            return items
        items.append(item)


def _skip(text: str, at: int) -> int:
    """The index of the next character that is not a space or a comma."""
    while at < len(text) and (text[at].isspace() or text[at] == ","):
        at += 1
    return at
