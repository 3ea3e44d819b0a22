"""Publishing chat messages to the input topic, keyed by user id, in order: :func:`publish`, and
one chat turn (the user's message and the assistant's answer) at a time: :func:`publish_turn`.

Both are one-shot: each call starts a Kafka producer and stops it. An app that publishes every
turn keeps a client instead (``ProfileStreamClient.publish_turn``), which holds one producer;
the messages are the same (:func:`turn_messages`).
"""

import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from typing import NamedTuple, Unpack

from pydantic import ValidationError

from schemas import ChatMessage, Role
from streams.client.kafka_io import Bootstrap, OutRecord, aiter_any
from streams.client.options import TurnOptions
from streams.client.producer import Producer
from streams.core.codecs import encode
from streams.errors import InvalidRequest

__all__ = [
    "INPUT_TOPIC",
    "Turn",
    "publish",
    "publish_turn",
    "records_for",
    "records_of",
    "turn_messages",
]

#: The workers' input topic unless PROFILE_STREAM_INPUT_TOPIC names another.
INPUT_TOPIC = "chat-messages"


class Turn(NamedTuple):
    """The ids of a published turn's messages: the user's, and the assistant's (None when the
    assistant's text was empty, as in a tool-calling turn, and nothing was sent for it)."""

    user_message_id: str
    assistant_message_id: str | None

    @classmethod
    def of(cls, messages: list[ChatMessage]) -> "Turn":
        """The ids of :func:`turn_messages`' messages."""
        assistant = messages[1].message_id if len(messages) > 1 else None
        return cls(messages[0].message_id, assistant)

    @property
    def last_message_id(self) -> str:
        """The turn's last message: what to wait for to read the whole turn's effect."""
        return self.assistant_message_id or self.user_message_id


def records_for(messages: Iterable[ChatMessage]) -> list[OutRecord]:
    """Chat messages as input records: keyed by user id (UTF-8), encoded as the worker reads."""
    return [OutRecord(message.user_id.encode(), encode(message)) for message in messages]


async def records_of(
    messages: Iterable[ChatMessage] | AsyncIterable[ChatMessage],
) -> AsyncIterator[OutRecord]:
    """:func:`records_for`, of a sync or async iterable, as they come."""
    async for message in aiter_any(messages):
        yield OutRecord(message.user_id.encode(), encode(message))


async def publish(
    messages: Iterable[ChatMessage] | AsyncIterable[ChatMessage],
    *,
    bootstrap: Bootstrap,
    topic: str = INPUT_TOPIC,
    on_sent: Callable[[int], None] | None = None,
) -> int:
    """Publish chat messages keyed by user id (UTF-8), in order; return how many were sent.

    ``bootstrap`` is the servers, or a :class:`~streams.client.KafkaConnection` (TLS, SASL).
    See :meth:`~streams.client.producer.Producer.send` for ``on_sent`` and the errors.
    """
    async with Producer(bootstrap) as producer:
        return await producer.send(records_of(messages), topic=topic, on_sent=on_sent)


_ARGUMENT = {("user", "content"): "user_message", ("assistant", "content"): "assistant_message"}


def turn_messages(
    user_id: str,
    user_message: str,
    assistant_message: str | None,
    **options: Unpack[TurnOptions],
) -> list[ChatMessage]:
    """The messages of one turn (see :func:`publish_turn`): the user's, then the assistant's
    unless its text is empty or blank.

    Raises:
        InvalidRequest: the user's message is blank, an id is empty or too long, ``sent_at``
            has no time zone; the message names the argument.
    """
    turn = options.get("turn_id") or uuid.uuid4().hex
    at = options.get("sent_at") or datetime.now(UTC)
    end = options.get("end_of_conversation", False)
    said: list[tuple[Role, str]] = [("user", user_message)]
    if assistant_message is not None and assistant_message.strip():
        said.append(("assistant", assistant_message))
    messages = []
    for index, (role, content) in enumerate(said, start=1):
        try:
            messages.append(
                ChatMessage(
                    message_id=f"{turn}:{role}",
                    user_id=user_id,
                    conversation_id=options.get("conversation_id", ""),
                    role=role,
                    content=content,
                    sent_at=at,
                    metadata=dict(options.get("metadata") or {}),
                    end_of_conversation=end and index == len(said),
                )
            )
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            field = str(first["loc"][0]) if first["loc"] else "message"
            name = _ARGUMENT.get((role, field), "turn_id" if field == "message_id" else field)
            raise InvalidRequest(f"publish_turn: {name}: {first['msg']}") from None
    return messages


async def publish_turn(
    user_id: str,
    user_message: str,
    assistant_message: str | None,
    *,
    bootstrap: Bootstrap,
    topic: str = INPUT_TOPIC,
    **options: Unpack[TurnOptions],
) -> Turn:
    """Publish one turn of a chat for extraction: the user's message, then the assistant's
    answer (context for the model, never a source of facts about the user); return their
    message ids.

    An empty or blank ``assistant_message`` (or None), as a tool-calling model turn has, is
    not sent: the turn is the user's message alone. ``end_of_conversation`` asks the workers
    to extract the user's buffered messages now, rather than when the conversation goes idle.

    The ids are ``{turn_id}:user`` and ``{turn_id}:assistant``, so publishing a turn again with
    the same ``turn_id`` (a retry after an error) is recognised by the workers and applied
    once. Without ``turn_id`` a random one is drawn.

    The turn's messages go to Kafka in one request. The call returns once Kafka has them;
    the profile changes later, when a worker
    has extracted and applied them, in order with the user's other messages.

    Raises:
        InvalidRequest: the user's message is blank, or the user id is empty or too long
            (nothing is sent); the message names the argument.
        BrokerUnavailable: Kafka cannot be reached or refused the messages.
    """
    messages = turn_messages(user_id, user_message, assistant_message, **options)
    async with Producer(bootstrap) as producer:
        await producer.send_together(records_for(messages), topic=topic)
    return Turn.of(messages)
