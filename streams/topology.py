"""The worker's topics and tables: names, partition counts and store options, from settings.

Every topic carries raw bytes: decoding to ``schemas`` happens in ``streams.core.codecs``.
Tables have the input's partition count, so a user's table partition is its input partition.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka.errors import BrokerResponseError, KafkaError
from faust.exceptions import ProducerSendError

from streams.core.kinds import Kind
from streams.errors import BrokerUnavailable, ProfileStreamError, SendRejected
from streams.faust_glue import ProfileTable
from streams.settings import Settings

__all__ = [
    "ROCKSDB_OPTIONS",
    "TopicSender",
    "Topics",
    "changelog_acked",
    "declare_topics",
    "buffer_table",
    "profile_table",
]

# Faust's defaults (2 GiB block cache per partition database) do not fit many partitions.
ROCKSDB_OPTIONS = {
    "block_cache_size": 32 * 1024**2,
    "write_buffer_size": 8 * 1024**2,
    "max_open_files": 512,
}


@dataclass(frozen=True)
class Topics:
    """The input (chat messages and operator commands), output and dead-letter topics."""

    app: faust.App
    settings: Settings
    chat: faust.TopicT
    output: faust.TopicT
    dead_letters: faust.TopicT

    def source_of(self, kind: Kind) -> faust.TopicT:
        """Where ``kind`` reads: the input for users; another kind's messages are re-keyed by
        its subject on a topic of its own, so one team's updates are serialized whatever
        partitions its members' messages were on."""
        if kind.is_user:
            return self.chat
        name = kind.topic(self.settings.app_id, self.settings.input_topic)
        return _raw_topic(self.app, name, self.settings)


def declare_topics(app: faust.App, settings: Settings) -> Topics:
    """Declare (created when missing, before the consumer subscribes) the worker's topics.

    Operator commands share the input topic, so they are ordered with the user's messages.
    """
    return Topics(
        app,
        settings,
        chat=_raw_topic(app, settings.input_topic, settings),
        output=_raw_topic(app, settings.output_topic, settings),
        dead_letters=_raw_topic(app, settings.dlq_topic, settings),
    )


def profile_table(app: faust.App, kind: Kind, settings: Settings) -> ProfileTable:
    """The RocksDB table of ``kind``'s profile records, registered with the app."""
    return _table(app, "profiles" if kind.is_user else f"profiles-{kind.name}", settings)


def buffer_table(app: faust.App, kind: Kind, settings: Settings) -> ProfileTable:
    """The RocksDB table of ``kind``'s buffered messages, one entry each (docs/state.md),
    co-partitioned with its profile table."""
    return _table(
        app, "profiles-buffers" if kind.is_user else f"profiles-{kind.name}-buffers", settings
    )


def _table(app: faust.App, name: str, settings: Settings) -> ProfileTable:
    table = ProfileTable(
        app,
        name=name,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
        options=ROCKSDB_OPTIONS,
        beacon=app.tables.beacon,
    )
    app.tables.add(table)
    return table


def _raw_topic(app: faust.App, name: str, settings: Settings) -> faust.TopicT:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
        internal=True,
    )


@dataclass(frozen=True)
class TopicSender:
    """A topic as the pipeline sends to it, speaking the pipeline's errors.

    A failed send, or a failed delivery, raises :class:`SendRejected` when Kafka refused the
    record for good (too large, not authorized) and :class:`BrokerUnavailable` otherwise; both
    stop the worker without committing past the input (:mod:`streams.pipeline.policy`). Faust
    wraps producer errors in ``ProducerSendError``, which is not a ``KafkaError``: both are
    caught here.
    """

    topic: faust.TopicT

    async def send(
        self,
        *,
        key: bytes | None,
        value: bytes,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> "asyncio.Future[Any]":
        """Produce one record (to ``partition`` when given); returns the future of its
        delivery."""
        try:
            sent = await self.topic.send(key=key, value=value, partition=partition, headers=headers)
            delivery = asyncio.ensure_future(sent)
        except (KafkaError, ProducerSendError) as exc:
            raise self._error(exc) from exc
        translated: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        delivery.add_done_callback(lambda done: self._settle(done, translated))
        return translated

    def _settle(self, done: "asyncio.Future[Any]", translated: "asyncio.Future[Any]") -> None:
        if translated.done():
            return
        if done.cancelled():
            translated.cancel()
        elif (exc := done.exception()) is None:
            translated.set_result(done.result())
        elif isinstance(exc, KafkaError | ProducerSendError):
            translated.set_exception(self._error(exc))
        else:
            translated.set_exception(exc)

    def _error(self, exc: BaseException) -> ProfileStreamError:
        return _our_error(exc, self.topic.get_topic_name())


def changelog_acked(table: ProfileTable) -> Callable[[bytes], Awaitable[None]]:
    """``table.changelog_acked``, raising the pipeline's errors as :class:`TopicSender` does."""

    async def acked(key: bytes) -> None:
        try:
            await table.changelog_acked(key)
        except (KafkaError, ProducerSendError) as exc:
            raise _our_error(exc, f"the changelog of table {table.name}") from exc

    return acked


def _our_error(exc: BaseException, topic: str) -> ProfileStreamError:
    cause = exc.__cause__ if isinstance(exc, ProducerSendError) else exc
    what = f"{topic}: {cause or exc!r}"
    if isinstance(cause, BrokerResponseError) and not cause.retriable:
        error: ProfileStreamError = SendRejected(f"Kafka refused a record for {what}")
    else:
        error = BrokerUnavailable(f"cannot produce to {what}")
    error.__cause__ = exc
    return error
