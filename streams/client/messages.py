"""Publishing chat messages to the input topic, keyed by user id, in order: :func:`publish`, and
one chat turn (the user's message and the assistant's answer) at a time: :func:`publish_turn`."""

import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from schemas import ChatMessage, Role
from streams.client.kafka_io import Bootstrap, OutRecord, aiter_any, produce
from streams.core.codecs import encode

__all__ = ["publish", "publish_turn"]


async def publish(
    messages: Iterable[ChatMessage] | AsyncIterable[ChatMessage],
    *,
    bootstrap: Bootstrap,
    topic: str,
    on_sent: Callable[[int], None] | None = None,
) -> int:
    """Publish chat messages keyed by user id (UTF-8), in order; return how many were sent.

    ``bootstrap`` is the servers, or a :class:`~streams.client.KafkaConnection` (TLS, SASL).

    See :func:`produce` for ``on_sent`` and the errors.
    """

    async def records() -> AsyncIterator[OutRecord]:
        async for message in aiter_any(messages):
            yield OutRecord(message.user_id.encode(), encode(message))

    return await produce(records(), bootstrap=bootstrap, topic=topic, on_sent=on_sent)


async def publish_turn(
    user_id: str,
    user_message: str,
    assistant_message: str,
    *,
    bootstrap: Bootstrap,
    topic: str,
    conversation_id: str = "",
    turn_id: str | None = None,
    sent_at: datetime | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> tuple[str, str]:
    """Publish one turn of a chat for extraction: the user's message, then the assistant's
    answer (context for the model, never a source of facts about the user); return their
    message ids.

    The ids are ``{turn_id}:user`` and ``{turn_id}:assistant``, so publishing a turn again with
    the same ``turn_id`` (a retry after an error) is recognised by the workers and applied
    once. Without ``turn_id`` a random one is drawn.

    The call returns once Kafka has both messages; the profile changes later, when a worker
    has extracted and applied them, in order with the user's other messages.

    Raises:
        pydantic.ValidationError: a message is blank, or the user id is empty or too long.
        BrokerUnavailable: Kafka cannot be reached or refused the messages.
    """
    turn = turn_id or uuid.uuid4().hex
    at = sent_at or datetime.now(UTC)

    def message(role: Role, content: str) -> ChatMessage:
        return ChatMessage(
            message_id=f"{turn}:{role}",
            user_id=user_id,
            conversation_id=conversation_id,
            role=role,
            content=content,
            sent_at=at,
            metadata=dict(metadata or {}),
        )

    messages = [message("user", user_message), message("assistant", assistant_message)]
    await publish(messages, bootstrap=bootstrap, topic=topic)
    return messages[0].message_id, messages[1].message_id
