"""The interface every extractor implements, so the worker does not care which one runs."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from schemas import ChatMessage, ModelUsage, PatchOperation
from streams.core.kinds import USER
from streams.core.profile_schema import ProfileSchema

__all__ = ["Extraction", "Extractor"]


@dataclass(frozen=True)
class Extraction:
    """An extractor's answer: the operations, the malformed ones it saw, and what it cost.

    ``usage`` is what the model reported for every answer the extraction read (a retried
    unreadable answer included); nothing for a cached answer or the rules extractor.
    """

    operations: list[PatchOperation]
    malformed: list[str] = field(default_factory=list)
    usage: ModelUsage = field(default_factory=ModelUsage)


class Extractor(Protocol):
    """Turns a user's new messages into operations on that user's profile."""

    name: str

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
        """The operations the messages justify; raises ExtractionFailed when it gives up.

        ``subject`` and ``kind`` name the profile the messages update (default: the first
        message's user, of the user kind), so what is kept about the answer can be forgotten
        with that profile. ``context``: earlier messages of the conversation, shown to the
        model as context only (already asked about: never cited, no facts taken from them).
        """
        ...

    async def forget(self, subject: str, *, kind: str = USER) -> int:
        """Drop anything kept about ``subject`` of ``kind`` (cached answers); returns how many.

        Raises:
            CachePurgeFailed: what is kept could not be dropped; do not acknowledge the forget.
        """
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
