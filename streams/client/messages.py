"""Publishing chat messages to the input topic, keyed by user id, in order: :func:`publish`."""

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable

from schemas import ChatMessage
from streams.client.kafka_io import Bootstrap, OutRecord, aiter_any, produce
from streams.core.codecs import encode

__all__ = ["publish"]


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
