"""Constants and builders shared by the unit tests (import from here, not from conftest)."""

from collections.abc import Callable
from datetime import UTC, datetime

from schemas import BufferedMessage, ChatMessage

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

#: The type of the ``make_message`` fixture: ``make_message(message_id, content, **fields)``.
MakeMessage = Callable[..., ChatMessage]


def buffered_message(user: str, source: str, received: float, n: int = 1) -> BufferedMessage:
    """A buffer entry: ``user``'s ``n``-th message, read from ``source`` at ``received``."""
    message = ChatMessage(
        message_id=f"{user}-{n}",
        user_id=user,
        role="user",
        content="hello",
        sent_at=datetime.fromtimestamp(received, UTC),
    )
    return BufferedMessage(message=message, source=source, offset=n, received=received)
