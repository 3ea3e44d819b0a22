"""A tiny offline extractor for ``make demo`` without an API key. A demo aid, not a product.

It knows three sentence shapes: "I'm <Name>" / "my name is <Name>", "I'm from <place>" /
"I live in <place>" (a handful of places, mapped to a time zone), and "I speak <language>".
"""

import re
from collections.abc import Sequence
from typing import Any

from schemas import ChatMessage, PatchOperation
from streams.core.kinds import USER
from streams.core.profile_schema import ProfileSchema
from streams.extract.base import Extraction

__all__ = ["RuleExtractor"]

_PLACES = {
    "california": "America/Los_Angeles",
    "san francisco": "America/Los_Angeles",
    "seattle": "America/Los_Angeles",
    "texas": "America/Chicago",
    "chicago": "America/Chicago",
    "new york": "America/New_York",
    "london": "Europe/London",
    "paris": "Europe/Paris",
    "berlin": "Europe/Berlin",
    "madrid": "Europe/Madrid",
    "india": "Asia/Kolkata",
    "tokyo": "Asia/Tokyo",
    "sydney": "Australia/Sydney",
    "brazil": "America/Sao_Paulo",
}
_LANGUAGES = {
    "english", "spanish", "french", "german", "italian", "portuguese", "japanese", "chinese",
    "mandarin", "hindi", "arabic", "russian", "korean", "dutch", "swedish", "polish",
}  # fmt: skip
_NAME = re.compile(r"\b(?:I'm|I am|my name is|call me)\s+([A-Z][a-zA-Z'-]{1,40})\b")
_PLACE = re.compile(r"\b(?:from|live in|based in)\s+([A-Z][A-Za-z]+(?: [A-Z][A-Za-z]+)?)")
_SPEAK = re.compile(r"\bI (?:also )?speak\s+([A-Za-z ,]+)", re.IGNORECASE)


def _name(message: ChatMessage) -> list[PatchOperation]:
    found = _NAME.search(message.content)
    if not found or found.group(1).lower() in _PLACES or found.group(1) == "From":
        return []
    name, quote = found.group(1), found.group(0)
    return [
        PatchOperation(
            field="name", op="set", value=name, message_id=message.message_id, quote=quote
        )
    ]


def _place(message: ChatMessage) -> list[PatchOperation]:
    """The place and, from it, the time zone."""
    found = _PLACE.search(message.content)
    if not found or found.group(1).lower() not in _PLACES:
        return []
    place, quote = found.group(1), found.group(0)
    return [
        PatchOperation(
            field=field, op="set", value=value, message_id=message.message_id, quote=quote
        )
        for field, value in (("location", place), ("timezone", _PLACES[place.lower()]))
    ]


def _languages(message: ChatMessage) -> list[PatchOperation]:
    found = _SPEAK.search(message.content)
    if not found:
        return []
    words = [word.strip() for word in re.split(r",|\band\b|\s+", found.group(1))]
    quote = found.group(0).strip()
    return [
        PatchOperation(
            field="languages",
            op="add",
            value=word.capitalize(),
            message_id=message.message_id,
            quote=quote,
        )
        for word in words
        if word.lower() in _LANGUAGES
    ]


def _ops_for(message: ChatMessage) -> list[PatchOperation]:
    return [*_name(message), *_place(message), *_languages(message)]


class RuleExtractor:
    """Regular expressions over the user's own messages; assistant turns are ignored."""

    name = "rules"

    async def extract(
        self,
        profile: dict[str, Any],
        messages: Sequence[ChatMessage],
        schema: ProfileSchema,
        *,
        subject: str | None = None,
        kind: str = USER,
        context: Sequence[ChatMessage] = (),
    ) -> Extraction:
        """The operations the known sentence shapes give, limited to fields the schema has."""
        ops = [op for m in messages if m.role == "user" for op in _ops_for(m)]
        return Extraction([op for op in ops if op.field in schema.fields])

    async def forget(self, subject: str, *, kind: str = USER) -> int:
        """Nothing is kept."""
        return 0

    async def close(self) -> None:
        """Nothing to release."""
