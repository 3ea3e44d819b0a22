"""Shared fixtures for the unit tests: the default profile schema and a chat-message factory."""

from datetime import timedelta
from typing import Any

import pytest

from schemas import ChatMessage, UserProfile
from streams.core.profile_schema import ProfileSchema

from .helpers import T0, MakeMessage


@pytest.fixture(scope="session")
def schema() -> ProfileSchema:
    return ProfileSchema(UserProfile)


@pytest.fixture
def make_message() -> MakeMessage:
    """ChatMessage(message_id, content, ...) with sensible defaults; sent_at is T0 + n minutes."""
    counter = iter(range(10_000))

    def make(message_id: str, content: str, **overrides: Any) -> ChatMessage:
        fields: dict[str, Any] = {
            "message_id": message_id,
            "user_id": "u1",
            "conversation_id": "c1",
            "role": "user",
            "content": content,
            "sent_at": T0 + timedelta(minutes=next(counter)),
        }
        return ChatMessage.model_validate(fields | overrides)

    return make
