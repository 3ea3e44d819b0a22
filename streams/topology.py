"""The worker's topics and tables: names, partition counts and store options, from settings.

Every topic carries raw bytes: decoding to ``schemas`` happens in ``streams.core.codecs``.
Tables have the input's partition count, so a user's table partition is its input partition.
"""

from dataclasses import dataclass
from typing import Any

import faust
from aiokafka.errors import KafkaError

from streams.core.kinds import Kind
from streams.errors import BrokerUnavailable
from streams.faust_glue import ProfileTable
from streams.settings import Settings

__all__ = ["ROCKSDB_OPTIONS", "TopicSender", "Topics", "declare_topics", "profile_table"]

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
    table = ProfileTable(
        app,
        name="profiles" if kind.is_user else f"profiles-{kind.name}",
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
    """A topic as the pipeline sends to it: a Kafka error becomes :class:`BrokerUnavailable`,
    which the error policy knows may pass (the worker exits and reads the input again)."""

    topic: faust.TopicT

    async def send(
        self,
        *,
        key: bytes | None,
        value: bytes,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any:
        """Produce one record (to ``partition`` when given); returns the future of its
        delivery."""
        try:
            return await self.topic.send(key=key, value=value, partition=partition, headers=headers)
        except KafkaError as exc:
            raise BrokerUnavailable(
                f"cannot produce to {self.topic.get_topic_name()}: {exc!r}"
            ) from exc
