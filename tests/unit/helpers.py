"""Constants shared by the unit tests (import from here, not from conftest)."""

from collections.abc import Callable
from datetime import UTC, datetime

from schemas import ChatMessage

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

#: The type of the ``make_message`` fixture: ``make_message(message_id, content, **fields)``.
MakeMessage = Callable[..., ChatMessage]
