"""Shared fixtures for the unit tests: a clean environment, the default profile schema and a
chat-message factory."""

import os
from datetime import timedelta
from typing import Any

import pytest

from schemas import ChatMessage, UserProfile
from streams.core.profile_schema import ProfileSchema

from .helpers import T0, MakeMessage


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ``PROFILE_STREAM_*`` or ``OPENAI_*`` variable of the machine leaks into the test;
    returns ``monkeypatch`` for the test to set its own."""
    for name in list(os.environ):
        if name.startswith(("PROFILE_STREAM_", "OPENAI_")):
            monkeypatch.delenv(name)
    return monkeypatch


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
